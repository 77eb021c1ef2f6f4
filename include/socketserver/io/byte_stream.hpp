#ifndef SOCKETSERVER_IO_BYTE_STREAM_HPP
#define SOCKETSERVER_IO_BYTE_STREAM_HPP

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <socketserver/seconds.hpp>

namespace socketserver {

/// A blocking, bidirectional byte stream: what a stream handler reads and writes through.
///
/// rfile and wfile sit on this interface, never on a socket, so that a transport (a plain
/// socket today; TLS, the PROXY protocol or an in-memory test stream) can be swapped under a
/// handler without changing the handler's code.
///
/// Thread safety: one thread at a time, normally the thread that runs the handler.
class ByteStream {
 public:
  virtual ~ByteStream() = default;

  /// Reads at least one byte into `buffer`, waiting at most timeout() for it to arrive.
  /// Returns 0 at end of stream (or when `buffer` is empty). Throws std::system_error:
  /// std::errc::timed_out on a timeout, the socket's errno otherwise (e.g. a reset).
  virtual std::size_t read_some(std::span<char> buffer) = 0;

  /// Writes at least one byte of `data`, waiting at most timeout() for room. Returns the count
  /// written. Throws std::system_error as read_some() does; a closed peer is EPIPE or
  /// ECONNRESET, never SIGPIPE.
  virtual std::size_t write_some(std::span<const char> data) = 0;

  /// Ends the sending direction (TCP FIN), ignoring errors; reading still works.
  virtual void shutdown_write() noexcept = 0;

  /// Releases the transport (a SocketStream's later reads and writes fail with EBADF).
  virtual void close() noexcept = 0;

  /// The socket descriptor (Python's fileno()), or -1 when there is none.
  virtual int native_handle() const noexcept = 0;

  /// Turns TCP_NODELAY on or off; a no-op on transports without it (Unix sockets, memory).
  virtual void set_no_delay(bool /*on*/) {}

  /// The limit on each single wait for the peer; std::nullopt (the default) waits for ever.
  /// A stream that wraps another (TLS, a test decorator) overrides both to forward them.
  virtual std::optional<Seconds> timeout() const noexcept { return timeout_; }
  virtual void set_timeout(std::optional<Seconds> timeout) noexcept { timeout_ = timeout; }

  /// Python's socket.recv(n): up to `n` bytes, empty at end of stream.
  std::string recv(std::size_t n) {
    std::string data(n, '\0');
    data.resize(read_some(data));
    return data;
  }

  /// Python's socket.sendall(): writes every byte, continuing after partial writes.
  void sendall(std::string_view data) {
    while (!data.empty()) data.remove_prefix(write_some(data));
  }

 private:
  std::optional<Seconds> timeout_;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_IO_BYTE_STREAM_HPP
