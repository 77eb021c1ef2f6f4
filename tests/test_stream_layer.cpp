// StreamLayer and server.layers: one layer, written once, under blocking and coroutine handlers
// alike; layers stack bottom first; a layer that holds bytes of its own is never stranded by the
// event loop's edge-triggered waits; a layer's handshake runs before the handler.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <socketserver/async/tcp_server.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/stream_layer.hpp>
#include <socketserver/thread_pool_mixin.hpp>
#include <socketserver/threading_servers.hpp>

#include "echo_handlers.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::ByteStream;

namespace {

// Reads all it can from the stream below, but hands out at most 7 bytes per call: after one
// read of the socket it holds the rest, which no readiness edge will announce.
class HoldBack final : public socketserver::StreamLayer {
 public:
  using StreamLayer::StreamLayer;
  std::size_t read_some(std::span<char> buffer) override {
    if (held_.empty()) {
      char chunk[65536];
      const std::size_t n = next().read_some(chunk);
      if (n == would_block || n == 0) return n;
      held_.assign(chunk, n);
    }
    const std::size_t n = std::min({buffer.size(), held_.size(), std::size_t{7}});
    std::memcpy(buffer.data(), held_.data(), n);
    held_.erase(0, n);
    return n;
  }

 private:
  std::string held_;
};

// Replaces one letter with another in what it reads: stacked, the order shows.
template <char From, char To>
class Replace final : public socketserver::StreamLayer {
 public:
  using StreamLayer::StreamLayer;
  std::size_t read_some(std::span<char> buffer) override {
    const std::size_t n = next().read_some(buffer);
    if (n != would_block) std::replace(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n), From, To);
    return n;
  }
};

// A handshake of its own: the peer must first send "HELLO\n", which the handler never sees.
// Written against would_block, so it waits the same way under both kinds of handler.
class Hello final : public socketserver::StreamLayer {
 public:
  using StreamLayer::StreamLayer;
  bool handshake(Clock::time_point deadline) override {
    if (!StreamLayer::handshake(deadline)) return false;
    while (got_.size() < greeting.size()) {
      char c = 0;
      const std::size_t n = next().read_some({&c, 1});
      if (n == would_block) return false;
      if (n == 0 || c != greeting[got_.size()])
        throw std::system_error(std::make_error_code(std::errc::protocol_error));
      got_ += c;
    }
    return true;
  }

 private:
  static constexpr std::string_view greeting = "HELLO\n";
  std::string got_;
};

template <class Layer>
std::unique_ptr<ByteStream> make(std::unique_ptr<ByteStream> next) {
  return std::make_unique<Layer>(std::move(next));
}

// A server on 127.0.0.1, configured before it starts serving.
template <class Server>
struct Configured {
  Configured() {
    if constexpr (requires { server.threads; }) server.threads = 1;
  }
  void start() { serving.emplace(server); }
  Server server{{"127.0.0.1", 0}};
  std::optional<test::ServerThread> serving;
};

// One packet of 50 lines, and no more data or FIN after it: every line must come back.
template <class Server>
void check_held_bytes_are_read() {
  Configured<Server> s;
  s.server.layers.push_back(make<HoldBack>);
  s.start();
  auto client = test::Client::connect(s.server.server_address());
  std::string lines;
  for (int i = 0; i < 50; ++i) lines += "line " + std::to_string(i) + "\n";
  client.send(lines);
  std::string got;
  while (got.size() < lines.size()) {
    const std::string part = client.recv();
    REQUIRE_FALSE(part.empty());  // a stranded layer would leave this waiting for the timeout
    got += part;
  }
  CHECK(got == lines);
}

template <class Server>
void check_order() {
  Configured<Server> s;
  // Bottom first: 'a' becomes 'b' in the lower layer, then 'c' in the upper one.
  s.server.layers.push_back(make<Replace<'a', 'b'>>);
  s.server.layers.push_back(make<Replace<'b', 'c'>>);
  s.start();
  auto client = test::Client::connect(s.server.server_address());
  client.send("a b c\n");
  CHECK(client.recv_line() == "c c c\n");
}

template <class Server>
void check_handshake() {
  Configured<Server> s;
  s.server.logger.level = socketserver::LogLevel::off;
  s.server.layers.push_back(make<Hello>);
  s.start();
  {
    auto client = test::Client::connect(s.server.server_address());
    client.send("HEL");  // split: the handshake waits for the rest
    client.send("LO\nafter the handshake\n");
    CHECK(client.recv_line() == "after the handshake\n");
  }
  auto rude = test::Client::connect(s.server.server_address());
  rude.send("GET / HTTP/1.1\n");
  CHECK(rude.recv_all().empty());  // closed before the handler saw a byte
}

}  // namespace

TEMPLATE_TEST_CASE("bytes a layer holds are read without waiting for another edge", "[layer]",
                   socketserver::AsyncTCPServer<test::AsyncLineEcho>, socketserver::ThreadingTCPServer<test::LineEcho>,
                   socketserver::TCPServer<test::LineEcho>) {
  check_held_bytes_are_read<TestType>();
}

TEMPLATE_TEST_CASE("server.layers stack bottom first, under either kind of handler", "[layer]",
                   socketserver::AsyncTCPServer<test::AsyncLineEcho>, socketserver::ThreadingTCPServer<test::LineEcho>,
                   socketserver::ThreadPoolMixIn<socketserver::TCPServer<test::LineEcho>>) {
  check_order<TestType>();
}

TEMPLATE_TEST_CASE("a layer's handshake runs before the handler, and a failed one closes the connection", "[layer]",
                   socketserver::AsyncTCPServer<test::AsyncLineEcho>,
                   socketserver::ThreadingTCPServer<test::LineEcho>) {
  check_handshake<TestType>();
}

TEST_CASE("a layer that made no stream is an error for that connection, not the server", "[layer]") {
  Configured<socketserver::ThreadingTCPServer<test::LineEcho>> s;
  s.server.logger.level = socketserver::LogLevel::off;
  s.server.layers.push_back([](std::unique_ptr<ByteStream>) { return std::unique_ptr<ByteStream>(); });
  s.start();
  auto client = test::Client::connect(s.server.server_address());
  CHECK(client.recv_all().empty());
  CHECK(test::eventually([&] { return s.server.stats().errors == 1; }));
}
