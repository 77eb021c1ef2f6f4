#ifndef SOCKETSERVER_DETAIL_RUN_HANDLER_HPP
#define SOCKETSERVER_DETAIL_RUN_HANDLER_HPP

#include <socketserver/address.hpp>

namespace socketserver {
class BaseServer;
}

namespace socketserver::detail {

// Python's BaseRequestHandler.__init__: setup(), then handle() with finish() in a finally.
// An exception from setup() skips finish(), as in Python. `server` is null for a handler run
// without one (HandlerTest).
template <class Handler, class RequestType>
void run_handler(RequestType& request, const Address& client_address, BaseServer* server) {
  Handler handler;
  // The injected name of its BasicRequestHandler<> base: the members are set there, whatever
  // the handler itself declares.
  typename Handler::BasicRequestHandler& base = handler;
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
