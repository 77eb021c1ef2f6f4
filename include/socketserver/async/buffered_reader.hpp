#ifndef SOCKETSERVER_ASYNC_BUFFERED_READER_HPP
#define SOCKETSERVER_ASYNC_BUFFERED_READER_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <asio/awaitable.hpp>

#include <socketserver/async/buffered_writer.hpp>
#include <socketserver/async/detail/event_loop.hpp>
#include <socketserver/async/detail/spill_buffer.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/detail/io_access.hpp>

namespace socketserver {

/// The buffered reader behind an async handler's `rfile`: BufferedReader for coroutines.
///
/// ```
/// while (auto line = co_await rfile.readline()) co_await wfile.write(*line);
/// ```
/// Results are views into the reader's buffer, valid until the next call on the reader: copy
/// what must live longer. (BufferedReader returns strings; views let a handler answer
/// without allocating.) Before it suspends to wait for input it flushes the writer it was given,
/// so replies to everything already read go out first, unless another coroutine is suspended
/// writing to it (full duplex: that one sends its own bytes, and the reader waits for input).
///
/// Memory: the reader reads into a 64 KiB buffer borrowed from the event loop and keeps it only
/// while it holds unread bytes or a returned view; when it has to wait with part of a line,
/// that part moves to a buffer of its own. An idle connection holds nothing else.
///
/// Thread safety: the connection's event-loop thread only.
class AsyncBufferedReader {
 public:
  /// The default for max_line without a server: 64 KiB, as for BufferedReader.
  static constexpr std::size_t default_max_line = std::size_t{64} * 1024;

  AsyncBufferedReader() = default;
  AsyncBufferedReader(const AsyncBufferedReader&) = delete;
  AsyncBufferedReader& operator=(const AsyncBufferedReader&) = delete;
  ~AsyncBufferedReader() { give_back(); }

  /// The longest line readline() accepts, newline included. A longer line throws
  /// std::system_error(errc::line_too_long) instead of buffering without bound. 0, the
  /// default, means the server's limits.max_line, or default_max_line without a server.
  std::size_t max_line = 0;

  /// The next line, with its "\n". At end of stream, the unterminated rest if there is one,
  /// then std::nullopt. Throws std::system_error(errc::line_too_long) past max_line.
  asio::awaitable<std::optional<std::string_view>> readline() {
    // Look one byte past the cap: a line that ends (or whose stream ends) within it fits.
    const std::size_t cap = line_cap();
    const bool capped = cap != static_cast<std::size_t>(-1);
    return next_line(capped ? cap + 1 : cap, capped);
  }

  /// Python's readline(size): the next line, or its first `limit` bytes when it is longer.
  /// At end of stream, std::nullopt.
  asio::awaitable<std::optional<std::string_view>> readline(std::size_t limit) { return next_line(limit, false); }

  /// The next record: the bytes up to and including `delimiter`, at most `max_size` of them
  /// (delimiter included). At a clean end of stream, std::nullopt. Throws std::system_error:
  /// errc::frame_too_large when no delimiter ends a record within max_size bytes (the reader
  /// then holds at most max_size bytes and one read more), errc::truncated_frame when the
  /// stream ends inside a record; std::invalid_argument for an empty delimiter.
  asio::awaitable<std::optional<std::string_view>> read_until(std::string_view delimiter, std::size_t max_size) {
    if (delimiter.empty()) throw std::invalid_argument("read_until: empty delimiter");
    std::size_t scanned = 0;
    for (;;) {
      const std::size_t length = find_delimited(delimiter, max_size, scanned);
      if (length == end_of_stream) co_return std::nullopt;
      if (length != need_input) co_return take(length);
      co_await wait_for_input();
    }
  }

  /// Up to `n` bytes: exactly `n` unless the stream ends first (then fewer, maybe none).
  asio::awaitable<std::string_view> read(std::size_t n) {
    while (!fill_to(n)) co_await wait_for_input();
    co_return take(std::min(n, buffered()));
  }

  /// Marks where a request of several lines or parts starts and ends: BufferedReader's
  /// begin_request() and end_request(), for coroutines.
  void begin_request() noexcept {
    if (detail::ConnectionRecord* record = record_or_null()) record->begin_request();
  }
  void end_request() noexcept {
    if (detail::ConnectionRecord* record = record_or_null()) record->end_request();
  }

  /// Bytes read from the socket and not yet handed out.
  std::size_t buffered() const noexcept { return static_cast<std::size_t>(end_ - begin_); }

 private:
  friend struct detail::IoAccess;

