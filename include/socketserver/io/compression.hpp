#ifndef SOCKETSERVER_IO_COMPRESSION_HPP
#define SOCKETSERVER_IO_COMPRESSION_HPP

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <socketserver/detail/config.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/stream_layer.hpp>

namespace socketserver {

/// zlib's two framings of deflate: the zlib format (RFC 1950, HTTP's `deflate`) and gzip (RFC
/// 1952, HTTP's `gzip`).
enum class Compression { deflate, gzip };

/// What decompression may produce, however the input is crafted: one cap for every codec and
/// every use (compressed messages and the compression layer alike). The output may reach
/// max(max_output, max_ratio x the compressed bytes read); past it,
/// std::system_error(errc::decompression_limit), raised before more memory is taken.
///
/// A zip bomb of zeros is about 1000:1; text compresses 3 to 10 times, JSON 5 to 20 times. With
/// the defaults a message decompresses to 1 MiB whatever its ratio, and beyond that only while
/// it stays under 100:1.
struct DecompressionLimits {
  /// Output always allowed, whatever the ratio (a message; for the layer, the connection's
  /// first bytes). 0: no cap at all (not for input from the network).
  std::size_t max_output = std::size_t{1024} * 1024;
  /// Output allowed per compressed byte beyond max_output. 0: max_output is a hard cap.
  std::size_t max_ratio = 100;
};

/// Compresses `data` in one piece (level 0 to 9; 6 is zlib's default; std::invalid_argument for
/// another).
std::string compress(std::string_view data, Compression format = Compression::gzip, int level = 6);

/// Decompresses one whole message. Throws std::system_error: errc::bad_compressed_data for input
/// that is not `format` or is cut short, errc::decompression_limit past `limits`.
std::string decompress(std::string_view data, Compression format = Compression::gzip,
                       const DecompressionLimits& limits = {});

/// A compressed connection: a layer that inflates what it reads and deflates what it writes,
/// each write sent as a unit the peer can decode at once (Z_SYNC_FLUSH), so request-reply and
/// push protocols work unchanged over it. For TCP or TLS alike, under any protocol's rfile and
/// wfile, blocking or coroutine:
///
/// ```
/// server.layers.push_back(socketserver::compression_layer(socketserver::Compression::deflate));
/// ```
/// The reading side is held to DecompressionLimits: past max_output bytes of plaintext, it
/// refuses to produce more than max_ratio bytes per compressed byte received
/// (errc::decompression_limit), so a few kilobytes cannot become gigabytes. Memory: zlib's
/// state (about 300 KiB for both directions at the default window), a 16 KiB read buffer, and
/// room for one compressed write (about 64 KiB once a large write has been made).
///
/// The layer never ends its compressed stream (zlib's Z_FINISH, gzip's trailer): the end of
/// the connection ends it, so a gzip peer that checks for the trailer reports it missing, and
/// the layer's truncated() is true after most peers' closes (readers then treat an end inside a
/// line or frame as errc::truncated_frame, and one between requests as the end).
///
/// Threads: one reader and one writer at a time, which may be two threads (they use separate
/// zlib streams).
class CompressionStream final : public StreamLayer {
 public:
  CompressionStream(std::unique_ptr<ByteStream> next, Compression format, DecompressionLimits limits = {},
                    int level = 6);
  ~CompressionStream() override;
  CompressionStream(const CompressionStream&) = delete;
  CompressionStream& operator=(const CompressionStream&) = delete;

  std::size_t read_some(std::span<char> buffer) override;
  std::size_t write_some(std::span<const char> data) override;
  bool truncated() const noexcept override { return truncated_ || StreamLayer::truncated(); }

  /// Compressed bytes read and plaintext bytes produced so far.
  std::size_t compressed_in() const noexcept { return in_total_; }
  std::size_t plaintext_out() const noexcept { return out_total_; }

