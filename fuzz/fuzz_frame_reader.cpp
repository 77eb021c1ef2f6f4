// libFuzzer harness for read_frame() and write_frame(): a LengthPrefix the input picks, frames
// read until the stream ends (32 at most) over a stream that hands its bytes out in chunks the
// input sizes too, so length fields and bodies straddle reads. The checks trap when:
//   - a body is larger than max_frame;
//   - the length fields and bodies read, end to end, are not exactly a prefix of the stream;
//   - read_frame() throws when it should not, or anything but errc::frame_too_large (the
//     announced body is negative or over max_frame) or errc::truncated_frame (the stream ends
//     inside a frame) when it should;
//   - write_frame() of each body read, and of the largest and a too large body, does not write
//     exactly the length field and the body, or throw errc::frame_too_large having written
//     nothing, or read_frame() does not give the same bodies back.
//
// Input: 8 bytes of settings, then the stream's bytes.
//   [0]     length_size 1, 2, 4 or 8 (the low 2 bits); bit 2: little endian
//   [1]     length_adjustment, -128 to 127, except 0x80 and 0x7F: the most negative and the
//           largest std::int64_t, which must not overflow the body's size
//   [2..3]  max_frame, 0 to 4095 (little endian, the low 12 bits)
//   [4..7]  the sizes of the stream's reads, cycled (0: as much as the reader asks for)
//
// Build and run (corpus: fuzz/corpus/frame_reader), or see fuzz/CMakeLists.txt:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_frame_reader.cpp -o fuzz_fr
//   ./fuzz_fr -max_total_time=600 new_corpus/ fuzz/corpus/frame_reader
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <socketserver/error.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/buffered_writer.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/framing.hpp>
#include <socketserver/io/memory_stream.hpp>

#include "chunked_stream.hpp"

namespace {

using socketserver::BufferedReader;
using socketserver::errc;
using socketserver::LengthPrefix;

using fuzz::check;
using fuzz::ChunkedStream;

// |adjustment|, also for the most negative value.
std::uint64_t magnitude(std::int64_t adjustment) { return std::uint64_t{0} - static_cast<std::uint64_t>(adjustment); }

// The body size the length field at the front of `rest` announces, or the error read_frame()
// owes: written apart from framing.hpp's arithmetic, to check it.
struct Expected {
  std::size_t body = 0;
  std::optional<errc> error;
};

Expected expected_frame(const LengthPrefix& prefix, std::string_view rest) {
  if (rest.size() < prefix.length_size) return {0, errc::truncated_frame};
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < prefix.length_size; ++i) {
    const std::size_t shift = 8 * (prefix.byte_order == std::endian::little ? i : prefix.length_size - 1 - i);
    value |= std::uint64_t{static_cast<unsigned char>(rest[i])} << shift;
  }
  std::uint64_t body = 0;
  if (prefix.length_adjustment >= 0) {
    const auto adjustment = static_cast<std::uint64_t>(prefix.length_adjustment);
    if (adjustment > prefix.max_frame || value > prefix.max_frame - adjustment) return {0, errc::frame_too_large};
    body = value + adjustment;
  } else {
    const std::uint64_t m = magnitude(prefix.length_adjustment);
    if (value < m || value - m > prefix.max_frame) return {0, errc::frame_too_large};
    body = value - m;
  }
  if (rest.size() - prefix.length_size < body) return {0, errc::truncated_frame};
  return {static_cast<std::size_t>(body), {}};
}

// The length field for a body of `size` bytes, or std::nullopt when write_frame() must refuse it.
std::optional<std::string> field_for(const LengthPrefix& prefix, std::size_t size) {
  if (size > prefix.max_frame) return std::nullopt;
  std::uint64_t value = size;
  if (prefix.length_adjustment >= 0) {
    const auto adjustment = static_cast<std::uint64_t>(prefix.length_adjustment);
    if (value < adjustment) return std::nullopt;
    value -= adjustment;
  } else {
    const std::uint64_t m = magnitude(prefix.length_adjustment);
    if (value > std::numeric_limits<std::uint64_t>::max() - m) return std::nullopt;
    value += m;
  }
  if (prefix.length_size < 8 && (value >> (8 * prefix.length_size)) != 0) return std::nullopt;
  std::string field(prefix.length_size, '\0');
  for (std::size_t i = 0; i < prefix.length_size; ++i) {
    const std::size_t shift = 8 * (prefix.byte_order == std::endian::little ? i : prefix.length_size - 1 - i);
    field[i] = static_cast<char>(static_cast<unsigned char>(value >> shift));
  }
  return field;
}

