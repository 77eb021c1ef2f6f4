#ifndef SOCKETSERVER_DETAIL_RUN_HANDLER_HPP
#define SOCKETSERVER_DETAIL_RUN_HANDLER_HPP

#include <socketserver/base_request_handler.hpp>

namespace socketserver::detail {

// Python's BaseRequestHandler.__init__: setup(), then handle() with finish() in a finally.
// An exception from setup() skips finish(), as in Python. `server` is null for a handler run
// without one (HandlerTest).
template <class Handler>
void run_handler(Request& request, const Address& client_address, BaseServer* server) {
  Handler handler;
  BaseRequestHandler& base = handler;
  base.request = &request;
  base.client_address = client_address;
  base.server = server;
  base.setup();
  try {
    base.handle();
  } catch (...) {
    base.finish();
    throw;
  }
  base.finish();
}

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_DETAIL_RUN_HANDLER_HPP
