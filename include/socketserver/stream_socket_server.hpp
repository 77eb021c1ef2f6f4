#ifndef SOCKETSERVER_STREAM_SOCKET_SERVER_HPP
#define SOCKETSERVER_STREAM_SOCKET_SERVER_HPP

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <socketserver/address.hpp>
#include <socketserver/base_server.hpp>
#include <socketserver/detail/endpoint.hpp>
#include <socketserver/detail/exception.hpp>
#include <socketserver/detail/file_descriptor.hpp>
#include <socketserver/detail/server_socket.hpp>
#include <socketserver/detail/system_error.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/proxy_stream.hpp>
#include <socketserver/io/socket_stream.hpp>
#include <socketserver/io/tls_stream.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/proxy_header.hpp>
#include <socketserver/stream_request.hpp>
#include <socketserver/tls_context.hpp>

namespace socketserver {

/// The listening half of a stream server: binds, listens, accepts, puts the server's layers on
/// each connection, and closes (Python's TCPServer without finish_request(), with the address
/// family as the `Protocol` parameter and the kind of request as `RequestType`).
/// BasicStreamServer adds handlers that run on a thread (StreamRequest); BasicAsyncStreamServer
/// adds coroutine handlers (AsyncStreamRequest).
///
/// Ownership: the server owns the listening socket. Each accepted connection becomes a
/// request owning a SocketStream, and later the layers on it; shutdown_request() sends FIN and
/// closes it when its handler is done.
template <class Protocol, class RequestType>
class StreamSocketServer : public BaseServer {
 public:
  using protocol_type = Protocol;
  using request_type = RequestType;

  /// Makes one layer of a connection: takes the stream below and returns the one on top.
  using Layer = std::function<std::unique_ptr<ByteStream>(std::unique_ptr<ByteStream>)>;
  /// Handlers do not use the listening socket: a mixin may close it before they finish.
  static constexpr bool handlers_share_server_socket = false;

  /// Creates the socket and, when `bind_and_activate` is true, binds and listens. With false,
  /// set allow_reuse_address, allow_reuse_port or request_queue_size, then call server_bind()
  /// and server_activate() yourself. On failure the socket is closed and std::system_error
  /// names the step ("bind 127.0.0.1:80: Address already in use").
  explicit StreamSocketServer(Address server_address, bool bind_and_activate = true)
      : BaseServer(std::move(server_address)), acceptor_(context()) {
    endpoint_ = detail::to_endpoint<Protocol>(server_address_, context());
    std::error_code ec;
    acceptor_.open(endpoint_.protocol(), ec);
    if (ec) detail::throw_error(ec, "socket");
    if (bind_and_activate) {
      try {
        // Qualified: a constructor cannot reach a subclass's override. Subclasses that override
        // these pass bind_and_activate = false and call them after construction.
        StreamSocketServer::server_bind();
        StreamSocketServer::server_activate();
      } catch (...) {
        close_socket();
        throw;
      }
    }
  }

  // Defined outside the class, so not inline: separately compiled, the socket's teardown then
  // stays in the library with the rest of the explicit instantiation (tcp_server.hpp).
  ~StreamSocketServer() override;

  /// SO_REUSEADDR before bind(), so a restarted server can bind while old connections linger
  /// in TIME_WAIT. Python's default is false; ours is true (Unix sockets ignore it).
  bool allow_reuse_address = true;
  /// SO_REUSEPORT before bind(), letting several sockets share the port. Opt-in, as in Python.
  bool allow_reuse_port = false;
  /// The listen() backlog. Python's default is 5; ours is SOMAXCONN, so a burst of connects is
  /// not refused (the kernel caps it at net.core.somaxconn).
  int request_queue_size = SOMAXCONN;

  /// The layers each connection gets, bottom first, above the PROXY protocol's (when the peer
  /// is a trusted proxy) and under the handler's rfile and wfile. They are made on the
  /// connection's own thread (or event loop), and their handshake() runs there before the
  /// handler, within limits.first_byte_timeout. Set before serving.
  std::vector<Layer> layers;

  /// TLS on every connection when set (docs/tls.md): a TlsStream goes on each one, above the
  /// PROXY layer and under `layers`, and its handshake runs on the connection's own thread (or
  /// event loop) within the context's handshake_timeout of the accept; the handler sees
  /// plaintext and reads the session from request->tls(). A failed handshake is counted in
  /// stats().tls by reason and logged (at info for a connection that sent nothing), and the
  /// handler never starts. Set before serving; tls->reload() swaps the certificate while
  /// serving.
  std::shared_ptr<TlsContext> tls;

  /// Binds the socket and records the bound address in server_address(). May be overridden.
  virtual void server_bind() {
    server_address_ =
        detail::bind_server_socket(acceptor_, endpoint_, allow_reuse_address && !detail::is_local_protocol_v<Protocol>,
                                   allow_reuse_port, server_address_, bound_path_);
  }