  // Reads from `connection`'s stream from now on, dropping anything buffered; max_line is kept.
  void attach(detail::Connection& connection, AsyncBufferedWriter* flush_before_wait = nullptr) noexcept;

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
  std::size_t find_line(std::size_t limit, bool too_long_is_error, std::size_t& scanned);

  // read_until's find_line: the length of the record at the front, delimiter included;
  // need_input or end_of_stream as there. No delimiter starts before `scanned`.
  std::size_t find_delimited(std::string_view delimiter, std::size_t max_size, std::size_t& scanned);

  // Reads until n bytes are buffered or the stream has ended (true), or the socket has no
  // more for now (false).
  bool fill_to(std::size_t n);

  // co_await: before waiting for input, hold only the unfinished part of a line and send what
  // the writer holds; while the socket does not take all of that, wait for it to, not for input.
  // A writer coroutine suspended in wfile sends its own bytes: the reader then waits for input
  // alone, so the two can be blocked at once (full duplex). One plain function, not a
  // coroutine: no frame of its own while a connection is idle.
  //
  // Over a server's connection the wait carries the deadline of the limits that apply (first
  // byte, idle, read, connection age), and a wait for a new request while the server drains is
  // the end of the stream, once what has arrived is read.
  detail::Wait wait_for_input() {
    using Side = detail::Connection::Side;
    park();
    detail::Connection& c = connection();
    detail::ConnectionRecord* record = c.record();
    if (flush_before_wait_ != nullptr && !c.waiting(Side::writer) && !flush_before_wait_->try_flush()) {
      return c.wait(Side::reader, c.stream().blocked_on(),
                    record != nullptr ? record->write_deadline(detail::Clock::now()) : detail::Deadline{});
    }
    if (record == nullptr) return c.wait(Side::reader, blocked_on_);
    const auto now = detail::Clock::now();
    const bool partial = buffered() != 0 || record->in_request();
    const detail::Deadline deadline = record->read_deadline(now, partial);
    if (now >= deadline.at) throw std::system_error(deadline.why, "read");
    if (!partial) {
      if (!record->enter_idle()) {
        draining_ = true;
        return c.proceed();
      }
      idle_ = true;
    }
    return c.wait(Side::reader, blocked_on_, deadline);
  }

  std::size_t line_cap() const noexcept;

  enum class Filled { more, end, nothing };

  // One read of the stream after end_. The stream is asked even when the socket has reported
  // nothing new: a layer may hold bytes of its own, and the socket answers would_block without a
  // system call while it is known to be drained.
  Filled try_fill();

  struct Room {
    char* data;
    std::size_t size;
  };

  // Space to read into after the unread bytes, which move to the front first.
  Room prepare();

  // Resizes own_, growing its capacity at least twofold: a line or frame that arrives in many
  // small reads is then copied a bounded number of times per byte, not once per read.
  void resize_own(std::size_t size);

  // Before waiting: hold no loop buffer, only the unfinished part of a line.
  void park();

  void move_to_own();

  std::string_view take(std::size_t n) noexcept;

  detail::Connection& connection() const;
  detail::EventLoop& loop() const { return connection().loop(); }

  void give_back() noexcept;

  detail::Connection* connection_ = nullptr;

