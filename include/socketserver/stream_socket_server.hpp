#ifndef SOCKETSERVER_STREAM_SOCKET_SERVER_HPP
#define SOCKETSERVER_STREAM_SOCKET_SERVER_HPP

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include <socketserver/address.hpp>
#include <socketserver/base_server.hpp>
#include <socketserver/detail/endpoint.hpp>
#include <socketserver/detail/file_descriptor.hpp>
#include <socketserver/detail/server_socket.hpp>
#include <socketserver/detail/system_error.hpp>
#include <socketserver/io/socket_stream.hpp>

namespace socketserver {

/// The listening half of a stream server: binds, listens, accepts and closes (Python's
/// TCPServer without finish_request(), with the address family as the `Protocol` parameter).
/// BasicStreamServer adds handlers that run on a thread; BasicAsyncStreamServer adds
/// coroutine handlers.
///
/// Ownership: the server owns the listening socket. Each accepted connection becomes a
/// Request owning a SocketStream; shutdown_request() sends FIN and closes it when its handler
/// is done.
template <class Protocol>
class StreamSocketServer : public BaseServer {
 public:
  using protocol_type = Protocol;
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

  ~StreamSocketServer() override { close_socket(); }

  /// SO_REUSEADDR before bind(), so a restarted server can bind while old connections linger
  /// in TIME_WAIT. Python's default is false; ours is true (Unix sockets ignore it).
  bool allow_reuse_address = true;
  /// SO_REUSEPORT before bind(), letting several sockets share the port. Opt-in, as in Python.
  bool allow_reuse_port = false;
  /// The listen() backlog. Python's default is 5; ours is SOMAXCONN, so a burst of connects is
  /// not refused (the kernel caps it at net.core.somaxconn).
  int request_queue_size = SOMAXCONN;

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

  /// Accepts one connection. May be overridden.
  std::pair<Request, Address> get_request() override {
    typename Protocol::endpoint peer;
    for (;;) {
      socklen_t length = static_cast<socklen_t>(peer.capacity());
      detail::FileDescriptor fd(::accept4(fileno(), peer.data(), &length, SOCK_CLOEXEC));
      if (fd) {
        peer.resize(length);
        auto stream =
            std::make_unique<SocketStream>(fd.get(), SocketStream::blocking);  // Linux: no O_NONBLOCK from the listener
        fd.release();
        return {Request(std::move(stream)), detail::to_address(peer)};
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
      if (errno != EINTR) detail::throw_errno("accept");
    }
  }

  /// Sends FIN (errors ignored, as in Python), then close_request(). May be overridden.
  void shutdown_request(Request& request) override {
    if (request.is_stream()) request.stream().shutdown_write();
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

 private:
  void close_socket() noexcept { detail::close_server_socket(acceptor_, bound_path_); }

  typename Protocol::acceptor acceptor_;
  typename Protocol::endpoint endpoint_;
  std::string bound_path_;          // the socket file a Unix server created
  bool closed_after_fork_ = false;  // in a forked child: the descriptor is closed, asio does not know
};

}  // namespace socketserver

#endif  // SOCKETSERVER_STREAM_SOCKET_SERVER_HPP
