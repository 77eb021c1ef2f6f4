#ifndef SOCKETSERVER_IO_SOCKET_STREAM_HPP
#define SOCKETSERVER_IO_SOCKET_STREAM_HPP

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <span>
#include <system_error>

#include <socketserver/detail/file_descriptor.hpp>
#include <socketserver/detail/system_error.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver {

/// A ByteStream over a connected stream socket (TCP or Unix).
///
/// Owns the descriptor and closes it on destruction. The socket is blocking and the kernel
/// keeps the timeout (SO_RCVTIMEO, SO_SNDTIMEO), so a read costs one system call whether the
/// data is there or has to be waited for, and a timeout needs no timer. Sends use
/// MSG_NOSIGNAL, so a closed peer is an EPIPE error, never a SIGPIPE.
class SocketStream final : public ByteStream {
 public:
  /// Takes ownership of `fd`, a connected stream socket, and makes it blocking. If that fails,
  /// it throws and `fd` stays the caller's.
  explicit SocketStream(int fd) : fd_(make_blocking(fd)) {}

  /// Says that a descriptor is blocking already (accept() without SOCK_NONBLOCK returns one).
  struct blocking_t {
    explicit blocking_t() = default;
  };
  static constexpr blocking_t blocking{};

  /// Takes ownership of `fd`, a connected stream socket known to be blocking: no system call.
  SocketStream(int fd, blocking_t /*unused*/) noexcept : fd_(fd) {}

  std::size_t read_some(std::span<char> buffer) override {
    if (buffer.empty()) return 0;
    return transfer("recv", [&](int flags) { return ::recv(fd_.get(), buffer.data(), buffer.size(), flags); });
  }

  std::size_t write_some(std::span<const char> data) override {
    if (data.empty()) return 0;
    return transfer("send",
                    [&](int flags) { return ::send(fd_.get(), data.data(), data.size(), flags | MSG_NOSIGNAL); });
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

  /// Hands the timeout to the kernel; only a change costs system calls.
  void set_timeout(std::optional<Seconds> timeout) noexcept override {
    if (timeout && *timeout < Seconds(0)) timeout = Seconds(0);
    if (timeout == ByteStream::timeout()) return;
    ByteStream::set_timeout(timeout);
    apply_timeout(timeout);
  }

 private:
  static int make_blocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ((flags & O_NONBLOCK) && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0))
      detail::throw_errno("fcntl");
    return fd;
  }

  // A zero timeout never waits (MSG_DONTWAIT): SO_RCVTIMEO would read 0 as "for ever".
  void apply_timeout(std::optional<Seconds> timeout) noexcept {
    timeval tv{};  // zero: no limit
    if (timeout && *timeout > Seconds(0)) {
      const auto us = std::max<long long>(1, std::chrono::ceil<std::chrono::microseconds>(*timeout).count());
      tv.tv_sec = static_cast<time_t>(us / 1000000);
      tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
    }
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  // One recv() or send(). EAGAIN means the timeout passed; a signal (EINTR) retries with the
  // time that is left.
  template <class Call>
  std::size_t transfer(const char* what, Call call) {
    using clock = std::chrono::steady_clock;
    const std::optional<Seconds> timeout = ByteStream::timeout();
    const int flags = timeout && *timeout == Seconds(0) ? MSG_DONTWAIT : 0;
    const bool limited = timeout && flags == 0;
    const clock::time_point deadline =
        limited ? clock::now() + std::chrono::ceil<clock::duration>(*timeout) : clock::time_point{};
    bool shortened = false;
    for (;;) {
      const ssize_t n = call(flags);
      const int error = errno;
      if (n < 0 && error == EINTR) {
        if (!limited) continue;
        const auto left = deadline - clock::now();
        if (left > clock::duration::zero()) {
          apply_timeout(std::chrono::duration_cast<Seconds>(left));
          shortened = true;
          continue;
        }
      }
      if (shortened) apply_timeout(timeout);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (error == EINTR || error == EAGAIN || error == EWOULDBLOCK)
        throw std::system_error(std::make_error_code(std::errc::timed_out), what);
      detail::throw_errno(what, error);
    }
  }

  detail::FileDescriptor fd_;  // the timeout is ByteStream's
};

}  // namespace socketserver

#endif  // SOCKETSERVER_IO_SOCKET_STREAM_HPP
