#ifndef SOCKETSERVER_IO_STREAM_LAYER_HPP
#define SOCKETSERVER_IO_STREAM_LAYER_HPP

#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <utility>

#include <socketserver/io/byte_stream.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver {

/// A ByteStream over another one, which it owns: the base of a layer. Everything a layer does
/// not override goes to the stream below it.
///
/// ```
/// struct Rot13 : socketserver::StreamLayer {  // a layer that transforms what it reads
///   using StreamLayer::StreamLayer;
///   std::size_t read_some(std::span<char> buffer) override {
///     const std::size_t n = next().read_some(buffer);
///     if (n != would_block) rot13(buffer.first(n));
///     return n;
///   }
/// };
/// server.layers.push_back([](auto next) { return std::make_unique<Rot13>(std::move(next)); });
/// ```
/// Written this way a layer works under blocking and coroutine handlers alike: it passes
/// would_block up, and blocked_on() reports what the stream below waits for (override it when the
/// layer itself decides, as TLS does).
class StreamLayer : public ByteStream {
 public:
  /// Takes ownership of `next`, the stream below; throws std::invalid_argument for null.
  explicit StreamLayer(std::unique_ptr<ByteStream> next) : next_(std::move(next)) {
    if (!next_) throw std::invalid_argument("StreamLayer over no stream");
  }

  /// The stream below this one.
  ByteStream& next() noexcept { return *next_; }
  const ByteStream& next() const noexcept { return *next_; }

  std::size_t read_some(std::span<char> buffer) override { return next_->read_some(buffer); }
  std::size_t write_some(std::span<const char> data) override { return next_->write_some(data); }
  Direction blocked_on() const noexcept override { return next_->blocked_on(); }
  bool handshake(Clock::time_point deadline) override { return next_->handshake(deadline); }
  bool close_handshake(Clock::time_point deadline) override { return next_->close_handshake(deadline); }
  bool truncated() const noexcept override { return next_->truncated(); }
  void shutdown_write() noexcept override { next_->shutdown_write(); }
  void close() noexcept override { next_->close(); }
  int native_handle() const noexcept override { return next_->native_handle(); }
  void set_no_delay(bool on) override { next_->set_no_delay(on); }
  std::optional<Seconds> timeout(Direction direction) const noexcept override { return next_->timeout(direction); }
  void set_timeout(Direction direction, std::optional<Seconds> limit) noexcept override {
    next_->set_timeout(direction, limit);
  }
  using ByteStream::set_timeout;

 private:
  std::unique_ptr<ByteStream> next_;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_IO_STREAM_LAYER_HPP