  detail::ConnectionRecord* record_or_null() const noexcept {
    return connection_ != nullptr ? connection_->record() : nullptr;
  }
  AsyncBufferedWriter* flush_before_wait_ = nullptr;
  char* buffer_ = nullptr;   // borrowed from the loop
  detail::SpillBuffer own_;  // an unfinished line kept across a wait, or one longer than 64 KiB
  const char* begin_ = nullptr;
  const char* end_ = nullptr;
  bool in_own_ = false;  // [begin_, end_) lies in own_, not in buffer_
  bool eof_ = false;
  bool idle_ = false;                       // waiting for a new request: a draining server may end the stream
  bool draining_ = false;                   // the server drains: the next read is the last unless it finds data
  Direction blocked_on_ = Direction::read;  // what the stream waits for after its last would_block
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
namespace socketserver {

SOCKETSERVER_DECL void AsyncBufferedReader::attach(detail::Connection& connection,
                                                   AsyncBufferedWriter* flush_before_wait) noexcept {
  give_back();
  own_.clear();
  begin_ = end_ = nullptr;
  in_own_ = false;
  eof_ = false;
  idle_ = false;
  draining_ = false;
  connection_ = &connection;
  flush_before_wait_ = flush_before_wait;
}

SOCKETSERVER_DECL std::size_t AsyncBufferedReader::find_line(std::size_t limit, bool too_long_is_error,
                                                             std::size_t& scanned) {
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
    if (too_long_is_error && length > line_cap()) throw std::system_error(errc::line_too_long, "readline");
    return length;
  }
}

SOCKETSERVER_DECL std::size_t AsyncBufferedReader::find_delimited(std::string_view delimiter, std::size_t max_size,
                                                                  std::size_t& scanned) {
  for (;;) {
    const std::size_t available = buffered();
    const std::size_t window = std::min(available, max_size);
    if (window >= scanned + delimiter.size()) {
      const std::size_t at = std::string_view(begin_, window).find(delimiter, scanned);
      if (at != std::string_view::npos) return at + delimiter.size();
      // A delimiter may straddle this read and the next: rescan only its possible start.
      scanned = window - (delimiter.size() - 1);
    }
    if (available >= max_size) throw std::system_error(errc::frame_too_large, "read_until");
    const Filled filled = try_fill();
    if (filled == Filled::nothing) return need_input;
    if (filled == Filled::end) {
      if (available == 0) return end_of_stream;
      throw std::system_error(errc::truncated_frame, "read_until");
    }
  }
}

SOCKETSERVER_DECL bool AsyncBufferedReader::fill_to(std::size_t n) {
  while (buffered() < n) {
    const Filled filled = try_fill();
    if (filled == Filled::end) return true;
    if (filled == Filled::nothing) return false;
  }
  return true;
}

SOCKETSERVER_DECL std::size_t AsyncBufferedReader::line_cap() const noexcept {
  if (max_line != 0) return max_line;
  const detail::ConnectionRecord* record = connection_ != nullptr ? connection_->record() : nullptr;
  if (record == nullptr) return default_max_line;
  return record->limits().max_line != 0 ? record->limits().max_line : static_cast<std::size_t>(-1);  // 0: no cap
}

SOCKETSERVER_DECL AsyncBufferedReader::Filled AsyncBufferedReader::try_fill() {
  if (eof_) return Filled::end;
  detail::Connection& c = connection();
  if (idle_) {
    idle_ = false;
    c.record()->leave_idle();
  }
  c.check(detail::Connection::Side::reader);
  const bool last = draining_;  // the server drains: one read of what may have arrived, whatever the last edge said
  if (last) {
    draining_ = false;
    c.readiness().readable = true;
  }
  const auto [room, size] = prepare();
  const std::size_t n = c.stream().read_some({room, size});
  if (n == ByteStream::would_block) {
    blocked_on_ = c.stream().blocked_on();
    if (!last) return Filled::nothing;
  } else if (n > 0) {
    end_ += n;
    if (detail::ConnectionRecord* record = c.record()) record->count_in(n);
    return Filled::more;
  } else if (buffered() != 0 && c.stream().truncated()) {
    throw std::system_error(errc::truncated_frame, "read: the peer closed inside a request, without close_notify");
  }
  eof_ = true;
  return Filled::end;
}

SOCKETSERVER_DECL AsyncBufferedReader::Room AsyncBufferedReader::prepare() {
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
  resize_own(available + detail::EventLoop::buffer_size);
  begin_ = own_.data();
  end_ = begin_ + available;
  return {own_.data() + available, detail::EventLoop::buffer_size};
}

SOCKETSERVER_DECL void AsyncBufferedReader::resize_own(std::size_t size) {
  if (size > own_.capacity()) {
    const std::size_t doubled = std::min<std::size_t>(own_.capacity() * 2, std::numeric_limits<std::uint32_t>::max());
    own_.resize(std::max(size, doubled));
  }
  own_.resize(size);
}

SOCKETSERVER_DECL void AsyncBufferedReader::park() {
  if (in_own_ || buffer_ == nullptr) return;
  if (buffered() == 0) {
    give_back();
    begin_ = end_ = nullptr;
    return;
  }
  move_to_own();
}

SOCKETSERVER_DECL void AsyncBufferedReader::move_to_own() {
  const std::size_t available = buffered();
  own_.assign(begin_, available);
  give_back();
  in_own_ = true;
  begin_ = own_.data();
  end_ = begin_ + available;
}

SOCKETSERVER_DECL std::string_view AsyncBufferedReader::take(std::size_t n) noexcept {
  if (detail::ConnectionRecord* record = connection_->record()) record->read_done();
  const std::string_view result(begin_, n);
  begin_ += n;
  return result;
}

SOCKETSERVER_DECL detail::Connection& AsyncBufferedReader::connection() const {
  if (connection_ == nullptr) throw std::logic_error("AsyncBufferedReader is not attached to a connection");
  return *connection_;
}

SOCKETSERVER_DECL void AsyncBufferedReader::give_back() noexcept {
  if (buffer_ != nullptr) connection_->loop().release_buffer(buffer_);
  buffer_ = nullptr;
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_ASYNC_BUFFERED_READER_HPP