constexpr std::size_t max_frames = 32;  // each costs a microsecond or so: runs stay short

// Reads frames until the stream ends or read_frame() throws, max_frames at most; returns the
// bodies.
std::vector<std::string> read_frames(const LengthPrefix& prefix, std::string_view bytes,
                                     std::span<const std::uint8_t> chunks) {
  ChunkedStream stream(bytes, chunks, 1, '\xFF');
  BufferedReader reader(stream);
  std::vector<std::string> bodies;
  std::string rebuilt;  // the length fields and bodies read, end to end
  while (bodies.size() < max_frames) {
    const std::string_view rest = bytes.substr(rebuilt.size());
    const Expected expected = expected_frame(prefix, rest);
    std::optional<std::string> body;
    try {
      body = socketserver::read_frame(reader, prefix);
    } catch (const std::system_error& e) {
      check(!rest.empty() && expected.error && e.code() == *expected.error);
      return bodies;
    }
    if (!body) {
      check(rest.empty());
      return bodies;
    }
    check(!expected.error && body->size() == expected.body && body->size() <= prefix.max_frame);
    const std::optional<std::string> field = field_for(prefix, body->size());
    check(field.has_value());
    rebuilt += *field;
    rebuilt += *body;
    check(bytes.starts_with(rebuilt));
    bodies.push_back(std::move(*body));
  }
  return bodies;
}

// write_frame() of each body, then read_frame() of what it wrote.
void round_trip(const LengthPrefix& prefix, const std::vector<std::string>& bodies,
                std::span<const std::uint8_t> chunks) {
  socketserver::MemoryStream memory;
  socketserver::BufferedWriter writer(memory);
  std::string wire;
  std::vector<std::string_view> written;
  for (const std::string& body : bodies) {
    const std::optional<std::string> field = field_for(prefix, body.size());
    try {
      socketserver::write_frame(writer, prefix, body);
    } catch (const std::system_error& e) {
      check(!field && e.code() == errc::frame_too_large);
      continue;
    }
    check(field.has_value());
    wire += *field;
    wire += body;
    written.push_back(body);
  }
  writer.flush();
  check(memory.output() == wire);

  ChunkedStream stream(wire, chunks, 1, '\xFF');
  BufferedReader reader(stream);
  for (const std::string_view body : written) check(socketserver::read_frame(reader, prefix) == body);
  check(!socketserver::read_frame(reader, prefix));
}

constexpr std::size_t header_size = 8;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < header_size) return 0;
  const std::span<const std::uint8_t> input(data, size);
  LengthPrefix prefix;
  prefix.length_size = std::size_t{1} << (data[0] & 3U);
  prefix.byte_order = (data[0] & 4U) != 0 ? std::endian::little : std::endian::big;
  if (data[1] == 0x80) {
    prefix.length_adjustment = std::numeric_limits<std::int64_t>::min();
  } else if (data[1] == 0x7F) {
    prefix.length_adjustment = std::numeric_limits<std::int64_t>::max();
  } else {
    prefix.length_adjustment = data[1] < 0x80 ? data[1] : data[1] - 256;
  }
  prefix.max_frame = (data[2] | (std::size_t{data[3]} << 8)) & 0xFFFU;
  const std::span<const std::uint8_t> chunks = input.subspan(4, 4);
  const std::string_view bytes(reinterpret_cast<const char*>(data) + header_size, size - header_size);

  std::vector<std::string> bodies = read_frames(prefix, bytes, chunks);
  // The largest body, and one byte more, where the input is long enough.
  for (std::size_t n : {prefix.max_frame, prefix.max_frame + 1})
    if (n <= bytes.size()) bodies.emplace_back(bytes.substr(0, n));
  round_trip(prefix, bodies, chunks);
  return 0;
}
