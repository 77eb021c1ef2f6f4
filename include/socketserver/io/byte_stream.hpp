#ifndef SOCKETSERVER_IO_BYTE_STREAM_HPP
#define SOCKETSERVER_IO_BYTE_STREAM_HPP

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <socketserver/seconds.hpp>

namespace socketserver {

/// The two ways a stream can wait: for the peer's bytes (read) or for room to send (write).
enum class Direction : unsigned char { read, write };

/// A bidirectional byte stream, and one layer of a connection: what rfile and wfile read and
/// write through, under blocking and coroutine handlers alike.
///
/// A connection is a stack of streams: a SocketStream at the bottom, then the layers the server
/// puts on it (the PROXY protocol; a user's own through StreamLayer), each owning the one below.
/// Handlers only see the top, so a layer goes under every handler without a change to its code.
///
/// One stream, two modes. Under a blocking handler the socket at the bottom waits in the kernel:
/// read_some() and write_some() return once they have moved bytes, the stream has ended, or a
/// timeout has passed. Under a coroutine handler nothing waits: a call that cannot go on returns
/// `would_block`, blocked_on() says for what, and the handler's reader or writer suspends until
/// the socket is ready, then calls again. A layer is written once for both: it returns
/// would_block when the stream below did, and says what that one waits for. A layer that holds
/// bytes of its own (the rest of the packet that brought a PROXY header, a TLS record decrypted
/// in part) hands them out before it reads again; readers call read_some() before every wait,
/// so such bytes are never stranded behind a readiness edge that will not come.
///
/// Thread safety: one thread reads and one writes at a time; they may be two threads (a second
/// thread writing while the handler reads), as on a socket. Layers that cannot allow that say so.
class ByteStream {
 public:
  /// What a non-blocking read_some() or write_some() returns when it cannot go on yet.
  static constexpr std::size_t would_block = static_cast<std::size_t>(-1);

  using Clock = std::chrono::steady_clock;

  virtual ~ByteStream() = default;

  /// Reads at least one byte into `buffer`. Returns the count, 0 at end of stream (or for an
  /// empty `buffer`), or would_block (non-blocking streams only). A blocking stream waits at
  /// most timeout(Direction::read) for the first byte. Throws std::system_error:
  /// std::errc::timed_out on a timeout, the socket's errno otherwise (e.g. a reset).
  virtual std::size_t read_some(std::span<char> buffer) = 0;

  /// Writes at least one byte of `data` and returns the count, or would_block (non-blocking
  /// streams only). Throws std::system_error as read_some() does; a closed peer is EPIPE or
  /// ECONNRESET, never SIGPIPE.
  virtual std::size_t write_some(std::span<const char> data) = 0;

  /// After read_some() or write_some() returned would_block: whether the stream waits for the
  /// socket to become readable or writable (a TLS read may wait to write, and the reverse).
  virtual Direction blocked_on() const noexcept { return Direction::read; }

  /// Runs what the layers exchange before the handler's first byte (a PROXY header, a TLS
  /// handshake), on the connection's own thread. True once it is done; a non-blocking stream
  /// returns false when it must wait for blocked_on() first, and is called again after. A
  /// blocking stream's reads here end by `deadline` (std::errc::timed_out after it). A layer
  /// calls the handshake of the stream below it before its own. Does nothing by default.
  virtual bool handshake(Clock::time_point deadline) {
    (void)deadline;
    return true;
  }

  /// Runs what the layers exchange to end the connection in order (TLS's close_notify), before
  /// the server's shutdown_write(); the server calls it when a handler returns, with `deadline`
  /// its limit (TlsSettings::close_notify_timeout). True once done; a non-blocking stream
  /// returns false when it must wait for blocked_on() first. A layer ends its own exchange, then
  /// calls the close_handshake() of the stream below it. Does nothing by default.
  virtual bool close_handshake(Clock::time_point deadline) {
    (void)deadline;
    return true;
  }

  /// After read_some() returned 0: whether the stream ended without its orderly close (a TLS
  /// peer that sent no close_notify). The readers then treat an end inside a line or frame as
  /// errc::truncated_frame. False by default.
  virtual bool truncated() const noexcept { return false; }

  /// Ends the sending direction (TCP FIN), ignoring errors; reading still works.
  virtual void shutdown_write() noexcept = 0;

  /// Releases the transport (a SocketStream's later reads and writes fail with EBADF).
  virtual void close() noexcept = 0;

  /// The socket descriptor (Python's fileno()), or -1 when there is none.
  virtual int native_handle() const noexcept = 0;

  /// Turns TCP_NODELAY on or off; a no-op on transports without it (Unix sockets, memory).
  virtual void set_no_delay(bool /*on*/) {}

  /// The limit on each single wait of a blocking stream in `direction`; std::nullopt waits for
  /// ever. Streams that never wait (in memory, non-blocking) keep none.
  virtual std::optional<Seconds> timeout(Direction /*direction*/) const noexcept { return std::nullopt; }
  virtual void set_timeout(Direction /*direction*/, std::optional<Seconds> /*timeout*/) noexcept {}

  /// Sets the limit of both directions (Python's settimeout()).
  void set_timeout(std::optional<Seconds> limit) noexcept {
    set_timeout(Direction::read, limit);
    set_timeout(Direction::write, limit);
  }

  /// Python's socket.recv(n): up to `n` bytes, empty at end of stream. Blocking streams only.
  std::string recv(std::size_t n) {
    std::string data(n, '\0');
    const std::size_t got = read_some(data);
    if (got == would_block) throw std::logic_error("recv() on a non-blocking stream");
    data.resize(got);
    return data;
  }

  /// Python's socket.sendall(): writes every byte, continuing after partial writes. Blocking
  /// streams only.
  void sendall(std::string_view data) {
    while (!data.empty()) {
      const std::size_t sent = write_some(data);
      if (sent == would_block) throw std::logic_error("sendall() on a non-blocking stream");
      data.remove_prefix(sent);
    }
  }
};

}  // namespace socketserver

#endif  // SOCKETSERVER_IO_BYTE_STREAM_HPP
