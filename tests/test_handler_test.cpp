// HandlerTest: a blocking handler driven over a MemoryPipe, without a network: the echo round
// trip, exceptions out of wait(), the hook order, the options, end of stream after the handler,
// timeouts and backpressure.
#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>

#include <socketserver/stream_request_handler.hpp>
#include <socketserver/tcp_server.hpp>
#include <socketserver/testing/handler.hpp>

#include "echo_handlers.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;

using test::error_of;
using test::UpperEcho;

TEST_CASE("HandlerTest drives an uppercase-echo handler", "[testing][handler_test]") {
  socketserver::HandlerTest<UpperEcho> test({.timeout = 5s});
  test.send("hello\n");
  CHECK(test.readline() == "HELLO\n");
  test.send("two\nlines\n");
  CHECK(test.readline() == "TWO\n");
  CHECK(test.readline() == "LINES\n");
  test.send("no newline");
  test.shutdown_write();
  CHECK(test.readline() == "NO NEWLINE");
  CHECK(test.readline() == std::nullopt);
  test.wait();
  CHECK(test.done());
}

namespace {

std::string hooks;  // the hooks Throws ran, in order

struct Throws : socketserver::StreamRequestHandler {
  void setup() override {
    hooks += "setup ";
    StreamRequestHandler::setup();
  }
  void handle() override {
    hooks += "handle ";
    const auto line = rfile.readline();
    wfile.write("got " + line.value_or("nothing"));
    throw std::runtime_error("bad request: " + line.value_or(""));
  }
  void finish() override {
    hooks += "finish";
    StreamRequestHandler::finish();  // flushes the reply written before the throw
  }
};

}  // namespace

TEST_CASE("HandlerTest: what handle() throws comes out of wait(), after finish()", "[testing][handler_test]") {
  hooks.clear();
  socketserver::HandlerTest<Throws> test({.timeout = 5s});
  test.send("oops\n");
  CHECK(test.read_all() == "got oops\n");  // finish() flushed, then the connection ended
  CHECK_THROWS_WITH(test.wait(), "bad request: oops\n");
  CHECK_THROWS_AS(test.wait(), std::runtime_error);  // on every call
  CHECK(hooks == "setup handle finish");
}

namespace {

struct ThrowsOnConstruction : socketserver::StreamRequestHandler {
  ThrowsOnConstruction() { throw std::logic_error("no handler"); }
};

}  // namespace

TEST_CASE("HandlerTest: a handler whose constructor throws ends the connection and wait() rethrows",
          "[testing][handler_test]") {
  socketserver::HandlerTest<ThrowsOnConstruction> test({.timeout = 5s});
  CHECK(test.readline() == std::nullopt);
  CHECK_THROWS_AS(test.wait(), std::logic_error);
}

namespace {

// Writes what it sees of the request, the client address and the server, then returns.
struct Describe : socketserver::StreamRequestHandler {
  void handle() override {
    wfile.write(client_address.to_string() + "\n");
    wfile.write(server == nullptr ? "no server\n" : "a server\n");
    wfile.write(request->fileno() == -1 ? "no descriptor\n" : "a descriptor\n");
  }
};

}  // namespace

TEST_CASE("HandlerTest: the handler gets the options' client_address and server, or the documented defaults",
          "[testing][handler_test]") {
  SECTION("defaults") {
    socketserver::HandlerTest<Describe> test;
    CHECK(test.read_all() == "127.0.0.1:54321\nno server\nno descriptor\n");
    test.wait();
  }
  SECTION("given") {
    socketserver::TCPServer<Describe> server({"127.0.0.1", 0});
    socketserver::HandlerTest<Describe> test({.server = &server, .client_address = {"::1", 4242}, .timeout = 5s});
    CHECK(test.read_all() == "[::1]:4242\na server\nno descriptor\n");
    test.wait();
  }
}

namespace {

struct Greet : socketserver::StreamRequestHandler {
  void handle() override { wfile.write("bye\n"); }
};

}  // namespace

TEST_CASE("HandlerTest: when the handler returns, the client reads its output, then end of stream, and sends fail",
          "[testing][handler_test]") {
  socketserver::HandlerTest<Greet> test({.timeout = 5s});
  CHECK(test.readline() == "bye\n");
  CHECK(test.readline() == std::nullopt);
  test.wait();
  CHECK(error_of([&] { test.send("anyone?\n"); }) == std::errc::broken_pipe);
}

TEST_CASE("HandlerTest: readline() and wait() time out while the handler waits for input", "[testing][handler_test]") {
  socketserver::HandlerTest<UpperEcho> test({.timeout = 100ms});
  const auto start = std::chrono::steady_clock::now();
  CHECK(error_of([&] { test.readline(); }) == std::errc::timed_out);
  CHECK(error_of([&] { test.wait(); }) == std::errc::timed_out);
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 200ms);
  CHECK(waited < 5s);
  CHECK_FALSE(test.done());
  // The destructor closes the client end: the handler reads end of stream and returns.
}

namespace {

// Writes 1 MiB before it reads anything: it blocks while its client does not read.
struct Talker : socketserver::StreamRequestHandler {
  void handle() override {
    wfile.write(std::string(std::size_t{1} << 20, 'x'));
    while (rfile.readline()) {
    }
  }
};

}  // namespace

TEST_CASE("HandlerTest: backpressure: a client that sends without reading times out instead of hanging",
          "[testing][handler_test]") {
  socketserver::HandlerTest<Talker> test({.capacity = 1024, .timeout = 100ms});
  // Both sides write and neither reads: the handler waits for room, and so does send().
  CHECK(error_of([&] { test.send(std::string(4096, 'y')); }) == std::errc::timed_out);
  CHECK(test.client().available() == 1024);
  CHECK_FALSE(test.done());
}

TEST_CASE("HandlerTest: the handler's output arrives whole through a small capacity", "[testing][handler_test]") {
  socketserver::HandlerTest<Talker> test({.capacity = 1024, .timeout = 5s});
  CHECK(test.read(std::size_t{1} << 20) == std::string(std::size_t{1} << 20, 'x'));
  test.shutdown_write();
  CHECK(test.read_all().empty());
  test.wait();
}