 private:
  struct Zlib;
  std::unique_ptr<Zlib> z_;
  DecompressionLimits limits_;
  std::vector<char> in_;  // compressed bytes read and not yet inflated: [in_begin_, in_end_)
  std::size_t in_begin_ = 0, in_end_ = 0;
  std::vector<char> out_;  // deflated bytes of the last write, not yet sent: [out_begin_, out_end_)
  std::size_t out_begin_ = 0, out_end_ = 0;
  std::size_t consumed_ = 0;  // plaintext bytes that out_ holds, returned once it is sent
  std::size_t in_total_ = 0, out_total_ = 0;
  bool ended_ = false;      // the compressed stream ended (gzip's trailer): end of stream
  bool truncated_ = false;  // the stream below ended inside a compressed block
};

/// A server layer (server.layers) that puts a CompressionStream on every connection.
std::function<std::unique_ptr<ByteStream>(std::unique_ptr<ByteStream>)> compression_layer(
    Compression format = Compression::deflate, DecompressionLimits limits = {}, int level = 6);

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <zlib.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <system_error>

#include <socketserver/error.hpp>

namespace socketserver {

namespace detail {

inline int window_bits(Compression format) noexcept { return format == Compression::gzip ? 15 + 16 : 15; }

[[noreturn]] inline void throw_zlib(int code, const char* what) {
  if (code == Z_MEM_ERROR) throw std::bad_alloc();
  throw std::system_error(errc::bad_compressed_data, what);
}

inline void check_level(int level) {
  if (level < 0 || level > 9) throw std::invalid_argument("compression level must be 0 to 9");
}

}  // namespace detail

SOCKETSERVER_DECL std::string compress(std::string_view data, Compression format, int level) {
  detail::check_level(level);
  if (data.size() > std::numeric_limits<uInt>::max()) throw std::length_error("compress: over 4 GiB in one piece");
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, detail::window_bits(format), 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::bad_alloc();
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int status = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (status != Z_STREAM_END) throw std::length_error("compress: input too large for one piece");
  return out;
}

SOCKETSERVER_DECL std::string decompress(std::string_view data, Compression format, const DecompressionLimits& limits) {
  z_stream z{};
  if (inflateInit2(&z, detail::window_bits(format)) != Z_OK) throw std::bad_alloc();
  struct End {
    z_stream& z;
    ~End() { inflateEnd(&z); }
  } end{z};
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(std::min<std::size_t>(data.size(), std::numeric_limits<uInt>::max()));
  std::string out;
  constexpr std::size_t step = std::size_t{16} * 1024;
  for (;;) {
    // Grow by a step at a time, never past what the limits allow for the input read so far.
    std::size_t room = step;
    if (limits.max_output != 0) {
      const std::size_t in = z.total_in + 1;  // the byte being read counts
      const std::size_t allowed = std::max(limits.max_output, limits.max_ratio * in);
      if (out.size() >= allowed) throw std::system_error(errc::decompression_limit, "decompress");
      room = std::min(room, allowed - out.size());
    }
    const std::size_t old = out.size();
    out.resize(old + room);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    z.avail_out = static_cast<uInt>(room);
    const int status = inflate(&z, Z_NO_FLUSH);
    out.resize(old + room - z.avail_out);
    if (status == Z_STREAM_END) {
      if (z.avail_in != 0) throw std::system_error(errc::bad_compressed_data, "decompress: bytes after the end");
      return out;
    }
    if (status == Z_BUF_ERROR && z.avail_in == 0)
      throw std::system_error(errc::bad_compressed_data, "decompress: the input ends inside the stream");
    if (status != Z_OK && status != Z_BUF_ERROR) detail::throw_zlib(status, "decompress");
  }
}

struct CompressionStream::Zlib {
  z_stream inflater{};
  z_stream deflater{};
  bool inflating = false;
  bool deflating = false;
  ~Zlib() {
    if (inflating) inflateEnd(&inflater);
    if (deflating) deflateEnd(&deflater);
  }
};

SOCKETSERVER_DECL CompressionStream::CompressionStream(std::unique_ptr<ByteStream> next, Compression format,
                                                       DecompressionLimits limits, int level)
    : StreamLayer(std::move(next)), z_(std::make_unique<Zlib>()), limits_(limits), in_(std::size_t{16} * 1024) {
  detail::check_level(level);
  if (inflateInit2(&z_->inflater, detail::window_bits(format)) != Z_OK) throw std::bad_alloc();
  z_->inflating = true;
  if (deflateInit2(&z_->deflater, level, Z_DEFLATED, detail::window_bits(format), 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::bad_alloc();
  z_->deflating = true;
}

SOCKETSERVER_DECL CompressionStream::~CompressionStream() = default;

SOCKETSERVER_DECL std::size_t CompressionStream::read_some(std::span<char> buffer) {
  if (buffer.empty()) return 0;
  z_stream& z = z_->inflater;
  for (;;) {
    if (ended_) return 0;
    if (in_begin_ < in_end_) {
      // What the limits let this read produce.
      std::size_t room = buffer.size();
      if (limits_.max_output != 0) {
        const std::size_t allowed =
            std::max(limits_.max_output, limits_.max_ratio * std::max<std::size_t>(in_total_, 1));
        if (out_total_ >= allowed) throw std::system_error(errc::decompression_limit, "read");
        room = std::min(room, allowed - out_total_);
      }
      z.next_in = reinterpret_cast<Bytef*>(in_.data() + in_begin_);
      z.avail_in = static_cast<uInt>(in_end_ - in_begin_);
      z.next_out = reinterpret_cast<Bytef*>(buffer.data());
      z.avail_out = static_cast<uInt>(std::min<std::size_t>(room, std::numeric_limits<uInt>::max()));
      const uInt offered = z.avail_out;
      const int status = inflate(&z, Z_SYNC_FLUSH);
      in_begin_ = in_end_ - z.avail_in;
      if (status == Z_STREAM_END) {
        ended_ = true;  // gzip's trailer, or the zlib stream's end
      } else if (status != Z_OK && status != Z_BUF_ERROR) {
        detail::throw_zlib(status, "read");  // what it wrote to `buffer` is not handed out
      }
      const std::size_t produced = offered - z.avail_out;
      out_total_ += produced;
      if (produced != 0) return produced;
      if (ended_) return 0;
      if (in_begin_ < in_end_) continue;  // a header, or an empty block: inflate on
    }
    // Everything read is inflated: read more.
    in_begin_ = in_end_ = 0;
    const std::size_t got = next().read_some(in_);
    if (got == would_block) return would_block;
    if (got == 0) {
      truncated_ = z.total_in != 0 || in_total_ != 0;  // it had begun, and no end came
      return 0;
    }
    in_end_ = got;
    in_total_ += got;
  }
}

SOCKETSERVER_DECL std::size_t CompressionStream::write_some(std::span<const char> data) {
  if (out_begin_ == out_end_) {  // compress the next piece of `data`
    if (data.empty()) return 0;
    z_stream& z = z_->deflater;
    const std::size_t piece = std::min<std::size_t>(data.size(), std::size_t{64} * 1024);
    out_.resize(deflateBound(&z, static_cast<uLong>(piece)) + 64);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(piece);
    std::size_t used = 0;
    for (;;) {
      z.next_out = reinterpret_cast<Bytef*>(out_.data() + used);
      z.avail_out = static_cast<uInt>(out_.size() - used);
      const int status = deflate(&z, Z_SYNC_FLUSH);  // the peer can decode it at once
      if (status != Z_OK && status != Z_BUF_ERROR) detail::throw_zlib(status, "write");
      used = out_.size() - z.avail_out;
      if (z.avail_out != 0 && z.avail_in == 0) break;  // all of it, flush marker included
      out_.resize(out_.size() * 2);
    }
    out_begin_ = 0;
    out_end_ = used;
    consumed_ = piece;
  }
  // The caller retries with the same bytes until this returns their count.
  while (out_begin_ < out_end_) {
    const std::size_t sent = next().write_some({out_.data() + out_begin_, out_end_ - out_begin_});
    if (sent == would_block) return would_block;
    out_begin_ += sent;
  }
  out_begin_ = out_end_ = 0;
  return consumed_;
}

SOCKETSERVER_DECL std::function<std::unique_ptr<ByteStream>(std::unique_ptr<ByteStream>)> compression_layer(
    Compression format, DecompressionLimits limits, int level) {
  return [format, limits, level](std::unique_ptr<ByteStream> next) -> std::unique_ptr<ByteStream> {
    return std::make_unique<CompressionStream>(std::move(next), format, limits, level);
  };
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_IO_COMPRESSION_HPP
