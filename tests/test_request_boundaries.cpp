// Request boundaries: rfile.begin_request()/end_request() put a request of several lines under
// read_timeout (not idle_timeout), let the drain finish it, and count it in the access line.
#include <catch2/catch.hpp>

#include <poll.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/threading_servers.hpp>

#include "log_capture.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

// A request is its first line, then header lines up to an empty one; the reply names how many
// headers came. Marked, the handler says "begun" once the request has begun (so the client knows
// the server is inside it); with `marked` false it neither marks nor says so.
template <bool marked>
struct Headers : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto first = rfile.readline()) {
      if constexpr (marked) {
        rfile.begin_request();
        wfile.write("begun\n");  // flushed before the next read waits
      }
      int headers = 0;
      while (auto line = rfile.readline()) {
        if (*line == "\n") break;
        ++headers;
      }
      if constexpr (marked) rfile.end_request();
      wfile.write("done " + std::to_string(headers) + "\n");
    }
  }
};

template <bool marked>
struct AsyncHeaders : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    while (auto first = co_await rfile.readline()) {
      if constexpr (marked) {
        rfile.begin_request();
        co_await wfile.write("begun\n");
      }
      int headers = 0;
      while (auto line = co_await rfile.readline()) {
        if (*line == "\n") break;
        ++headers;
      }
      if constexpr (marked) rfile.end_request();
      const std::string reply = "done " + std::to_string(headers) + "\n";
      co_await wfile.write(reply);
    }
  }
};

// A request line, then silence between header lines: with the request marked, read_timeout
// (0.3 s) ends it, not idle_timeout (30 s).
template <class Server>
void check_read_timeout_between_lines(bool marked) {
  Server server({"127.0.0.1", 0});
  if constexpr (requires { server.threads; }) server.threads = 1;
  server.limits.idle_timeout = socketserver::Seconds(30);
  server.limits.read_timeout = socketserver::Seconds(0.3);
  server.logger.level = socketserver::LogLevel::off;
  test::ServerThread serving(server);
  test::Client client = test::Client::connect(server.server_address());
  client.send("GET /\nHost: a\n");  // and then nothing
  const auto start = std::chrono::steady_clock::now();
  if (marked) {
    CHECK(client.recv_line() == "begun\n");
    CHECK(client.recv().empty());  // closed
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    REQUIRE(test::eventually([&] { return server.stats().timed_out == 1; }));
  } else {
    // Unmarked, the wait between header lines is an idle one: still open a second later, more
    // than three times read_timeout.
    pollfd ready{client.fd(), POLLIN, 0};
    CHECK(::poll(&ready, 1, 1000) == 0);
    CHECK(server.stats().active == 1);
    CHECK(server.stats().timed_out == 0);
  }
}

// The drain lets a request that has begun finish, however long its header lines take within
// drain_timeout; an unmarked one is cut at its first wait between lines.
template <class Server>
void check_drain_finishes_a_marked_request() {
  Server server({"127.0.0.1", 0});
  if constexpr (requires { server.threads; }) server.threads = 1;
  server.limits.drain_timeout = socketserver::Seconds(10);
  test::LogCapture log;
  log.attach(server.logger);
  std::optional<test::Serving> serving;
  serving.emplace(server);
  test::Client client = test::Client::connect(server.server_address());
  client.send("GET /\nA: 1\n\n");
  CHECK(client.recv_line() == "begun\n");
  CHECK(client.recv_line() == "done 1\n");
  client.send("GET /\nB: 2\n");  // a request in flight, waiting for its next header line
  CHECK(client.recv_line() == "begun\n");
  server.shutdown();
  REQUIRE(serving->returns_within(5000ms));
  auto closing = std::async(std::launch::async, [&] { server.server_close(); });
  // Not cut while it is in flight: the rest of the request comes, and is answered.
  CHECK(closing.wait_for(200ms) == std::future_status::timeout);
  client.send("C: 3\n\n");
  CHECK(client.recv_line() == "done 2\n");
  // Between requests now: the drain closes it.
  CHECK(client.recv().empty());
  REQUIRE(closing.wait_for(10s) == std::future_status::ready);
  closing.get();
  CHECK(server.stats().requests == 2);
  CHECK(log.contains(socketserver::LogCategory::access, "2 requests"));
}

}  // namespace

TEST_CASE("threading server: a marked request is held to read_timeout between its lines", "[requests][limits]") {
  check_read_timeout_between_lines<socketserver::ThreadingTCPServer<Headers<true>>>(true);
}

TEST_CASE("async server: a marked request is held to read_timeout between its lines", "[requests][limits]") {
  check_read_timeout_between_lines<socketserver::AsyncTCPServer<AsyncHeaders<true>>>(true);
}

TEST_CASE("threading server: an unmarked request has idle waits between its lines", "[requests][limits]") {
  check_read_timeout_between_lines<socketserver::ThreadingTCPServer<Headers<false>>>(false);
}

TEST_CASE("threading server: the drain lets a marked request finish, and the access line counts requests",
          "[requests][drain]") {
  check_drain_finishes_a_marked_request<socketserver::ThreadingTCPServer<Headers<true>>>();
}

TEST_CASE("async server: the drain lets a marked request finish, and the access line counts requests",
          "[requests][drain]") {
  check_drain_finishes_a_marked_request<socketserver::AsyncTCPServer<AsyncHeaders<true>>>();
}
