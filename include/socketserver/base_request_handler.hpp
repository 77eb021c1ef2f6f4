#ifndef SOCKETSERVER_BASE_REQUEST_HANDLER_HPP
#define SOCKETSERVER_BASE_REQUEST_HANDLER_HPP

#include <stdexcept>

#include <socketserver/address.hpp>
#include <socketserver/stream_request.hpp>

namespace socketserver {

class BaseServer;

/// The server a handler runs under, as its own type: `server_as<MyServer>()`. Throws
/// std::logic_error when there is no server (a HandlerTest without one) or it is of another type.
template <class Server>
Server& server_as(BaseServer* server) {
  auto* typed = dynamic_cast<Server*>(server);
  if (typed == nullptr) {
    throw std::logic_error(server == nullptr ? "server_as(): the handler runs without a server"
                                             : "server_as(): the handler's server is of another type");
  }
  return *typed;
}

/// The base of every blocking request handler, for requests of type `RequestType`: one instance
/// serves one request.
///
/// Subclass BaseRequestHandler (stream servers), StreamRequestHandler or DatagramRequestHandler
/// and override handle(). The server default-constructs the handler, fills in request,
/// client_address and server, then calls setup(), handle() and finish(); finish() runs even when
/// handle() throws, and the exception then goes on to the server's handle_error(). Python passes
/// the three values to the constructor instead; here they are not set yet while the constructor
/// runs.
///
/// Thread safety: a handler runs on one thread (the serving thread, a worker thread, or a
/// forked child, as the server's mixin decides) and is destroyed when its request is done.
template <class RequestType>
class BasicRequestHandler {
 public:
  using request_type = RequestType;

  BasicRequestHandler() = default;
  BasicRequestHandler(const BasicRequestHandler&) = delete;
  BasicRequestHandler& operator=(const BasicRequestHandler&) = delete;
  virtual ~BasicRequestHandler() = default;

  /// Called before handle(). May be overridden.
  virtual void setup() {}
  /// Serves the request. May be overridden; the default does nothing.
  virtual void handle() {}
  /// Called after handle(), also when it threw. May be overridden.
  virtual void finish() {}

  /// The server as its own type (Python's self.server, which is the real object): checked.
  template <class Server>
  Server& server_as() const {
    return socketserver::server_as<Server>(server);
  }

  /// The request, owned by the server: a StreamRequest (a connection: recv(), sendall()) or a
  /// DatagramRequest (packet(), socket()). A StreamRequestHandler reads and writes through rfile
  /// and wfile, which buffer: mixing them with request->recv()/sendall() reorders bytes.
  RequestType* request = nullptr;
  /// The peer's address; behind a trusted proxy (PROXY protocol), the client's.
  Address client_address;
  /// The server that accepted the request (server_as() gives it as its own type).
  BaseServer* server = nullptr;
};

/// Python's BaseRequestHandler, for stream servers: `request` is the connection
/// (request->recv(), request->sendall()). A datagram handler derives from DatagramRequestHandler
/// or BasicRequestHandler<DatagramRequest>: the wrong pairing does not compile.
using BaseRequestHandler = BasicRequestHandler<StreamRequest>;

}  // namespace socketserver

#endif  // SOCKETSERVER_BASE_REQUEST_HANDLER_HPP
