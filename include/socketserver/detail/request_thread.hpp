#ifndef SOCKETSERVER_DETAIL_REQUEST_THREAD_HPP
#define SOCKETSERVER_DETAIL_REQUEST_THREAD_HPP

#include <cxxabi.h>

#include <socketserver/address.hpp>
#include <socketserver/base_server.hpp>
#include <socketserver/detail/exception.hpp>
#include <socketserver/request.hpp>

namespace socketserver::detail {

// One request on a thread other than the serving one (Python's process_request_thread):
// finish_request(), handle_error() on failure, then always shutdown_request(). Nothing escapes
// but thread cancellation, which unwinds after shutdown_request().
__attribute__((noinline, no_sanitize("null")))  // see exception.hpp
inline void
run_request_thread(BaseServer& server, Request& request, const Address& client_address) {
  try {
    server.finish_request(request, client_address);
  } catch (const abi::__forced_unwind&) {
    server.shutdown_request(request);
    throw;
  } catch (...) {
    RequestAccess::note_current_exception(request);
    call_error_hook([&] { server.handle_error(request, client_address); });
  }
  try {
    server.shutdown_request(request);
  } catch (...) {  // on this thread nothing may escape: report it like any other error
    call_error_hook([&] { server.handle_error(request, client_address); });
  }
}

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_DETAIL_REQUEST_THREAD_HPP
