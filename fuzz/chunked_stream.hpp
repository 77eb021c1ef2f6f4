// What the reader harnesses share: check(), which traps where a parser's answers disagree, and
// ChunkedStream, a stream of the input's bytes handed out a few at a time.
#ifndef SOCKETSERVER_FUZZ_CHUNKED_STREAM_HPP
#define SOCKETSERVER_FUZZ_CHUNKED_STREAM_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include <socketserver/io/byte_stream.hpp>

namespace fuzz {

inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Hands out `data` a few bytes at a time, the sizes cycling through `chunks` (times `scale`;
// 0: as much as the reader asks for). The bytes of the buffer past the count are not the
// stream's: each read fills up to 16 of them with `filler`, a byte the reader would act on
// (a newline, a length field's 0xFF), so that reading them shows.
class ChunkedStream final : public socketserver::ByteStream {
 public:
  ChunkedStream(std::string_view data, std::span<const std::uint8_t> chunks, std::size_t scale, char filler)
      : data_(data), chunks_(chunks), scale_(scale), filler_(filler) {}

  std::size_t read_some(std::span<char> buffer) override {
    check(!buffer.empty());  // a stream answers an empty read with 0, which reads as the end
    const std::uint8_t chunk = chunks_[next_++ % chunks_.size()];
    std::size_t n = std::min(buffer.size(), data_.size() - fed_);
    if (chunk != 0) n = std::min(n, chunk * scale_);
    if (n != 0) std::memcpy(buffer.data(), data_.data() + fed_, n);
    std::memset(buffer.data() + n, filler_, std::min<std::size_t>(buffer.size() - n, 16));
    fed_ += n;
    return n;
  }
  std::size_t write_some(std::span<const char> data) override { return data.size(); }
  void shutdown_write() noexcept override {}
  void close() noexcept override {}
  int native_handle() const noexcept override { return -1; }

  // The bytes handed out so far.
  std::size_t fed() const noexcept { return fed_; }

 private:
  std::string_view data_;
  std::span<const std::uint8_t> chunks_;
  std::size_t scale_;
  char filler_;
  std::size_t next_ = 0;
  std::size_t fed_ = 0;
};

}  // namespace fuzz

#endif  // SOCKETSERVER_FUZZ_CHUNKED_STREAM_HPP
