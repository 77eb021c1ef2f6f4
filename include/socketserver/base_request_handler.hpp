#ifndef SOCKETSERVER_BASE_REQUEST_HANDLER_HPP
#define SOCKETSERVER_BASE_REQUEST_HANDLER_HPP

#include <socketserver/address.hpp>
#include <socketserver/request.hpp>

namespace socketserver {

class BaseServer;

/// The base of every request handler: one instance serves one request.
///
/// Subclass it (or StreamRequestHandler / DatagramRequestHandler) and override handle(). The
/// server default-constructs the handler, fills in request, client_address and server, then
/// calls setup(), handle() and finish(); finish() runs even when handle() throws, and the
/// exception then goes on to the server's handle_error(). Python passes the three values to
/// the constructor instead; here they are not set yet while the constructor runs.
///
/// Thread safety: a handler runs on one thread (the serving thread, a worker thread, or a
/// forked child, as the server's mixin decides) and is destroyed when its request is done.
class BaseRequestHandler {
 public:
  BaseRequestHandler() = default;
  BaseRequestHandler(const BaseRequestHandler&) = delete;
  BaseRequestHandler& operator=(const BaseRequestHandler&) = delete;
  virtual ~BaseRequestHandler() = default;

  /// Called before handle(). May be overridden.
  virtual void setup() {}
  /// Serves the request. May be overridden; the default does nothing.
  virtual void handle() {}
  /// Called after handle(), also when it threw. May be overridden.
  virtual void finish() {}

  /// The request: the connection of a stream server, the packet and socket of a datagram
  /// server. Owned by the server. A StreamRequestHandler reads and writes through rfile and
  /// wfile, which buffer: mixing them with request->recv()/sendall() reorders bytes.
  Request* request = nullptr;
  /// The peer's address.
  Address client_address;
  /// The server that accepted the request; cast it to your server type to reach its members.
  BaseServer* server = nullptr;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_BASE_REQUEST_HANDLER_HPP
