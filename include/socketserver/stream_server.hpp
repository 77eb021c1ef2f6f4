#ifndef SOCKETSERVER_STREAM_SERVER_HPP
#define SOCKETSERVER_STREAM_SERVER_HPP

#include <concepts>
#include <utility>

#include <socketserver/address.hpp>
#include <socketserver/base_request_handler.hpp>
#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/detail/run_handler.hpp>
#include <socketserver/request.hpp>
#include <socketserver/stream_socket_server.hpp>

namespace socketserver {

/// A handler a stream server can run: a default-constructible BaseRequestHandler that is not
/// a DatagramRequestHandler.
template <class H>
concept StreamHandler = std::derived_from<H, BaseRequestHandler> && std::default_initializable<H> &&
    !std::derived_from<H, DatagramRequestHandler>;

/// A listening stream socket that accepts connections and runs a `Handler` for each on the
/// thread that handles the request: what TCPServer and UnixStreamServer are made of (Python's
/// TCPServer, with the address family as the `Protocol` parameter).
///
/// Ownership: the server owns the listening socket. Each accepted connection becomes a
/// Request owning a SocketStream; the handler borrows it, and shutdown_request() sends FIN and
/// closes it when the handler is done.
template <StreamHandler Handler, class Protocol>
class BasicStreamServer : public StreamSocketServer<Protocol> {
 public:
  using handler_type = Handler;

  /// See StreamSocketServer: binds and listens unless `bind_and_activate` is false.
  explicit BasicStreamServer(Address server_address, bool bind_and_activate = true)
      : StreamSocketServer<Protocol>(std::move(server_address), bind_and_activate) {}

  /// Runs a `Handler` on the request. May be overridden.
  void finish_request(Request& request, const Address& client_address) override {
    detail::run_handler<Handler>(request, client_address, this);
  }
};

}  // namespace socketserver

#endif  // SOCKETSERVER_STREAM_SERVER_HPP
