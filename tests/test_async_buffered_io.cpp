// AsyncBufferedReader and AsyncBufferedWriter, through a real AsyncTCPServer: Python's
// readline(size) and read(n), long lines, views that stay valid while other connections read,
// and a writer that waits for a peer that does not read instead of buffering without bound.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>

#include "test_support.hpp"

namespace {

// Answers "l<n>" with readline(n) (and, when that stopped short of a newline, "|" and the rest
// of the line) and "r<n>" with read(n), each reply in brackets.
struct Sized : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    while (auto command = co_await rfile.readline()) {
      const char kind = (*command)[0];
      const std::size_t n = std::stoul(std::string(command->substr(1)));
      std::string reply = "[";
      if (kind == 'l') {
        auto line = co_await rfile.readline(n);
        reply += line ? std::string(*line) : "EOF";
        if (line && !line->ends_with('\n')) {
          auto rest = co_await rfile.readline();
          reply += "|" + std::string(rest.value_or("EOF"));
        }
      } else {
        reply += co_await rfile.read(n);
      }
      reply += "]";
      co_await wfile.write(reply);
    }
  }
};

template <class Handler>
using Served = test::Served<socketserver::AsyncTCPServer<Handler>>;

}  // namespace

TEST_CASE("readline(size) and read(n) behave as Python's") {
  Served<Sized> s;
  auto client = test::Client::connect(s.server.server_address());
  client.send("l5\nabcdefgh\n");  // a line longer than the limit: its first 5 bytes
  CHECK(test::recv_exact(client, 12) == "[abcde|fgh\n]");
  client.send("l100\nabc\n");  // a shorter one: all of it
  CHECK(test::recv_exact(client, 6) == "[abc\n]");
  client.send("r4\nxy");
  client.send("zw");
  CHECK(test::recv_exact(client, 6) == "[xyzw]");
  client.send("r10\nshort");
  client.shutdown_write();  // read(n) returns fewer at end of stream
  CHECK(client.recv_all() == "[short]");
}

TEST_CASE("a line longer than the loop's 64 KiB buffer, up to max_line") {
  struct Long : socketserver::AsyncStreamRequestHandler {
    void setup() override {
      rfile.max_line = 1 << 20;
      AsyncStreamRequestHandler::setup();
    }
    asio::awaitable<void> handle() override {
      while (auto line = co_await rfile.readline()) co_await wfile.write(std::to_string(line->size()) + "\n");
    }
  };
  Served<Long> s;
  auto client = test::Client::connect(s.server.server_address());
  const std::string line = std::string(300000, 'q') + "\n";
  client.send(line + "x\n");
  CHECK(client.recv_line() == "300001\n");
  CHECK(client.recv_line() == "2\n");
}

namespace {

// A connection that sends "hold" keeps the view of that line across a suspension, while another
// connection on the same loop reads "release" and wakes it up.
asio::steady_timer* hold_timer = nullptr;

struct Holder : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    while (auto line = co_await rfile.readline()) {
      if (*line == "hold\n") {
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
        hold_timer = &timer;
        try {
          co_await timer.async_wait(asio::use_awaitable);
        } catch (const std::system_error&) {  // cancelled by "release"
        }
        hold_timer = nullptr;
        co_await wfile.write(*line);  // the view must still read "hold\n"
      } else {
        co_await wfile.write(*line);
        if (*line == "release\n" && hold_timer != nullptr) hold_timer->cancel();
      }
    }
  }
};

}  // namespace

TEST_CASE("a returned line stays valid while its handler waits and others read") {
  Served<Holder> s;
  auto holder = test::Client::connect(s.server.server_address());
  holder.send("hold\n");
  auto other = test::Client::connect(s.server.server_address());
  other.send("ping\n");
  CHECK(other.recv_line() == "ping\n");  // read while the holder keeps its buffer
  other.send(std::string(1000, 'z') + "\nrelease\n");
  CHECK(other.recv_line() == std::string(1000, 'z') + "\n");
  CHECK(other.recv_line() == "release\n");
  CHECK(holder.recv_line() == "hold\n");
}

namespace {

constexpr std::size_t flood_size = std::size_t{16} << 20;
std::atomic<std::size_t> most_buffered{0};
std::atomic<bool> flood_done{false};

struct Flood : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    const std::string data = test::counting_bytes(flood_size);
    for (std::size_t at = 0; at < data.size(); at += 1000) {
      co_await wfile.write(std::string_view(data).substr(at, 1000));
      most_buffered = std::max(most_buffered.load(), wfile.buffered());
    }
    flood_done = true;
  }
};

}  // namespace

TEST_CASE("a peer that reads slowly: write() waits, the buffer stays within buffer_size") {
  most_buffered = 0;
  flood_done = false;
  Served<Flood> s;
  auto client = test::Client::connect(s.server.server_address());
  std::string got;
  while (got.size() < flood_size) {
    const std::string part = client.recv(4096);
    REQUIRE_FALSE(part.empty());
    got += part;
  }
  CHECK(got == test::counting_bytes(flood_size));
  CHECK(flood_done);
  CHECK(most_buffered <= std::size_t{64} * 1024);
  CHECK(most_buffered > 0);
}

namespace {

constexpr std::size_t two_writers_size = std::size_t{4} << 20;
std::atomic<bool> second_wait_refused{false};

// A second coroutine writes to wfile while the first waits for the full socket: the second one's
// wait is refused (std::logic_error), not allowed to take the first one's place.
struct TwoWriters : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    const int small = 4096;  // so that the first writer surely waits for the peer
    ::setsockopt(request->fileno(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer first_done(executor, asio::steady_timer::time_point::max());
    bool done = false;
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
          co_await wfile.write(test::counting_bytes(two_writers_size));  // fills the socket, waits
          done = true;
          first_done.cancel();
        },
        asio::detached);
    co_await asio::post(executor, asio::use_awaitable);  // queued behind the first one's start
    co_await wfile.write("x");
    try {
      co_await wfile.flush();
    } catch (const std::logic_error&) {
      second_wait_refused = true;
    }
    std::error_code ignored;
    if (!done) co_await first_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
};

}  // namespace

TEST_CASE("two coroutines waiting to write on one connection: the second is refused") {
  second_wait_refused = false;
  Served<TwoWriters> s;
  auto client = test::Client::connect(s.server.server_address());
  const std::string got = client.recv_all();
  CHECK(second_wait_refused);
  CHECK(got.size() == two_writers_size + 1);  // both writers' bytes, the refused one's after
  CHECK(got.substr(0, two_writers_size) == test::counting_bytes(two_writers_size));
}

namespace {

std::atomic<std::size_t> after_large_write{1};
std::atomic<std::size_t> after_small_write{0};

// Reports what wfile holds after a large write into an empty buffer, then after a small one.
struct LargeThenSmall : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    co_await wfile.write(std::string(socketserver::AsyncBufferedWriter::direct_write_size, 'L'));
    after_large_write = wfile.buffered();
    co_await wfile.write("small\n");
    after_small_write = wfile.buffered();
  }
};

}  // namespace

TEST_CASE("a large write that finds nothing buffered goes straight to the socket") {
  Served<LargeThenSmall> s;
  auto client = test::Client::connect(s.server.server_address());
  const std::string got = client.recv_all();
  CHECK(got == std::string(socketserver::AsyncBufferedWriter::direct_write_size, 'L') + "small\n");
  CHECK(after_large_write == 0);
  CHECK(after_small_write == 6);
}
