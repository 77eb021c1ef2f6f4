#ifndef SOCKETSERVER_IO_BUFFERED_READER_HPP
#define SOCKETSERVER_IO_BUFFERED_READER_HPP

#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <socketserver/detail/config.hpp>
#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/io/buffered_writer.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/detail/io_access.hpp>

namespace socketserver {

/// The buffered reader behind a handler's `rfile`.
///
/// Reads from its ByteStream in chunks and hands out lines or byte counts, like Python's
/// io.BufferedReader. When it has to wait for more input, it first flushes the writer it was
/// given (the handler's wfile), so replies to everything already read go out before the
/// handler blocks; once another thread has written to that writer, it leaves the flushing to
/// the writers (full duplex: BufferedWriter).
///
/// Limits: over a server's connection (attached by StreamRequestHandler::setup()), every wait
/// for input is held to the server's Limits: first byte, idle, read (a line or frame must
/// arrive within read_timeout of its first byte) and connection age, each throwing
/// std::system_error with its socketserver::errc. While the server drains, a wait for a new
/// request (nothing buffered, nothing waiting on the socket) is the end of the stream.
///
/// Thread safety: one thread at a time.
class BufferedReader {
 public:
  /// The default for max_line without a server: 64 KiB, the limit Python's http.server puts
  /// on a header line.
  static constexpr std::size_t default_max_line = std::size_t{64} * 1024;

  /// An unattached reader; reads throw std::logic_error until one is assigned.
  BufferedReader() = default;
  explicit BufferedReader(ByteStream& stream, BufferedWriter* flush_before_wait = nullptr)
      : stream_(&stream), writer_(flush_before_wait) {}

  /// The longest line readline() accepts, newline included. A longer line throws
  /// std::system_error(errc::line_too_long) instead of buffering without bound. (Python's
  /// readline() has no such cap.) 0, the default, means the server's limits.max_line, or
  /// default_max_line without a server.
  std::size_t max_line = 0;

  /// The next line, with its "\n". At end of stream, the unterminated rest if there is one,
  /// then std::nullopt, so `while (auto line = rfile.readline())` reads every line.
  /// Throws std::system_error(errc::line_too_long) past max_line.
  std::optional<std::string> readline();

  /// Python's readline(size): the next line, or its first `limit` bytes when it is longer.
  /// At end of stream, std::nullopt.
  std::optional<std::string> readline(std::size_t limit);

  /// The next record: the bytes up to and including `delimiter`, at most `max_size` of them
  /// (delimiter included). At a clean end of stream, std::nullopt. Throws std::system_error:
  /// errc::frame_too_large when no delimiter ends a record within max_size bytes (instead of
  /// buffering without bound), errc::truncated_frame when the stream ends inside a record;
  /// std::invalid_argument for an empty delimiter.
  std::optional<std::string> read_until(std::string_view delimiter, std::size_t max_size);

  /// Up to `n` bytes: exactly `n` unless the stream ends first (then fewer, maybe none).
  std::string read(std::size_t n);

  /// Everything up to the end of the stream. Unbounded: the peer decides how much; prefer
  /// read(n) or readline() on connections from untrusted peers.
  std::string read();

  /// Marks where a request of several lines or parts starts (after its first line, say an HTTP
  /// request line) and ends (after its last). Inside it every wait for input is part of the
  /// request: it is held to limits.read_timeout from the request's first byte, not to
  /// idle_timeout, and a draining server lets it finish. end_request() counts it in the access
  /// line and stats().requests. Without them a wait that starts with nothing buffered is a
  /// wait for a new request (docs/limits.md). No-ops without a server.
  void begin_request() noexcept {
    if (record_ != nullptr) record_->begin_request();
  }
  void end_request() noexcept {
    if (record_ != nullptr) record_->end_request();
  }

  /// Bytes read from the stream and not yet handed out.
  std::size_t buffered() const noexcept { return end_ - begin_; }

  /// Iterates over lines until end of stream: `for (const auto& line : rfile)`.
  class iterator {
   public:
    using value_type = std::string;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(BufferedReader& reader) : reader_(&reader), line_(reader.readline()) {}
    const std::string& operator*() const { return *line_; }
    const std::string* operator->() const { return &*line_; }
    iterator& operator++() {
      line_ = reader_->readline();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.line_; }

