// libFuzzer harness for BufferedReader: readline(), readline(limit), read_until(), read(n),
// read() and max_line in an order the input picks, over a stream that hands its bytes out in
// chunks the input sizes too, so lines and delimiters straddle reads. Each answer is compared
// with the same operation done on the whole rest of the stream at once; the checks trap when:
//   - a line from readline() lacks its '\n' before the end of the stream, or is longer than
//     max_line instead of throwing errc::line_too_long;
//   - a record from read_until() does not end with the delimiter or is longer than max_size;
//   - the bytes handed out, in order, are not exactly a prefix of the stream's bytes;
//   - an operation throws when it should not, or not the documented error when it should;
//   - bytes read from the stream and not handed out are not buffered().
//
// Input: 19 bytes of settings, then the stream's bytes.
//   [0]      max_line (0: the default)
//   [1]      the delimiter's length, 1 + the low 2 bits; [2..5] its bytes
//   [6]      0xFF: the stream doubles its bytes, and the sizes of its reads, until it has more
//            than 20 KiB, so that a short input reaches lines and buffers larger than the
//            reader's 16 KiB chunk (only then: large inputs run slowly)
//   [7..10]  the sizes of the stream's reads, cycled (0: as much as the reader asks for)
//   [11..18] the operations, cycled until a round of them takes nothing (64 at most). The low
//            3 bits: 0 and 1 readline(), 2 readline(n), 3 and 4 read_until(delimiter, n + 1),
//            5 read(n), 6 max_line = n, 7 read(); n is the high 5 bits squared (31: 1 MiB)
//
// Build and run (corpus: fuzz/corpus/line_reader), or see fuzz/CMakeLists.txt:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_line_reader.cpp -o fuzz_lr
//   ./fuzz_lr -max_total_time=600 new_corpus/ fuzz/corpus/line_reader
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <socketserver/error.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/byte_stream.hpp>

#include "chunked_stream.hpp"

namespace {

using socketserver::BufferedReader;
using socketserver::errc;

using fuzz::check;
using fuzz::ChunkedStream;

// What an operation returns (std::nullopt: the end of the stream), or the error it throws.
struct Outcome {
  std::optional<std::string_view> bytes;
  std::optional<errc> error;
};

Outcome returns(std::string_view rest, std::size_t n) { return {rest.substr(0, n), {}}; }
Outcome returns_line(std::string_view rest, std::size_t n) {
  return n == 0 ? Outcome{} : returns(rest, n);  // an empty line is the end of the stream
}
Outcome throws(errc error) { return {{}, error}; }

// The length of the line at the front (through its '\n', or the whole rest at the end of the
// stream), or `limit` when it is longer. The models look no further than the reader would, so
// that a run stays linear in the stream's size.
std::size_t line_length(std::string_view rest, std::size_t limit) {
  const std::string_view window = rest.substr(0, limit);
  const std::size_t nl = window.find('\n');
  return nl == std::string_view::npos ? window.size() : nl + 1;
}

Outcome read_until_model(std::string_view rest, std::string_view delimiter, std::size_t max_size) {
  const std::size_t at = rest.substr(0, max_size).find(delimiter);
  if (at != std::string_view::npos) return returns(rest, at + delimiter.size());
  if (rest.size() >= max_size) return throws(errc::frame_too_large);
  if (rest.empty()) return {};
  return throws(errc::truncated_frame);
}

// An operation's size argument from the rest of its byte: 0 to 900, or more than any input.
std::size_t argument(std::uint8_t op) {
  const std::size_t p = op >> 3;
  return p < 31 ? p * p : std::size_t{1} << 20;
}

class Run {
 public:
  Run(std::string_view bytes, std::span<const std::uint8_t> chunks, std::size_t scale, std::string_view delimiter)
      : bytes_(bytes), stream_(bytes, chunks, scale, '\n'), reader_(stream_), delimiter_(delimiter) {}

  BufferedReader& reader() { return reader_; }

  // One operation, checked against its model. False once it has thrown: the run ends there.
  bool step(std::uint8_t op) {
    const std::string_view rest = bytes_.substr(taken_);
    const std::size_t n = argument(op);
    Outcome expected;
    std::optional<std::string> got;
    try {
      switch (op & 7) {
        case 0:
        case 1: {
          const std::size_t cap = reader_.max_line != 0 ? reader_.max_line : BufferedReader::default_max_line;
          const std::size_t length = line_length(rest, cap + 1);
          expected = length > cap ? throws(errc::line_too_long) : returns_line(rest, length);
          got = reader_.readline();
          check(!got || got->size() <= cap);
          check(!got || got->back() == '\n' || at_end());
          break;
        }
        case 2:
          expected = n == 0 ? returns(rest, 0) : returns_line(rest, line_length(rest, n));
          got = reader_.readline(n);
          check(!got || got->size() <= n);
          break;
        case 3:
        case 4: {
          const std::size_t max_size = n + 1;
          expected = read_until_model(rest, delimiter_, max_size);
          got = reader_.read_until(delimiter_, max_size);
          check(!got || (got->size() <= max_size && got->ends_with(delimiter_)));
          break;
        }
        case 5:
          expected = returns(rest, n);
          got = reader_.read(n);
          break;
        case 6:
          reader_.max_line = n;
          return true;
        default:
          expected = returns(rest, rest.size());
          got = reader_.read();
          check(at_end());
          break;
      }
    } catch (const std::system_error& e) {
      check(expected.error && e.code() == *expected.error);
      return false;
    }
    check(!expected.error && got.has_value() == expected.bytes.has_value());
    if (got) {
      check(*got == *expected.bytes);
      taken_ += got->size();
    }
    check(stream_.fed() == taken_ + reader_.buffered());
    return true;
  }

  std::size_t taken() const noexcept { return taken_; }

 private:
  bool at_end() const noexcept { return stream_.fed() == bytes_.size() && reader_.buffered() == 0; }

  std::string_view bytes_;
  ChunkedStream stream_;
  BufferedReader reader_;
  std::string_view delimiter_;
  std::size_t taken_ = 0;  // bytes handed out: bytes_[0, taken_)
};

constexpr std::size_t header_size = 19;
constexpr std::size_t max_operations = 64;  // each costs a microsecond or so: runs stay short
constexpr std::size_t repeated_size = std::size_t{20} * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < header_size) return 0;
  const std::span<const std::uint8_t> input(data, size);
  const std::string delimiter(reinterpret_cast<const char*>(data) + 2, (data[1] & 3U) + 1);
  const std::string_view payload(reinterpret_cast<const char*>(data) + header_size, size - header_size);
  std::string bytes(payload);
  std::size_t repeat = 1;
  for (; data[6] == 0xFF && !payload.empty() && bytes.size() <= repeated_size; repeat *= 2) bytes += bytes;

  Run run(bytes, input.subspan(7, 4), repeat, delimiter);
  run.reader().max_line = data[0];
  const std::span<const std::uint8_t> ops = input.subspan(11, 8);
  // A round that takes nothing is at the end of the stream, or repeats itself for ever.
  for (std::size_t round = 0, before = static_cast<std::size_t>(-1);
       before != run.taken() && round < max_operations / ops.size(); ++round) {
    before = run.taken();
    for (const std::uint8_t op : ops)
      if (!run.step(op)) return 0;
  }
  return 0;
}
