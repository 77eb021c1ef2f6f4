#ifndef SOCKETSERVER_IO_SOCKET_STREAM_HPP
#define SOCKETSERVER_IO_SOCKET_STREAM_HPP

#include <cstddef>
#include <optional>
#include <span>

#include <socketserver/detail/config.hpp>
#include <socketserver/detail/file_descriptor.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/detail/readiness.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver {

namespace detail {
struct SocketStreamAccess;
}

/// A ByteStream over a connected stream socket (TCP or Unix): the bottom of every server
/// connection.
///
/// Owns the descriptor and closes it on destruction. Sends use MSG_NOSIGNAL, so a closed peer is
/// an EPIPE error, never a SIGPIPE.
///
/// Blocking (under blocking handlers): the socket is blocking and the kernel keeps each
/// direction's timeout (SO_RCVTIMEO, SO_SNDTIMEO), so a read costs one system call whether the
/// data is there or has to be waited for, and a timeout needs no timer. A timeout reaches the
/// kernel at the first wait that needs it, and only when it changed.
///
/// Non-blocking (under coroutine handlers, set up by the async server): every call uses
/// MSG_DONTWAIT, and the event loop's readiness flags say when the socket is worth calling: a
/// read shorter than its buffer marks it drained, so the next read returns would_block without a
/// system call until the kernel reports a new edge.
class SocketStream final : public ByteStream {
 public:
  /// Takes ownership of `fd`, a connected stream socket, and makes it blocking. If that fails,
  /// it throws and `fd` stays the caller's.
  explicit SocketStream(int fd);

  /// Says that a descriptor is blocking already (accept() without SOCK_NONBLOCK returns one).
  struct blocking_t {
    explicit blocking_t() = default;
  };
  static constexpr blocking_t blocking{};

  /// Takes ownership of `fd`, a connected stream socket known to be blocking: no system call.
  SocketStream(int fd, blocking_t /*unused*/) noexcept : fd_(fd) {}

  std::size_t read_some(std::span<char> buffer) override;

  std::size_t write_some(std::span<const char> data) override;

  Direction blocked_on() const noexcept override { return blocked_on_; }

  void shutdown_write() noexcept override;

  void close() noexcept override;

  int native_handle() const noexcept override { return fd_.get(); }

  void set_no_delay(bool on) override;

  std::optional<Seconds> timeout(Direction direction) const noexcept override;

  /// Keeps the timeout; the kernel gets it (one system call) at the next wait that needs it. A
  /// zero timeout never waits (MSG_DONTWAIT) and leaves the kernel's as it is.
  void set_timeout(Direction direction, std::optional<Seconds> limit) noexcept override;
  using ByteStream::set_timeout;

 private:
  friend struct detail::SocketStreamAccess;

  static constexpr int index(Direction direction) noexcept { return direction == Direction::read ? 0 : 1; }

  static int make_blocking(int fd);

  // Gives the kernel the timeout of `direction` (`seconds`, negative for none).
  void apply_timeout(Direction direction, double seconds) noexcept;

  // One blocking recv() or send(). EAGAIN means the timeout passed; a signal (EINTR) retries
  // with the time that is left. A zero timeout uses MSG_DONTWAIT: SO_RCVTIMEO reads 0 as "for
  // ever".
  template <class Call>
  std::size_t transfer(Direction direction, const char* what, Call call);

  // Non-blocking: one recv() if the socket may hold data. Short means drained, unless the
  // peer's FIN is queued behind the data: no new edge would announce it, so after a hangup the
  // next read goes ahead and returns 0.
  std::size_t read_now(std::span<char> buffer);

  std::size_t write_now(std::span<const char> data);

  detail::FileDescriptor fd_;
  Direction blocked_on_ = Direction::read;
  bool stale_[2] = {false, false};          // the kernel's timeout (SO_RCVTIMEO, SO_SNDTIMEO) may differ
  detail::Readiness* readiness_ = nullptr;  // set: non-blocking, driven by an event loop
  double timeouts_[2] = {-1.0, -1.0};       // each direction's timeout in seconds; negative: none
};

namespace detail {
// For the async server: makes a stream non-blocking, reading `readiness` (owned by its event
// loop entry, which must outlive the stream's use).
struct SocketStreamAccess {
  static void make_nonblocking(SocketStream& stream, Readiness& readiness) noexcept { stream.readiness_ = &readiness; }
};
}  // namespace detail

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <system_error>

#include <socketserver/detail/system_error.hpp>

