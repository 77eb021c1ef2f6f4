#ifndef SOCKETSERVER_STREAM_SERVER_HPP
#define SOCKETSERVER_STREAM_SERVER_HPP

#include <concepts>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <socketserver/address.hpp>
#include <socketserver/base_request_handler.hpp>
#include <socketserver/detail/run_handler.hpp>
#include <socketserver/io/proxy_stream.hpp>
#include <socketserver/stream_request.hpp>
#include <socketserver/stream_socket_server.hpp>

namespace socketserver {

/// A handler a blocking stream server can run: a default-constructible handler of
/// StreamRequests (BaseRequestHandler, StreamRequestHandler).
template <class H>
concept StreamHandler = std::derived_from<H, BasicRequestHandler<StreamRequest>> && std::default_initializable<H>;

/// A listening stream socket that accepts connections and runs a `Handler` for each on the
/// thread that handles the request: what TCPServer and UnixStreamServer are made of (Python's
/// TCPServer, with the address family as the `Protocol` parameter).
///
/// Ownership: the server owns the listening socket. Each accepted connection becomes a
/// StreamRequest owning a SocketStream (and the layers on it); the handler borrows it, and
/// shutdown_request() sends FIN and closes it when the handler is done.
template <StreamHandler Handler, class Protocol>
class BasicStreamServer : public StreamSocketServer<Protocol, StreamRequest> {
 public:
  using handler_type = Handler;

  /// See StreamSocketServer: binds and listens unless `bind_and_activate` is false.
  explicit BasicStreamServer(Address server_address, bool bind_and_activate = true)
      : StreamSocketServer<Protocol, StreamRequest>(std::move(server_address), bind_and_activate) {}

  /// Reads the connection's PROXY header and runs its layers' handshakes, when it has any, then
  /// runs a `Handler` on the request. May be overridden.
  void finish_request(Request& request, const Address& client_address) override {
    auto& connection = static_cast<StreamRequest&>(request);
    Address client = client_address;
    if (this->opens_layers(connection) && !open_connection(connection, client)) return;
    detail::run_handler<Handler>(connection, client, this);
    if (this->closes_layers(connection)) close_connection(connection, client);
  }

 private:
  // The layers and their handshakes, blocking. False when the connection is refused.
  bool open_connection(StreamRequest& request, Address& client) {
    ProxyStream* proxy = this->open_layers(request);
    if (proxy != nullptr) {
      try {
        proxy->handshake(this->proxy_deadline());
      } catch (const std::system_error&) {
        this->proxy_header_failed();
      }
      if (!this->proxy_header_read(request, *proxy, client)) return false;
    }
    if (TlsStream* tls = detail::StreamRequestAccess::tls(request)) {
      try {
        if (!tls->handshake(this->tls_deadline(request)))
          throw std::logic_error("the TLS handshake waits on a blocking stream");
      } catch (const std::system_error&) {
        this->tls_handshake_failed(request, client);
        return false;
      }
      this->tls_handshake_done(request, client);
    }
    if (!this->layers.empty() && !request.stream().handshake(this->layers_deadline()))
      throw std::logic_error("a layer's handshake waits on a blocking stream");
    return true;
  }

  // The layers' closing exchange after the handler returned (TLS's close_notify, bounded by
  // its close_notify_timeout); its failures do not matter any more.
  void close_connection(StreamRequest& request, const Address& client) noexcept {
    try {
      this->note_truncation(request, client);
      request.stream().close_handshake(this->close_deadline(request));
    } catch (...) {
    }
  }
};

}  // namespace socketserver

#endif  // SOCKETSERVER_STREAM_SERVER_HPP
