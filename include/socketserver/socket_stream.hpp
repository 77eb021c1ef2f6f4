#ifndef SOCKETSERVER_SOCKET_STREAM_HPP
#define SOCKETSERVER_SOCKET_STREAM_HPP

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include <socketserver/byte_stream.hpp>
#include <socketserver/detail/file_descriptor.hpp>
#include <socketserver/detail/poll.hpp>

namespace socketserver {

/// A ByteStream over a connected stream socket (TCP or Unix).
///
/// Owns the descriptor and closes it on destruction. The socket is non-blocking underneath:
/// each read or write is tried first and waited for with poll() only when the kernel has
/// nothing, so a read that finds data costs one system call and timeouts need no timer.
/// Sends use MSG_NOSIGNAL, so a closed peer is an EPIPE error, never a SIGPIPE.
class SocketStream final : public ByteStream {
 public:
  /// Takes ownership of `fd`, a connected stream socket, and makes it non-blocking. If that
  /// fails, it throws and `fd` stays the caller's.
  explicit SocketStream(int fd) : fd_(make_non_blocking(fd)) {}

  std::size_t read_some(std::span<char> buffer) override {
    if (buffer.empty()) return 0;
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
      if (n >= 0) return static_cast<std::size_t>(n);
      wait_or_throw(POLLIN, "recv");
    }
  }

  std::size_t write_some(std::span<const char> data) override {
    if (data.empty()) return 0;
    for (;;) {
      const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) return static_cast<std::size_t>(n);
      wait_or_throw(POLLOUT, "send");
    }
  }

  void shutdown_write() noexcept override {
    if (fd_) ::shutdown(fd_.get(), SHUT_WR);
  }

  void close() noexcept override { fd_.reset(); }

  int native_handle() const noexcept override { return fd_.get(); }

  void set_no_delay(bool on) override {
    const int value = on ? 1 : 0;
    // Unix sockets have no Nagle algorithm: EOPNOTSUPP there is expected and ignored.
    if (::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) < 0 && errno != EOPNOTSUPP)
      detail::throw_errno("setsockopt(TCP_NODELAY)");
  }

 private:
  static int make_non_blocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || (!(flags & O_NONBLOCK) && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
      detail::throw_errno("fcntl");
    return fd;
  }

  // After a failed recv/send: wait when the socket would block, retry after a signal, throw
  // on anything else.
  void wait_or_throw(short events, const char* what) {
    const int error = errno;
    if (error == EINTR) return;
    if (error != EAGAIN && error != EWOULDBLOCK) detail::throw_errno(what, error);
    if (!detail::wait_ready(fd_.get(), events, timeout()))
      throw std::system_error(std::make_error_code(std::errc::timed_out), what);
  }

  detail::FileDescriptor fd_;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_SOCKET_STREAM_HPP
