// libFuzzer harness for decompression: decompress() and the compression layer's reading side
// (CompressionStream over a stream that hands its bytes out in chunks the input sizes), in gzip
// or deflate, under a small DecompressionLimits. The checks trap when:
//   - either throws anything but std::system_error with errc::bad_compressed_data or
//     errc::decompression_limit;
//   - either produces more than the limits allow for the input it has read;
//   - the layer's output differs from decompress()'s where decompress() succeeds (the layer
//     then yields the same bytes, and ends).
//
// Input: 5 bytes of settings, then the compressed bytes.
//   [0]     bit 0: gzip (else deflate); bits 1-7: max_ratio (0: no ratio allowance)
//   [1..4]  the sizes of the stream's reads, cycled (0: as much as asked for); the layer's reads
//           take 1 + the same sizes times 64 bytes
//
// Build and run (corpus: fuzz/corpus/decompress), or see fuzz/CMakeLists.txt:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_decompress.cpp -lz -o fuzz_dc
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <socketserver/error.hpp>
#include <socketserver/io/compression.hpp>

#include "chunked_stream.hpp"

namespace {

constexpr std::size_t max_output = 64 * 1024;

bool expected(const std::system_error& e) {
  return e.code() == socketserver::errc::bad_compressed_data || e.code() == socketserver::errc::decompression_limit;
}

bool within(const socketserver::DecompressionLimits& limits, std::size_t in, std::size_t out) {
  return out <= max_output || (limits.max_ratio != 0 && out <= limits.max_ratio * std::max<std::size_t>(in, 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const auto format = (data[0] & 1) != 0 ? socketserver::Compression::gzip : socketserver::Compression::deflate;
  const socketserver::DecompressionLimits limits{max_output, static_cast<std::size_t>(data[0] >> 1)};
  const std::span<const std::uint8_t> chunks(data + 1, 4);
  const std::string_view compressed(reinterpret_cast<const char*>(data + 5), size - 5);

  std::optional<std::string> whole;
  try {
    whole = socketserver::decompress(compressed, format, limits);
    fuzz::check(within(limits, compressed.size(), whole->size()));
  } catch (const std::system_error& e) {
    fuzz::check(expected(e));
  }

  socketserver::CompressionStream layer(std::make_unique<fuzz::ChunkedStream>(compressed, chunks, 1, '\0'), format,
                                        limits);
  std::string out;
  std::string buffer(16 * 1024, '\0');
  bool failed = false;
  try {
    for (std::size_t i = 0;; ++i) {
      const std::size_t ask = 1 + chunks[i % chunks.size()] * std::size_t{64};
      const std::size_t n = layer.read_some(std::span<char>(buffer.data(), std::min(ask, buffer.size())));
      if (n == 0) break;
      out.append(buffer.data(), n);
      fuzz::check(within(limits, layer.compressed_in(), out.size()));
    }
  } catch (const std::system_error& e) {
    fuzz::check(expected(e));
    failed = true;
  }
  fuzz::check(layer.plaintext_out() == out.size());
  if (whole && !failed) fuzz::check(out == *whole);
  if (whole && failed) fuzz::check(whole->compare(0, out.size(), out) == 0);  // a prefix, at least
  return 0;
}
