// A ByteStream for unit tests of the readers and writers: input arrives in the chunks given,
// writes may be cut short, and every call is logged in order.
#ifndef SOCKETSERVER_TESTS_SCRIPTED_STREAM_HPP
#define SOCKETSERVER_TESTS_SCRIPTED_STREAM_HPP

#include <algorithm>
#include <cstring>
#include <deque>
#include <string>
#include <system_error>
#include <vector>

#include <socketserver/io/byte_stream.hpp>

namespace test {

class ScriptedStream final : public socketserver::ByteStream {
 public:
  explicit ScriptedStream(std::vector<std::string> chunks = {}) : chunks_(chunks.begin(), chunks.end()) {}

  std::size_t read_some(std::span<char> buffer) override {
    log.push_back("read");
    if (chunks_.empty()) return 0;
    std::string& chunk = chunks_.front();
    const std::size_t n = std::min(buffer.size(), chunk.size());
    std::memcpy(buffer.data(), chunk.data(), n);
    chunk.erase(0, n);
    if (chunk.empty()) chunks_.pop_front();
    return n;
  }

  std::size_t write_some(std::span<const char> data) override {
    if (fail_writes) throw std::system_error(std::make_error_code(std::errc::broken_pipe), "send");
    const std::size_t n = std::min(data.size(), max_write);
    log.push_back("write " + std::to_string(n));
    written.append(data.data(), n);
    return n;
  }

  void shutdown_write() noexcept override {}
  void close() noexcept override {}
  int native_handle() const noexcept override { return -1; }

  std::size_t max_write = static_cast<std::size_t>(-1);  // cut each write to this size
  bool fail_writes = false;
  std::string written;
  std::vector<std::string> log;  // "read" and "write N", in call order

  std::size_t writes() const {
    return static_cast<std::size_t>(
        std::count_if(log.begin(), log.end(), [](const std::string& e) { return e != "read"; }));
  }

 private:
  std::deque<std::string> chunks_;
};

}  // namespace test

#endif  // SOCKETSERVER_TESTS_SCRIPTED_STREAM_HPP