  /// Listens with request_queue_size. May be overridden.
  virtual void server_activate() {
    std::error_code ec;
    acceptor_.listen(request_queue_size, ec);
    // Non-blocking, so that a connection another process accepted first cannot block us.
    if (!ec) acceptor_.non_blocking(true, ec);
    if (ec) detail::throw_error(ec, "listen " + server_address_.to_string());
  }

  /// Closes the listening socket; a Unix server also removes its socket file (Python leaves
  /// it behind). Idempotent.
  void server_close() override { close_socket(); }

  int fileno() const noexcept override {
    return acceptor_.is_open() && !closed_after_fork_
               ? const_cast<typename Protocol::acceptor&>(acceptor_).native_handle()
               : -1;
  }

  /// The listening socket (Python's `server.socket`).
  typename Protocol::acceptor& socket() noexcept { return acceptor_; }

  /// Accepts one connection: Python's get_request(). Returns an empty request when there is
  /// none after all (another process took it). Throws std::system_error, which the serving loop
  /// ignores, as Python does. May be overridden.
  virtual std::pair<RequestType, Address> get_request() {
    typename Protocol::endpoint peer;
    for (;;) {
      socklen_t length = static_cast<socklen_t>(peer.capacity());
      detail::FileDescriptor fd(::accept4(fileno(), peer.data(), &length, SOCK_CLOEXEC));
      if (fd) {
        peer.resize(length);
        auto stream =
            std::make_unique<SocketStream>(fd.get(), SocketStream::blocking);  // Linux: no O_NONBLOCK from the listener
        fd.release();
        return {RequestType(std::move(stream)), detail::to_address(peer)};
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
      if (errno != EINTR) detail::throw_errno("accept");
    }
  }

  /// Sends FIN (errors ignored, as in Python), then close_request(). May be overridden.
  void shutdown_request(Request& request) override {
    static_cast<RequestType&>(request).shutdown_write();
    close_request(request);
  }

  /// Closes the connection. May be overridden.
  void close_request(Request& request) override { request.close(); }

 protected:
  void async_wait_request(std::function<void(std::error_code)> done) override {
    acceptor_.async_wait(Protocol::acceptor::wait_read, std::move(done));
  }

  void cancel_wait_request() noexcept override {
    std::error_code ignored;
    acceptor_.cancel(ignored);
  }

  // A forked child must not keep the port open after the parent closes it. A plain close():
  // asio's would also remove the socket from the epoll set the child shares with the parent.
  void after_fork_in_child() noexcept override {
    if (acceptor_.is_open() && !closed_after_fork_) ::close(acceptor_.native_handle());
    closed_after_fork_ = true;
  }

  // On the connection's thread, before its handler: puts the PROXY protocol's layer (for a
  // trusted proxy), the TLS layer (server.tls) and the server's layers on the connection.
  // Returns the PROXY layer, or null; the TLS one is the request's tls().
  ProxyStream* open_layers(RequestType& request) {
    std::unique_ptr<ByteStream>& top = detail::StreamRequestAccess::stream(request);
    ProxyStream* proxy = nullptr;
    const detail::ConnectionRecord* record = detail::RequestAccess::record(request);
    if (record != nullptr && record->expects_proxy_header()) {
      auto layer = std::make_unique<ProxyStream>(std::move(top), proxy_protocol.max_tlv_size);
      proxy = layer.get();
      top = std::move(layer);
    }
    if (tls) {
      auto layer = std::make_unique<TlsStream>(std::move(top), *tls);
      detail::StreamRequestAccess::tls(request) = layer.get();
      top = std::move(layer);
    }
    for (const Layer& make : layers) {
      top = make(std::move(top));
      if (!top) throw std::logic_error("a layer made no stream");
    }
    return proxy;
  }

  // Whether a connection gets layers with a handshake to run.
  bool opens_layers(const RequestType& request) const noexcept {
    const detail::ConnectionRecord* record = detail::RequestAccess::record(request);
    return !layers.empty() || tls || (record != nullptr && record->expects_proxy_header());
  }

  // Whether a connection has a closing exchange to run after its handler (close_connection()).
  bool closes_layers(const RequestType& request) const noexcept { return request.tls() != nullptr || !layers.empty(); }

  // The TLS handshake's deadline: handshake_timeout after the accept.
  detail::Clock::time_point tls_deadline(const RequestType& request) const {
    const detail::ConnectionRecord* record = detail::RequestAccess::record(request);
    const detail::Clock::time_point accepted = record != nullptr ? record->accepted() : detail::Clock::now();
    const TlsStream* layer = request.tls();
    return accepted + detail::to_duration(layer->handshake_timeout());
  }

  // After the TLS handshake: counted, and logged at debug.
  void tls_handshake_done(const RequestType& request, const Address& client) {
    const TlsStream& layer = *request.tls();
    const bool resumed = layer.resumed();
    tracker().count_tls(TlsFailure::none);
    if (resumed) tracker().count_tls_resumed();
    logger.log(LogLevel::debug, LogCategory::security, "TLS from {}: {} {}{}", client, layer.protocol(), layer.cipher(),
               resumed ? " (resumed)" : "");
  }

  // A TLS handshake that failed (the exception being handled): the close reason, counted by
  // why, and one log line (info for a connection that sent nothing, a scanner or a probe) in
  // place of handle_error()'s.
  void tls_handshake_failed(RequestType& request, const Address& client) {
    detail::RequestAccess::note_current_exception(request);
    const TlsFailure why = request.tls()->failure();
    tracker().count_tls(why == TlsFailure::none ? TlsFailure::other : why);
    if (why == TlsFailure::eof_before_hello) {
      logger.log(LogLevel::info, LogCategory::security, "TLS from {}: closed before its ClientHello", client);
    } else {
      logger.log(LogLevel::warning, LogCategory::security, "TLS handshake from {} failed: {}", client,
                 detail::current_exception_message());
    }
  }

  // Before shutdown_request() after a handler returned: the layers' closing exchange (TLS's
  // close_notify), within close_notify_timeout, and a line for a TLS peer that had closed
  // without close_notify between requests. Blocking; the async server runs its own loop.
  detail::Clock::time_point close_deadline(const RequestType& request) const {
    const TlsStream* layer = request.tls();
    const Seconds wait = layer != nullptr ? layer->close_notify_timeout() : Seconds(0);
    return detail::Clock::now() + detail::to_duration(wait);
  }
  void note_truncation(const RequestType& request, const Address& client) {
    const TlsStream* layer = request.tls();
    if (layer != nullptr && layer->truncated())
      logger.log(LogLevel::info, LogCategory::security, "TLS from {}: closed without close_notify, between requests",
                 client);
  }

  // When the connection's PROXY header has been read: the client it names becomes the
  // handler's `client`, and the connection's for the per-IP limit, the logs and stats. False
  // when that client is over max_connections_per_ip: the connection is then refused (counted in
  // stats().refused, not accepted; no access line) and logged.
  bool proxy_header_read(RequestType& request, const ProxyStream& proxy, Address& client) {
    const ProxyHeader& header = proxy.header();
    const bool local = header.command() == ProxyHeader::Command::local;
    tracker().count_proxy(local                   ? detail::ProxyOutcome::local
                          : header.version() == 1 ? detail::ProxyOutcome::v1
                                                  : detail::ProxyOutcome::v2);
    if (!local) {
      logger.log(LogLevel::info, LogCategory::security, "PROXY v{} header from {}: client {}", header.version(), client,
                 header.source());
      client = header.source();
    } else {
      logger.log(LogLevel::info, LogCategory::security, "PROXY v{} LOCAL header from {}", header.version(), client);
    }
    detail::ConnectionRecord* record = detail::RequestAccess::record(request);
    if (record == nullptr || tracker().admit_client(*record, client, std::make_unique<ProxyHeader>(header)))
      return true;
    tracker().withdraw(*record);  // refused, as the same client connecting directly would be
    logger.log(LogLevel::warning, LogCategory::security,
               "refused connection from {}: max_connections_per_ip ({}) reached for its address", client,
               limits.max_connections_per_ip);
    return false;
  }

  // Counts a PROXY header that failed (the exception being handled), and rethrows it.
  [[noreturn]] void proxy_header_failed() {
    const std::error_code code = detail::current_error_code();
    tracker().count_proxy(code == errc::proxy_header_timeout ? detail::ProxyOutcome::timed_out
                                                             : detail::ProxyOutcome::invalid);
    throw;
  }

  // The deadline of the PROXY header, and of the server's layers' handshake, from now.
  detail::Clock::time_point proxy_deadline() const {
    return detail::Clock::now() + detail::to_duration(proxy_protocol.header_timeout);
  }
  detail::Clock::time_point layers_deadline() const {
    return limits.first_byte_timeout ? detail::Clock::now() + detail::to_duration(*limits.first_byte_timeout)
                                     : detail::Clock::time_point::max();
  }

 private:
  void handle_request_noblock() override {
    this->template handle_request_with<RequestType>([this] { return get_request(); });
  }

  void close_socket() noexcept { detail::close_server_socket(acceptor_, bound_path_); }

  typename Protocol::acceptor acceptor_;
  typename Protocol::endpoint endpoint_;
  std::string bound_path_;          // the socket file a Unix server created
  bool closed_after_fork_ = false;  // in a forked child: the descriptor is closed, asio does not know
};

template <class Protocol, class RequestType>
StreamSocketServer<Protocol, RequestType>::~StreamSocketServer() {
  close_socket();
}

}  // namespace socketserver

#endif  // SOCKETSERVER_STREAM_SOCKET_SERVER_HPP