namespace socketserver {

SOCKETSERVER_DECL SocketStream::SocketStream(int fd) : fd_(make_blocking(fd)) {}

SOCKETSERVER_DECL std::size_t SocketStream::read_some(std::span<char> buffer) {
  if (buffer.empty()) return 0;
  if (readiness_ != nullptr) return read_now(buffer);
  return transfer(Direction::read, "recv",
                  [&](int flags) { return ::recv(fd_.get(), buffer.data(), buffer.size(), flags); });
}

SOCKETSERVER_DECL std::size_t SocketStream::write_some(std::span<const char> data) {
  if (data.empty()) return 0;
  if (readiness_ != nullptr) return write_now(data);
  return transfer(Direction::write, "send",
                  [&](int flags) { return ::send(fd_.get(), data.data(), data.size(), flags | MSG_NOSIGNAL); });
}

SOCKETSERVER_DECL void SocketStream::shutdown_write() noexcept {
  if (fd_) ::shutdown(fd_.get(), SHUT_WR);
}

SOCKETSERVER_DECL void SocketStream::close() noexcept { fd_.reset(); }

SOCKETSERVER_DECL void SocketStream::set_no_delay(bool on) {
  const int value = on ? 1 : 0;
  // Unix sockets have no Nagle algorithm: EOPNOTSUPP there is expected and ignored.
  if (::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) < 0 && errno != EOPNOTSUPP)
    detail::throw_errno("setsockopt(TCP_NODELAY)");
}

SOCKETSERVER_DECL std::optional<Seconds> SocketStream::timeout(Direction direction) const noexcept {
  const double seconds = timeouts_[index(direction)];
  if (seconds < 0) return std::nullopt;
  return Seconds(seconds);
}

SOCKETSERVER_DECL void SocketStream::set_timeout(Direction direction, std::optional<Seconds> limit) noexcept {
  const double seconds = limit ? std::max(limit->count(), 0.0) : -1.0;
  double& kept = timeouts_[index(direction)];
  if (seconds == kept) return;
  kept = seconds;
  stale_[index(direction)] = true;
}

SOCKETSERVER_DECL int SocketStream::make_blocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ((flags & O_NONBLOCK) && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0))
    detail::throw_errno("fcntl");
  return fd;
}

SOCKETSERVER_DECL void SocketStream::apply_timeout(Direction direction, double seconds) noexcept {
  timeval tv{};  // zero: no limit
  if (seconds > 0) {
    const auto us = std::max<long long>(1, std::chrono::ceil<std::chrono::microseconds>(Seconds(seconds)).count());
    tv.tv_sec = static_cast<time_t>(us / 1000000);
    tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  }
  ::setsockopt(fd_.get(), SOL_SOCKET, direction == Direction::read ? SO_RCVTIMEO : SO_SNDTIMEO, &tv, sizeof tv);
}

template <class Call>
std::size_t SocketStream::transfer(Direction direction, const char* what, Call call) {
  using clock = std::chrono::steady_clock;
  const double limit = timeouts_[index(direction)];
  const int flags = limit == 0 ? MSG_DONTWAIT : 0;
  bool& stale = stale_[index(direction)];
  if (flags == 0 && stale) {
    apply_timeout(direction, limit);
    stale = false;
  }
  const bool limited = limit > 0;
  const clock::time_point deadline =
      limited ? clock::now() + std::chrono::ceil<clock::duration>(Seconds(limit)) : clock::time_point{};
  for (;;) {
    const ssize_t n = call(flags);
    const int error = errno;
    if (n < 0 && error == EINTR) {
      if (!limited) continue;
      const auto left = deadline - clock::now();
      if (left > clock::duration::zero()) {
        apply_timeout(direction, std::max(std::chrono::duration<double>(left).count(), 1e-6));
        stale = true;  // the kernel holds the time that was left
        continue;
      }
    }
    if (n >= 0) return static_cast<std::size_t>(n);
    if (error == EINTR || error == EAGAIN || error == EWOULDBLOCK)
      throw std::system_error(std::make_error_code(std::errc::timed_out), what);
    detail::throw_errno(what, error);
  }
}

SOCKETSERVER_DECL std::size_t SocketStream::read_now(std::span<char> buffer) {
  if (readiness_->readable) {
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n >= 0) {
        if (static_cast<std::size_t>(n) < buffer.size() && n > 0 && !readiness_->hangup) readiness_->readable = false;
        return static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) detail::throw_errno("recv");
      readiness_->readable = false;
      break;
    }
  }
  blocked_on_ = Direction::read;
  return would_block;
}

SOCKETSERVER_DECL std::size_t SocketStream::write_now(std::span<const char> data) {
  if (readiness_->writable) {
    for (;;) {
      const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        if (static_cast<std::size_t>(n) < data.size()) readiness_->writable = false;
        if (n > 0) return static_cast<std::size_t>(n);
        break;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) detail::throw_errno("send");
      readiness_->writable = false;
      break;
    }
  }
  blocked_on_ = Direction::write;
  return would_block;
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_IO_SOCKET_STREAM_HPP
