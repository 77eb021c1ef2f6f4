#ifndef SOCKETSERVER_DATAGRAM_SERVER_HPP
#define SOCKETSERVER_DATAGRAM_SERVER_HPP

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <socketserver/address.hpp>
#include <socketserver/base_request_handler.hpp>
#include <socketserver/base_server.hpp>
#include <socketserver/datagram_request.hpp>
#include <socketserver/detail/endpoint.hpp>
#include <socketserver/detail/poll.hpp>
#include <socketserver/detail/run_handler.hpp>
#include <socketserver/detail/server_socket.hpp>
#include <socketserver/detail/system_error.hpp>
#include <socketserver/io/datagram_socket.hpp>

namespace socketserver {

/// A handler a datagram server can run: a default-constructible handler of DatagramRequests
/// (DatagramRequestHandler, BasicRequestHandler<DatagramRequest>).
template <class H>
concept DatagramHandler = std::derived_from<H, BasicRequestHandler<DatagramRequest>> && std::default_initializable<H>;

/// A bound datagram socket that runs a `Handler` for each datagram received: what UDPServer
/// and UnixDatagramServer are made of.
///
/// Ownership: the server owns its one socket; each Request holds a copy of the packet and a
/// reference to the socket for replies, valid until server_close(). There is no connection
/// to shut down or close per request, as in Python.
template <DatagramHandler Handler, class Protocol>
class BasicDatagramServer : public BaseServer {
 public:
  using handler_type = Handler;
  using protocol_type = Protocol;
  using request_type = DatagramRequest;
  /// Handlers reply through the server's socket: a mixin must not close it under them.
  static constexpr bool handlers_share_server_socket = true;

  /// Creates the socket and, when `bind_and_activate` is true, binds it (see
  /// BasicStreamServer for the two-step form and errors).
  explicit BasicDatagramServer(Address server_address, bool bind_and_activate = true)
      : BaseServer(std::move(server_address)), socket_(context()), sender_(*this) {
    endpoint_ = detail::to_endpoint<Protocol>(server_address_, context());
    std::error_code ec;
    socket_.open(endpoint_.protocol(), ec);
    if (ec) detail::throw_error(ec, "socket");
    if (bind_and_activate) {
      try {
        // Qualified: a constructor cannot reach a subclass's override. Subclasses that override
        // these pass bind_and_activate = false and call them after construction.
        BasicDatagramServer::server_bind();
        BasicDatagramServer::server_activate();
      } catch (...) {
        close_socket();
        throw;
      }
    }
  }

  ~BasicDatagramServer() override { close_socket(); }

  /// SO_REUSEADDR before bind(). False, as in Python: on a datagram socket it lets a second
  /// server bind the same port.
  bool allow_reuse_address = false;
  /// SO_REUSEPORT before bind(). Opt-in, as in Python.
  bool allow_reuse_port = false;
  /// The largest datagram read; longer ones are truncated, as in Python (default 8192).
  std::size_t max_packet_size = 8192;

  /// Binds the socket and records the bound address in server_address(). May be overridden.
  virtual void server_bind() {
    server_address_ = detail::bind_server_socket(socket_, endpoint_, allow_reuse_address, allow_reuse_port,
                                                 server_address_, bound_path_);
  }

  /// Nothing to do for a datagram socket but make it non-blocking. May be overridden.
  virtual void server_activate() {
    std::error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) detail::throw_error(ec, "fcntl");
  }

  /// Closes the socket; a Unix server also removes its socket file. Idempotent.
  void server_close() override { close_socket(); }

  int fileno() const noexcept override {
    return socket_.is_open() ? const_cast<typename Protocol::socket&>(socket_).native_handle() : -1;
  }

  /// The server's socket (Python's `server.socket`).
  typename Protocol::socket& socket() noexcept { return socket_; }

  /// Receives one datagram: Python's get_request(). Returns an empty request when there is none
  /// after all. Throws std::system_error, which the serving loop ignores. May be overridden.
  virtual std::pair<DatagramRequest, Address> get_request() {
    std::string packet(max_packet_size, '\0');
    typename Protocol::endpoint peer;
    for (;;) {
      socklen_t length = static_cast<socklen_t>(peer.capacity());
      const ssize_t n = ::recvfrom(fileno(), packet.data(), packet.size(), 0, peer.data(), &length);
      if (n >= 0) {
        packet.resize(static_cast<std::size_t>(n));
        peer.resize(length);
        tracker().count_datagram();
        return {DatagramRequest(std::move(packet), sender_), detail::to_address(peer)};
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
      if (errno != EINTR) detail::throw_errno("recvfrom");
    }
  }

  /// Runs a `Handler` on the datagram. May be overridden.
  void finish_request(Request& request, const Address& client_address) override {
    detail::run_handler<Handler>(static_cast<DatagramRequest&>(request), client_address, this);
  }

 protected:
  void async_wait_request(std::function<void(std::error_code)> done) override {
    socket_.async_wait(Protocol::socket::wait_read, std::move(done));
  }

  void cancel_wait_request() noexcept override {
    std::error_code ignored;
    socket_.cancel(ignored);
  }

 private:
  void handle_request_noblock() override {
    this->template handle_request_with<DatagramRequest>([this] { return get_request(); });
  }

  // The server socket as handlers see it.
  class Sender final : public DatagramSocket {
   public:
    explicit Sender(BasicDatagramServer& server) : server_(server) {}
    void sendto(std::string_view data, const Address& address) override {
      const auto to = detail::to_endpoint<Protocol>(address, server_.context());
      for (;;) {
        if (::sendto(native_handle(), data.data(), data.size(), MSG_NOSIGNAL, to.data(),
                     static_cast<socklen_t>(to.size())) >= 0)
          return;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          detail::wait_ready(native_handle(), POLLOUT, std::nullopt);
        else if (errno != EINTR)
          detail::throw_errno("sendto");
      }
    }
    int native_handle() const noexcept override { return server_.fileno(); }

   private:
    BasicDatagramServer& server_;
  };

  void close_socket() noexcept { detail::close_server_socket(socket_, bound_path_); }

  typename Protocol::socket socket_;
  typename Protocol::endpoint endpoint_;
  std::string bound_path_;
  Sender sender_;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_DATAGRAM_SERVER_HPP