   private:
    BufferedReader* reader_ = nullptr;
    std::optional<std::string> line_;
  };
  iterator begin() { return iterator(*this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend struct detail::IoAccess;
  static constexpr std::size_t chunk_size = std::size_t{16} * 1024;

  // Reads from `stream` from now on, dropping anything buffered; max_line is kept. `record` is
  // the server's record of the connection, whose limits the reads are held to.
  void attach(ByteStream& stream, BufferedWriter* flush_before_wait = nullptr,
              detail::ConnectionRecord* record = nullptr) noexcept;

  ByteStream& stream();

  // Length of the line at the front, "\n" included, reading more as needed. Stops at `limit`
  // bytes, or at end of stream with whatever is buffered (0 when nothing is).
  std::size_t find_line(std::size_t limit);

  std::size_t line_cap() const noexcept;

  // One read from the stream; over a server's connection, held to its limits. `partial`: part
  // of what the caller wants has arrived already.
  // At an end that is truncated() (TLS without close_notify) with part of that read already
  // there, throws errc::truncated_frame.
  std::size_t read_stream(std::span<char> into, bool partial);
  std::size_t read_stream_once(std::span<char> into, bool partial);

  // The server is draining and nothing of a new request is buffered: what has arrived already
  // is still read, but the reader does not wait for more.
  std::size_t read_while_draining(std::span<char> into);

  static std::size_t checked(std::size_t n);

  std::optional<std::string> take_line(std::size_t n);

  void take_into(std::string& out, std::size_t n);

  void consume(std::size_t n) noexcept;

  // Reads once more from the stream, after flushing the writer. False at end of stream.
  bool fill();

  ByteStream* stream_ = nullptr;
  BufferedWriter* writer_ = nullptr;
  detail::ConnectionRecord* record_ = nullptr;
  std::unique_ptr<char[]> data_;  // allocated on the first read
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;  // unread bytes are data_[begin_, end_)
  std::size_t end_ = 0;
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <socketserver/detail/deadline.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/detail/limited_io.hpp>

namespace socketserver {

SOCKETSERVER_DECL std::optional<std::string> BufferedReader::readline() {
  const std::size_t cap = line_cap();
  // Look one byte past the cap: a line that ends (or whose stream ends) within it fits.
  const std::size_t n = find_line(cap == static_cast<std::size_t>(-1) ? cap : cap + 1);
  if (n > cap) throw std::system_error(errc::line_too_long, "readline");
  return take_line(n);
}

SOCKETSERVER_DECL std::optional<std::string> BufferedReader::readline(std::size_t limit) {
  if (limit == 0) return std::string();
  return take_line(find_line(limit));
}

SOCKETSERVER_DECL std::optional<std::string> BufferedReader::read_until(std::string_view delimiter,
                                                                        std::size_t max_size) {
  if (delimiter.empty()) throw std::invalid_argument("read_until: empty delimiter");
  std::size_t scanned = 0;  // no delimiter starts before this offset
  for (;;) {
    const std::size_t look = std::min(buffered(), max_size);
    if (look >= scanned + delimiter.size()) {
      const std::size_t at = std::string_view(data_.get() + begin_, look).find(delimiter, scanned);
      if (at != std::string_view::npos) return take_line(at + delimiter.size());
      // A delimiter may straddle this read and the next: rescan only its possible start.
      scanned = look - (delimiter.size() - 1);
    }
    if (buffered() >= max_size) throw std::system_error(errc::frame_too_large, "read_until");
    if (!fill()) {
      if (buffered() == 0) return std::nullopt;
      throw std::system_error(errc::truncated_frame, "read_until");
    }
  }
}

SOCKETSERVER_DECL std::string BufferedReader::read(std::size_t n) {
  std::string out;
  out.reserve(std::min(n, buffered() + std::size_t{64} * 1024));
  take_into(out, n);
  while (out.size() < n) {
    if (writer_) writer_->flush_before_wait();
    const std::size_t old = out.size();
    // Large reads go straight into the result, without passing through the buffer.
    out.resize(std::min(n, std::max(old * 2, old + std::size_t{16} * 1024)));
    const std::size_t got = read_stream({out.data() + old, out.size() - old}, old != 0);
    out.resize(old + got);
    if (got == 0) break;
  }
  if (record_ != nullptr) record_->read_done();
  return out;
}

SOCKETSERVER_DECL std::string BufferedReader::read() {
  std::string out;
  take_into(out, buffered());
  char chunk[std::size_t{16} * 1024];
  for (;;) {
    if (writer_) writer_->flush_before_wait();
    const std::size_t got = read_stream(chunk, !out.empty());
    if (got == 0) return out;
    out.append(chunk, got);
  }
}

SOCKETSERVER_DECL void BufferedReader::attach(ByteStream& stream, BufferedWriter* flush_before_wait,
                                              detail::ConnectionRecord* record) noexcept {
  stream_ = &stream;
  writer_ = flush_before_wait;
  record_ = record;
  begin_ = end_ = 0;
}

SOCKETSERVER_DECL ByteStream& BufferedReader::stream() {
  if (stream_ == nullptr) throw std::logic_error("rfile used before the handler's setup()");
  return *stream_;
}

SOCKETSERVER_DECL std::size_t BufferedReader::find_line(std::size_t limit) {
  std::size_t scanned = 0;
  for (;;) {
    const std::size_t look = std::min(buffered(), limit);
    if (look > scanned) {
      const char* start = data_.get() + begin_;
      if (const void* nl = std::memchr(start + scanned, '\n', look - scanned))
        return static_cast<std::size_t>(static_cast<const char*>(nl) - start) + 1;
      scanned = look;
    }
    if (buffered() >= limit) return limit;
    if (!fill()) return buffered();
  }
}

SOCKETSERVER_DECL std::size_t BufferedReader::line_cap() const noexcept {
  if (max_line != 0) return max_line;
  if (record_ == nullptr) return default_max_line;
  const std::size_t cap = record_->limits().max_line;
  return cap != 0 ? cap : static_cast<std::size_t>(-1);  // 0: no cap
}

SOCKETSERVER_DECL std::size_t BufferedReader::read_stream(std::span<char> into, bool partial) {
  const std::size_t got = read_stream_once(into, partial);
  if (got == 0 && (partial || (record_ != nullptr && record_->in_request())) && stream().truncated())
    throw std::system_error(errc::truncated_frame, "read: the peer closed inside a request, without close_notify");
  return got;
}

SOCKETSERVER_DECL std::size_t BufferedReader::read_stream_once(std::span<char> into, bool partial) {
  if (record_ == nullptr) return checked(stream().read_some(into));
  partial = partial || record_->in_request();
  const auto start = detail::Clock::now();
  const detail::Deadline deadline = record_->read_deadline(start, partial);
  if (!partial && !record_->enter_idle()) return read_while_draining(into);
  struct LeaveIdle {
    detail::ConnectionRecord* record;
    ~LeaveIdle() {
      if (record != nullptr) record->leave_idle();
    }
  } leave{partial ? nullptr : record_};
  const std::size_t got = checked(detail::limited_call(stream(), Direction::read, *record_, deadline, start, "read",
                                                       [&] { return stream().read_some(into); }));
  record_->count_in(got);
  return got;
}

SOCKETSERVER_DECL std::size_t BufferedReader::read_while_draining(std::span<char> into) {
  ByteStream& s = stream();
  const std::optional<Seconds> timeout = s.timeout(Direction::read);
  s.set_timeout(Direction::read, Seconds(0));
  std::size_t got = 0;
  try {
    got = checked(s.read_some(into));
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::timed_out) {
      s.set_timeout(Direction::read, timeout);
      throw;
    }
  }
  s.set_timeout(Direction::read, timeout);
  record_->count_in(got);
  return got;
}

SOCKETSERVER_DECL std::size_t BufferedReader::checked(std::size_t n) {
  if (n == ByteStream::would_block) throw std::logic_error("rfile over a non-blocking stream");
  return n;
}

SOCKETSERVER_DECL std::optional<std::string> BufferedReader::take_line(std::size_t n) {
  if (record_ != nullptr) record_->read_done();
  if (n == 0) return std::nullopt;
  std::string line(data_.get() + begin_, n);
  consume(n);
  return line;
}

SOCKETSERVER_DECL void BufferedReader::take_into(std::string& out, std::size_t n) {
  n = std::min(n, buffered());
  if (n == 0) return;
  out.append(data_.get() + begin_, n);
  consume(n);
}

SOCKETSERVER_DECL void BufferedReader::consume(std::size_t n) noexcept {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

SOCKETSERVER_DECL bool BufferedReader::fill() {
  if (writer_) writer_->flush_before_wait();
  if (capacity_ - end_ < chunk_size / 4) {
    if (begin_ > 0) {  // slide the unread part to the front before growing
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (capacity_ - end_ < chunk_size / 4) {
      const std::size_t capacity = std::max(chunk_size, capacity_ * 2);
      auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
      if (end_ != 0) std::memcpy(bigger.get(), data_.get(), end_);
      data_ = std::move(bigger);
      capacity_ = capacity;
    }
  }
  const std::size_t got = read_stream({data_.get() + end_, capacity_ - end_}, buffered() != 0);
  end_ += got;
  return got != 0;
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_IO_BUFFERED_READER_HPP
