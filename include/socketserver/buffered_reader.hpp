#ifndef SOCKETSERVER_BUFFERED_READER_HPP
#define SOCKETSERVER_BUFFERED_READER_HPP

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include <socketserver/buffered_writer.hpp>
#include <socketserver/byte_stream.hpp>
#include <socketserver/error.hpp>

namespace socketserver {

/// The buffered reader behind a handler's `rfile`.
///
/// Reads from its ByteStream in chunks and hands out lines or byte counts, like Python's
/// io.BufferedReader. When it has to wait for more input, it first flushes the writer it was
/// given (the handler's wfile), so replies to everything already read go out before the
/// handler blocks.
///
/// Thread safety: one thread at a time.
class BufferedReader {
 public:
  /// The default for max_line: 64 KiB, the limit Python's http.server puts on a header line.
  static constexpr std::size_t default_max_line = std::size_t{64} * 1024;

  /// An unattached reader; reads throw std::logic_error until one is assigned.
  BufferedReader() = default;
  explicit BufferedReader(ByteStream& stream, BufferedWriter* flush_before_wait = nullptr)
      : stream_(&stream), writer_(flush_before_wait) {}

  /// Reads from `stream` from now on, dropping anything buffered; max_line is kept.
  void attach(ByteStream& stream, BufferedWriter* flush_before_wait = nullptr) noexcept {
    stream_ = &stream;
    writer_ = flush_before_wait;
    begin_ = end_ = 0;
  }

  /// The longest line readline() accepts, newline included. A longer line throws
  /// std::system_error(errc::line_too_long) instead of buffering without bound. (Python's
  /// readline() has no such cap.)
  std::size_t max_line = default_max_line;

  /// The next line, with its "\n". At end of stream, the unterminated rest if there is one,
  /// then std::nullopt, so `while (auto line = rfile.readline())` reads every line.
  /// Throws std::system_error(errc::line_too_long) past max_line.
  std::optional<std::string> readline() {
    // Look one byte past the cap: a line that ends (or whose stream ends) within max_line fits.
    const std::size_t n = find_line(max_line == static_cast<std::size_t>(-1) ? max_line : max_line + 1);
    if (n > max_line) throw std::system_error(errc::line_too_long, "readline");
    return take_line(n);
  }

  /// Python's readline(size): the next line, or its first `limit` bytes when it is longer.
  /// At end of stream, std::nullopt.
  std::optional<std::string> readline(std::size_t limit) {
    if (limit == 0) return std::string();
    return take_line(find_line(limit));
  }

  /// Up to `n` bytes: exactly `n` unless the stream ends first (then fewer, maybe none).
  std::string read(std::size_t n) {
    std::string out;
    out.reserve(std::min(n, buffered() + std::size_t{64} * 1024));
    take_into(out, n);
    while (out.size() < n) {
      if (writer_) writer_->flush();
      const std::size_t old = out.size();
      // Large reads go straight into the result, without passing through the buffer.
      out.resize(std::min(n, std::max(old * 2, old + std::size_t{16} * 1024)));
      const std::size_t got = stream().read_some({out.data() + old, out.size() - old});
      out.resize(old + got);
      if (got == 0) break;
    }
    return out;
  }

  /// Everything up to the end of the stream. Unbounded: the peer decides how much; prefer
  /// read(n) or readline() on connections from untrusted peers.
  std::string read() {
    std::string out;
    take_into(out, buffered());
    char chunk[std::size_t{16} * 1024];
    for (;;) {
      if (writer_) writer_->flush();
      const std::size_t got = stream().read_some(chunk);
      if (got == 0) return out;
      out.append(chunk, got);
    }
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
  static constexpr std::size_t chunk_size = std::size_t{16} * 1024;

  ByteStream& stream() {
    if (stream_ == nullptr) throw std::logic_error("rfile used before the handler's setup()");
    return *stream_;
  }

  // Length of the line at the front, "\n" included, reading more as needed. Stops at `limit`
  // bytes, or at end of stream with whatever is buffered (0 when nothing is).
  std::size_t find_line(std::size_t limit) {
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

  std::optional<std::string> take_line(std::size_t n) {
    if (n == 0) return std::nullopt;
    std::string line(data_.get() + begin_, n);
    consume(n);
    return line;
  }

  void take_into(std::string& out, std::size_t n) {
    n = std::min(n, buffered());
    if (n == 0) return;
    out.append(data_.get() + begin_, n);
    consume(n);
  }

  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  // Reads once more from the stream, after flushing the writer. False at end of stream.
  bool fill() {
    if (writer_) writer_->flush();
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
    const std::size_t got = stream().read_some({data_.get() + end_, capacity_ - end_});
    end_ += got;
    return got != 0;
  }

  ByteStream* stream_ = nullptr;
  BufferedWriter* writer_ = nullptr;
  std::unique_ptr<char[]> data_;  // allocated on the first read
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;  // unread bytes are data_[begin_, end_)
  std::size_t end_ = 0;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_BUFFERED_READER_HPP
