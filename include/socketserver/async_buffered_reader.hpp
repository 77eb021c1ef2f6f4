#ifndef SOCKETSERVER_ASYNC_BUFFERED_READER_HPP
#define SOCKETSERVER_ASYNC_BUFFERED_READER_HPP

#include <socketserver/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <asio/awaitable.hpp>

#include <socketserver/async_buffered_writer.hpp>
#include <socketserver/detail/event_loop.hpp>
#include <socketserver/detail/spill_buffer.hpp>
#include <socketserver/error.hpp>

namespace socketserver {

/// The buffered reader behind an async handler's `rfile`: BufferedReader for coroutines.
///
/// ```
/// while (auto line = co_await rfile.readline()) co_await wfile.write(*line);
/// ```
/// Results are views into the reader's buffer, valid until the next call on the reader: copy
/// what must live longer. (BufferedReader returns strings; views let a handler answer
/// without allocating.) Before it suspends to wait for input it flushes the writer it was given,
/// so replies to everything already read go out first.
///
/// Memory: the reader reads into a 64 KiB buffer borrowed from the event loop and keeps it only
/// while it holds unread bytes or a returned view; when it has to wait with part of a line,
/// that part moves to a buffer of its own. An idle connection holds nothing else.
///
/// Thread safety: the connection's event-loop thread only.
class AsyncBufferedReader {
 public:
  /// The default for max_line: 64 KiB, as for BufferedReader.
  static constexpr std::size_t default_max_line = std::size_t{64} * 1024;

  AsyncBufferedReader() = default;
  AsyncBufferedReader(const AsyncBufferedReader&) = delete;
  AsyncBufferedReader& operator=(const AsyncBufferedReader&) = delete;
  ~AsyncBufferedReader() { give_back(); }

  /// Reads from `connection` from now on, dropping anything buffered; max_line is kept.
  void attach(detail::Connection& connection, AsyncBufferedWriter* flush_before_wait = nullptr) noexcept {
    give_back();
    own_.clear();
    begin_ = end_ = nullptr;
    in_own_ = false;
    eof_ = false;
    connection_ = &connection;
    flush_before_wait_ = flush_before_wait;
  }

  /// The longest line readline() accepts, newline included. A longer line throws
  /// std::system_error(errc::line_too_long) instead of buffering without bound.
  std::size_t max_line = default_max_line;

  /// The next line, with its "\n". At end of stream, the unterminated rest if there is one,
  /// then std::nullopt. Throws std::system_error(errc::line_too_long) past max_line.
  asio::awaitable<std::optional<std::string_view>> readline() {
    // Look one byte past the cap: a line that ends (or whose stream ends) within max_line fits.
    const bool capped = max_line != static_cast<std::size_t>(-1);
    return next_line(capped ? max_line + 1 : max_line, capped);
  }

  /// Python's readline(size): the next line, or its first `limit` bytes when it is longer.
  /// At end of stream, std::nullopt.
  asio::awaitable<std::optional<std::string_view>> readline(std::size_t limit) { return next_line(limit, false); }

  /// Up to `n` bytes: exactly `n` unless the stream ends first (then fewer, maybe none).
  asio::awaitable<std::string_view> read(std::size_t n) {
    while (!fill_to(n)) co_await wait_for_input();
    co_return take(std::min(n, buffered()));
  }

  /// Bytes read from the socket and not yet handed out.
  std::size_t buffered() const noexcept { return static_cast<std::size_t>(end_ - begin_); }

 private:
  // The coroutines keep little across a wait (an idle connection waits in one of them): the
  // plain functions below do the work, and the waits sit in the coroutine's own frame rather
  // than in a nested one.
  asio::awaitable<std::optional<std::string_view>> next_line(std::size_t limit, bool too_long_is_error) {
    std::size_t scanned = 0;
    for (;;) {
      const std::size_t length = find_line(limit, too_long_is_error, scanned);
      if (length == end_of_stream) co_return std::nullopt;
      if (length != need_input) co_return take(length);
      co_await wait_for_input();
    }
  }

  static constexpr std::size_t need_input = 0;
  static constexpr std::size_t end_of_stream = static_cast<std::size_t>(-1);

  // Reads until a line is complete and returns its length; need_input when the socket has no
  // more for now, end_of_stream when nothing is left. `scanned` bytes are known to hold no
  // newline, so each byte is scanned once.
  std::size_t find_line(std::size_t limit, bool too_long_is_error, std::size_t& scanned) {
    for (;;) {
      const std::size_t available = buffered();
      const std::size_t window = std::min(available, limit);
      const void* newline = window > scanned ? std::memchr(begin_ + scanned, '\n', window - scanned) : nullptr;
      std::size_t length = 0;
      if (newline != nullptr) {
        length = static_cast<std::size_t>(static_cast<const char*>(newline) - begin_) + 1;
      } else if (available >= limit) {
        length = limit;
      } else {
        scanned = window;
        const Filled filled = try_fill();
        if (filled == Filled::nothing) return need_input;
        if (filled == Filled::more) continue;
        if (available == 0) return end_of_stream;
        length = available;
      }
      if (too_long_is_error && length > max_line) throw std::system_error(errc::line_too_long, "readline");
      return length;
    }
  }

