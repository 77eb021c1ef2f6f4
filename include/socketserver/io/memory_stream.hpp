#ifndef SOCKETSERVER_IO_MEMORY_STREAM_HPP
#define SOCKETSERVER_IO_MEMORY_STREAM_HPP

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include <socketserver/io/byte_stream.hpp>

namespace socketserver {

/// A ByteStream in memory: reads come from a fixed input, writes collect in output().
///
/// DatagramRequestHandler reads its packet and collects its reply through two of these; tests
/// drive a handler's rfile/wfile logic through one without a network. Reads never wait: the
/// end of the input is the end of the stream.
class MemoryStream final : public ByteStream {
 public:
  explicit MemoryStream(std::string input = {}) : input_(std::move(input)) {}

  std::size_t read_some(std::span<char> buffer) override {
    const std::size_t n = std::min(buffer.size(), input_.size() - pos_);
    if (n != 0) std::memcpy(buffer.data(), input_.data() + pos_, n);
    pos_ += n;
    return n;
  }

  std::size_t write_some(std::span<const char> data) override {
    output_.append(data.data(), data.size());
    return data.size();
  }

  void shutdown_write() noexcept override {}
  void close() noexcept override {}
  int native_handle() const noexcept override { return -1; }

  /// Everything written so far.
  const std::string& output() const noexcept { return output_; }

 private:
  std::string input_;
  std::size_t pos_ = 0;
  std::string output_;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_IO_MEMORY_STREAM_HPP
