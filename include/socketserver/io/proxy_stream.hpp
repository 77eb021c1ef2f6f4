#ifndef SOCKETSERVER_IO_PROXY_STREAM_HPP
#define SOCKETSERVER_IO_PROXY_STREAM_HPP

#include <cstddef>
#include <memory>
#include <span>
#include <utility>

#include <socketserver/detail/config.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/stream_layer.hpp>
#include <socketserver/proxy_header.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver {

/// The PROXY protocol layer: reads the header a trusted proxy sends first (v1 or v2), then passes
/// the connection's bytes through. Servers put it right on the socket when server.proxy_protocol
/// trusts the peer; a user who reads the header some other way can use it directly.
///
/// The header is read in handshake(), into a buffer of max_proxy_header_size() bytes, so one read
/// takes the header and the data that came with it; that data is handed out first, before the
/// next read of the socket: no byte after the header is lost, and no extra system call is made.
/// The buffer goes once it is drained. Failures throw std::system_error: errc::bad_proxy_header
/// (malformed, or the stream ended first), errc::proxy_header_too_large (over the TLV cap),
/// errc::proxy_header_timeout (the deadline passed).
class ProxyStream final : public StreamLayer {
 public:
  /// Reads a header of at most `max_tlv_size` bytes of TLVs from `next`.
  ProxyStream(std::unique_ptr<ByteStream> next, std::size_t max_tlv_size)
      : StreamLayer(std::move(next)), max_tlv_size_(max_tlv_size) {}

  /// Reads the header, waiting until `deadline` at most (a blocking stream); a non-blocking one
  /// returns false when it must wait for more.
  bool handshake(Clock::time_point deadline) override;

  /// What came after the header first, then the stream below.
  std::size_t read_some(std::span<char> buffer) override;

  /// The header, once handshake() has returned true.
  const ProxyHeader& header() const noexcept { return header_; }

  /// Whether handshake() has read the whole header.
  bool done() const noexcept { return done_; }

 private:
  // One read that ends by `deadline`: a blocking stream waits at most the time left (and not
  // at all for the first read, which finds the header that came with the connection without
  // needing a kernel timeout).
  std::size_t read_by(Clock::time_point deadline, std::span<char> into);

  void release() noexcept;

  std::size_t max_tlv_size_;
  ProxyHeader header_;
  std::unique_ptr<char[]> buffer_;  // the header and what came with it, while it lasts
  std::size_t begin_ = 0;           // bytes after the header are buffer_[begin_, end_)
  std::size_t end_ = 0;
  bool done_ = false;
  bool first_read_ = true;
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>

#include <socketserver/error.hpp>

namespace socketserver {

SOCKETSERVER_DECL bool ProxyStream::handshake(Clock::time_point deadline) {
  if (done_) return true;
  if (!StreamLayer::handshake(deadline)) return false;
  const std::size_t capacity = max_proxy_header_size(max_tlv_size_);
  if (!buffer_) buffer_ = std::make_unique_for_overwrite<char[]>(capacity);
  for (;;) {
    const std::size_t got = read_by(deadline, {buffer_.get() + end_, capacity - end_});
    if (got == would_block) return false;
    if (got == 0) throw std::system_error(errc::bad_proxy_header, "PROXY header: the connection ended first");
    end_ += got;
    const ProxyParse parsed = parse_proxy_header({buffer_.get(), end_}, max_tlv_size_, header_);
    if (parsed.status == ProxyParse::Status::complete) {
      done_ = true;
      begin_ = parsed.size;
      if (begin_ == end_) release();
      return true;
    }
    if (parsed.status == ProxyParse::Status::invalid)
      throw std::system_error(errc::bad_proxy_header, std::string("PROXY header: ") + parsed.reason);
    if (parsed.status == ProxyParse::Status::too_large || end_ == capacity)
      throw std::system_error(errc::proxy_header_too_large, std::string("PROXY header: ") + parsed.reason);
  }
}

SOCKETSERVER_DECL std::size_t ProxyStream::read_some(std::span<char> buffer) {
  if (begin_ == end_) return next().read_some(buffer);
  const std::size_t n = std::min(buffer.size(), end_ - begin_);
  std::memcpy(buffer.data(), buffer_.get() + begin_, n);
  begin_ += n;
  if (begin_ == end_) release();
  return n;
}

SOCKETSERVER_DECL std::size_t ProxyStream::read_by(Clock::time_point deadline, std::span<char> into) {
  const auto now = Clock::now();
  if (now >= deadline) throw std::system_error(errc::proxy_header_timeout, "PROXY header");
  ByteStream& below = next();
  const std::optional<Seconds> kept = below.timeout(Direction::read);
  std::optional<Seconds> limit = kept;
  if (first_read_) {
    limit = Seconds(0);
  } else if (deadline != Clock::time_point::max()) {
    const Seconds left(deadline - now);
    if (!kept || left < *kept) limit = left;
  }
  below.set_timeout(Direction::read, limit);
  first_read_ = false;
  struct Restore {
    ByteStream& stream;
    const std::optional<Seconds>& kept;
    ~Restore() { stream.set_timeout(Direction::read, kept); }
  } restore{below, kept};
  try {
    return below.read_some(into);
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::timed_out) throw;
    if (Clock::now() >= deadline) throw std::system_error(errc::proxy_header_timeout, "PROXY header");
    return read_by(deadline, into);  // the first, waitless read found nothing yet
  }
}

SOCKETSERVER_DECL void ProxyStream::release() noexcept {
  buffer_.reset();
  begin_ = end_ = 0;
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_IO_PROXY_STREAM_HPP