  // Reads until n bytes are buffered or the stream has ended (true), or the socket has no
  // more for now (false).
  bool fill_to(std::size_t n) {
    while (buffered() < n) {
      const Filled filled = try_fill();
      if (filled == Filled::end) return true;
      if (filled == Filled::nothing) return false;
    }
    return true;
  }

  // co_await: before waiting for input, hold only the unfinished part of a line and send what
  // the writer holds; while the socket does not take all of that, wait for it to, not for input.
  // One plain function, not a coroutine: no frame of its own while a connection is idle.
  detail::Wait wait_for_input() {
    park();
    if (flush_before_wait_ != nullptr && !flush_before_wait_->try_flush()) return connection().wait_writable();
    return connection().wait_readable();
  }

  enum class Filled { more, end, nothing };

  // One read after end_, if the socket may have data.
  Filled try_fill() {
    if (eof_) return Filled::end;
    if (!connection().readable()) return Filled::nothing;
    const auto [room, size] = prepare();
    const ssize_t n = connection().read_some(room, size);
    if (n > 0) {
      end_ += n;
      return Filled::more;
    }
    if (n == 0) {
      eof_ = true;
      return Filled::end;
    }
    return Filled::nothing;
  }

  struct Room {
    char* data;
    std::size_t size;
  };

  // Space to read into after the unread bytes, which move to the front first.
  Room prepare() {
    const std::size_t available = buffered();
    if (in_own_ && available < detail::EventLoop::buffer_size / 2) {
      // Back into a loop buffer, so the next line needs no copy; own_ keeps only a small block.
      char* buffer = loop().acquire_buffer();
      if (available > 0) std::memcpy(buffer, begin_, available);
      own_.clear();
      in_own_ = false;
      buffer_ = buffer;
      begin_ = buffer_;
      end_ = buffer_ + available;
    }
    if (!in_own_) {
      if (buffer_ == nullptr) {
        buffer_ = loop().acquire_buffer();
        begin_ = end_ = buffer_;
      } else if (begin_ != buffer_) {
        if (available > 0) std::memmove(buffer_, begin_, available);
        begin_ = buffer_;
        end_ = buffer_ + available;
      }
      const std::size_t room = detail::EventLoop::buffer_size - available;
      if (room > 0) return {buffer_ + available, room};
      move_to_own();  // a line longer than the loop's buffer
    }
    const std::size_t offset = static_cast<std::size_t>(begin_ - own_.data());
    if (offset > 0) own_.erase_front(offset);
    own_.resize(available + detail::EventLoop::buffer_size);
    begin_ = own_.data();
    end_ = begin_ + available;
    return {own_.data() + available, detail::EventLoop::buffer_size};
  }

  // Before waiting: hold no loop buffer, only the unfinished part of a line.
  void park() {
    if (in_own_ || buffer_ == nullptr) return;
    if (buffered() == 0) {
      give_back();
      begin_ = end_ = nullptr;
      return;
    }
    move_to_own();
  }

  void move_to_own() {
    const std::size_t available = buffered();
    own_.assign(begin_, available);
    give_back();
    in_own_ = true;
    begin_ = own_.data();
    end_ = begin_ + available;
  }

  std::string_view take(std::size_t n) noexcept {
    const std::string_view result(begin_, n);
    begin_ += n;
    return result;
  }

  detail::Connection& connection() const {
    if (connection_ == nullptr) throw std::logic_error("AsyncBufferedReader is not attached to a connection");
    return *connection_;
  }
  detail::EventLoop& loop() const { return connection().loop(); }

  void give_back() noexcept {
    if (buffer_ != nullptr) connection_->loop().release_buffer(buffer_);
    buffer_ = nullptr;
  }

  detail::Connection* connection_ = nullptr;
  AsyncBufferedWriter* flush_before_wait_ = nullptr;
  char* buffer_ = nullptr;   // borrowed from the loop
  detail::SpillBuffer own_;  // an unfinished line kept across a wait, or one longer than 64 KiB
  const char* begin_ = nullptr;
  const char* end_ = nullptr;
  bool in_own_ = false;  // [begin_, end_) lies in own_, not in buffer_
  bool eof_ = false;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_ASYNC_BUFFERED_READER_HPP
