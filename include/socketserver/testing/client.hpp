#ifndef SOCKETSERVER_TESTING_CLIENT_HPP
#define SOCKETSERVER_TESTING_CLIENT_HPP

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <socketserver/address.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/socket_stream.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver {

/// A small blocking client for tests against a real server: connect, send, read lines.
///
/// Every wait (connect, each read, each write) is bounded by the timeout given to connect(), so
/// a server that does not answer fails the test with std::errc::timed_out instead of hanging it.
/// Failures throw std::system_error naming the step ("connect 127.0.0.1:9999", "recv", "send").
///
/// ```
/// socketserver::ThreadingTCPServer<Upper> server({"127.0.0.1", 0});  // port 0: a free port
/// std::thread serving([&] { server.serve_forever(); });
/// auto client = socketserver::TestClient::connect(server.server_address());
/// client.send("hello\n");
/// CHECK(client.readline() == "HELLO\n");
/// client.close();
/// server.shutdown();
/// serving.join();
/// server.server_close();
/// ```
/// The server binds and listens in its constructor, so the client may connect before
/// serve_forever() runs: no sleep is needed.
///
/// Async handlers (AsyncStreamRequestHandler) have no in-memory transport: they run on an
/// event loop over a real socket descriptor, so HandlerTest cannot drive them. Test them
/// against a real AsyncTCPServer (or AsyncUnixStreamServer) on port 0 with this client:
/// ```
/// socketserver::AsyncTCPServer<AsyncUpper> server({"127.0.0.1", 0});
/// std::thread serving([&] { server.serve_forever(); });
/// auto client = socketserver::TestClient::connect(server.server_address(), 2s);
/// client.send("hello\n");
/// CHECK(client.readline() == "HELLO\n");
/// client.shutdown_write();
/// CHECK(client.read_all().empty());  // the handler saw end of stream and returned
/// server.shutdown();
/// serving.join();
/// server.server_close();
/// ```
///
/// Thread safety: one thread at a time. Move-only; it owns its socket and closes it on
/// destruction.
class TestClient {
 public:
  /// Connects a stream socket to `address`: TCP over IPv4 or IPv6 (a literal or a host name,
  /// whose addresses are tried in turn) or a Unix socket path. Each wait of this client is
  /// bounded by `timeout`. Throws std::system_error naming the step and the address.
  static TestClient connect(const Address& address, Seconds timeout = std::chrono::seconds(10));

  /// Sends all of `data` (MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE).
  void send(std::string_view data) { stream_->sendall(data); }

  /// The next line, with its "\n"; at end of stream the unterminated rest, then std::nullopt.
  /// Throws std::system_error(std::errc::timed_out) when the server sends nothing in time, and
  /// errc::line_too_long past 64 KiB (BufferedReader::max_line).
  std::optional<std::string> readline() { return reader_.readline(); }

  /// `n` bytes, fewer only if the stream ends first.
  std::string read(std::size_t n) { return reader_.read(n); }

  /// Everything until the server closes the connection.
  std::string read_all() { return reader_.read(); }

  /// Sends FIN: the server's handler reads end of stream; this client can still read.
  void shutdown_write() noexcept { stream_->shutdown_write(); }

  /// Closes the socket; later calls fail with EBADF. Idempotent.
  void close() noexcept { stream_->close(); }

  /// The socket descriptor, or -1 once closed.
  int fileno() const noexcept { return stream_->native_handle(); }

  /// The limit on each wait.
  Seconds timeout() const noexcept { return *stream_->timeout(Direction::read); }

 private:
  TestClient(int fd, Seconds timeout);

  // A non-blocking connect(), waited for with poll(), so that the timeout bounds it too; the
  // descriptor comes back blocking (SocketStream).
  static int connect_to(const sockaddr* peer, socklen_t length, Seconds timeout, const std::string& where);

  [[noreturn]] static void fail(const std::string& what, int error);

  // Python's socket.create_connection(): each address of the name in turn; the last error wins.
  static int connect_by_name(const Address& address, Seconds timeout, const std::string& where);

  std::unique_ptr<SocketStream> stream_;  // on the heap: reader_ points at it across moves
  BufferedReader reader_;
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <netdb.h>
#include <poll.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>

#include <socketserver/detail/file_descriptor.hpp>
#include <socketserver/detail/poll.hpp>
#include <socketserver/io/detail/io_access.hpp>

namespace socketserver {

SOCKETSERVER_DECL TestClient TestClient::connect(const Address& address, Seconds timeout) {
  const std::string where = address.to_string();
  if (address.is_unix()) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (address.path().size() >= sizeof un.sun_path)
      throw std::system_error(std::make_error_code(std::errc::filename_too_long), "connect " + where);
    std::memcpy(un.sun_path, address.path().data(), address.path().size());
    return TestClient(connect_to(reinterpret_cast<const sockaddr*>(&un), sizeof un, timeout, where), timeout);
  }
  if (!address.is_ip()) throw std::system_error(std::make_error_code(std::errc::invalid_argument), "connect " + where);
  std::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(address.host(), ec);
  if (!ec) {
    const asio::ip::tcp::endpoint endpoint(ip, address.port());
    return TestClient(connect_to(endpoint.data(), static_cast<socklen_t>(endpoint.size()), timeout, where), timeout);
  }
  return TestClient(connect_by_name(address, timeout, where), timeout);
}

SOCKETSERVER_DECL TestClient::TestClient(int fd, Seconds timeout) : stream_(std::make_unique<SocketStream>(fd)) {
  stream_->set_timeout(timeout);
  detail::IoAccess::attach(reader_, *stream_);
}

SOCKETSERVER_DECL int TestClient::connect_to(const sockaddr* peer, socklen_t length, Seconds timeout,
                                             const std::string& where) {
  detail::FileDescriptor fd(::socket(peer->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail("socket " + where, errno);
  if (::connect(fd.get(), peer, length) < 0) {
    if (errno != EINPROGRESS && errno != EINTR) fail("connect " + where, errno);
    if (!detail::wait_ready(fd.get(), POLLOUT, timeout))
      throw std::system_error(std::make_error_code(std::errc::timed_out), "connect " + where);
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) < 0) error = errno;
    if (error != 0) fail("connect " + where, error);
  }
  return fd.release();
}

SOCKETSERVER_DECL void TestClient::fail(const std::string& what, int error) {
  throw std::system_error(error, std::system_category(), what);
}

SOCKETSERVER_DECL int TestClient::connect_by_name(const Address& address, Seconds timeout, const std::string& where) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port());
  if (const int rc = ::getaddrinfo(address.host().c_str(), port.c_str(), &hints, &found); rc != 0)
    throw std::system_error(std::make_error_code(std::errc::host_unreachable),
                            "resolve " + address.host() + ": " + ::gai_strerror(rc));
  const std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(found, ::freeaddrinfo);
  for (const addrinfo* ai = found;; ai = ai->ai_next) {
    try {
      return connect_to(ai->ai_addr, ai->ai_addrlen, timeout, where);
    } catch (const std::system_error&) {
      if (ai->ai_next == nullptr) throw;
    }
  }
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_TESTING_CLIENT_HPP
