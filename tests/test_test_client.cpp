// TestClient: a blocking client against real servers on loopback (TCP over IPv4 and IPv6, a
// host name, a Unix socket, an async server), with every wait bounded by its timeout.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <string>
#include <system_error>
#include <thread>

#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/tcp_server.hpp>
#include <socketserver/testing/client.hpp>
#include <socketserver/threading_servers.hpp>

#include "echo_handlers.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::TestClient;

namespace {

using test::bound;
using Upper = test::UpperEcho;

struct AsyncUpper : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    std::string upper;
    while (auto line = co_await rfile.readline()) {
      upper.assign(*line);
      test::to_upper(upper);
      co_await wfile.write(upper);
    }
  }
};

// A line, two pipelined, a partial line ended by shutdown_write(), then end of stream.
void check_upper_echo(TestClient& client) {
  CHECK(client.fileno() >= 0);
  client.send("hello\n");
  CHECK(client.readline() == "HELLO\n");
  client.send("one\ntwo\n");
  CHECK(client.read(8) == "ONE\nTWO\n");
  client.send("rest");
  client.shutdown_write();
  CHECK(client.read_all() == "REST");
  CHECK(client.readline() == std::nullopt);
  client.close();
  CHECK(client.fileno() == -1);
}

}  // namespace

TEST_CASE("TestClient talks to a ThreadingTCPServer over IPv4 and IPv6", "[testing][test_client][tcp]") {
  const std::string host = GENERATE("127.0.0.1", "::1");
  socketserver::ThreadingTCPServer<Upper> server({host, 0});
  test::ServerThread serving(server);
  auto client = TestClient::connect(server.server_address(), bound);
  CHECK(client.timeout() == bound);
  check_upper_echo(client);
}

TEST_CASE("TestClient connects to a host name, trying its addresses in turn", "[testing][test_client][tcp]") {
  socketserver::ThreadingTCPServer<Upper> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  auto client = TestClient::connect({"localhost", server.server_address().port()}, bound);
  check_upper_echo(client);
}

TEST_CASE("TestClient talks to a ThreadingUnixStreamServer", "[testing][test_client][unix]") {
  test::TempDir dir;
  socketserver::ThreadingUnixStreamServer<Upper> server(dir.path("server.sock"));
  test::ServerThread serving(server);
  auto client = TestClient::connect(server.server_address(), bound);
  check_upper_echo(client);
}

TEST_CASE("TestClient moves with its connection", "[testing][test_client]") {
  socketserver::ThreadingTCPServer<Upper> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  auto first = TestClient::connect(server.server_address(), bound);
  first.send("a\nb\n");
  CHECK(first.readline() == "A\n");  // "B\n" may already sit in the reader's buffer
  TestClient moved = std::move(first);
  CHECK(moved.readline() == "B\n");
}

namespace {

// Reads every line and never answers.
struct Silent : socketserver::StreamRequestHandler {
  void handle() override {
    while (rfile.readline()) {
    }
  }
};

}  // namespace

TEST_CASE("TestClient: readline() throws timed_out within the timeout when the server never answers",
          "[testing][test_client][tcp]") {
  socketserver::ThreadingTCPServer<Silent> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  auto client = TestClient::connect(server.server_address(), 200ms);
  client.send("anyone there?\n");
  const auto start = std::chrono::steady_clock::now();
  CHECK(test::error_of([&] { client.readline(); }) == std::errc::timed_out);
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 200ms);
  CHECK(waited < bound);
  CHECK(test::error_of([&] { client.read(1); }) == std::errc::timed_out);
  client.close();  // the handler reads end of stream, so server_close() need not wait long
}

TEST_CASE("TestClient::connect names the step and the address when nothing listens", "[testing][test_client]") {
  std::string what;
  SECTION("a Unix path without a server") {
    test::TempDir dir;
    const auto address = socketserver::Address::from_path(dir.path("nobody.sock"));
    CHECK(test::error_of([&] { TestClient::connect(address, bound); }, &what) == std::errc::no_such_file_or_directory);
    CHECK_THAT(what, Catch::Contains("connect " + address.to_string()));
  }
  SECTION("a closed TCP port") {
    socketserver::TCPServer<Upper> server({"127.0.0.1", 0});
    const auto address = server.server_address();
    server.server_close();
    CHECK(test::error_of([&] { TestClient::connect(address, bound); }, &what) == std::errc::connection_refused);
    CHECK_THAT(what, Catch::Contains("connect " + address.to_string()));
  }
}

TEST_CASE("test_client.hpp's example: an async handler against an AsyncTCPServer on port 0",
          "[testing][test_client][async]") {
  // As in the header's comment and docs/testing.md, word for word.
  socketserver::AsyncTCPServer<AsyncUpper> server({"127.0.0.1", 0});
  std::thread serving([&] { server.serve_forever(); });
  auto client = socketserver::TestClient::connect(server.server_address(), 2s);
  client.send("hello\n");
  CHECK(client.readline() == "HELLO\n");
  client.shutdown_write();
  CHECK(client.read_all().empty());  // the handler saw end of stream and returned
  server.shutdown();
  serving.join();
  server.server_close();
}

TEST_CASE("test_client.hpp's example: a ThreadingTCPServer on port 0", "[testing][test_client][tcp]") {
  socketserver::ThreadingTCPServer<Upper> server({"127.0.0.1", 0});  // port 0: a free port
  std::thread serving([&] { server.serve_forever(); });
  auto client = socketserver::TestClient::connect(server.server_address());
  client.send("hello\n");
  CHECK(client.readline() == "HELLO\n");
  client.close();
  server.shutdown();
  serving.join();
  server.server_close();
}
