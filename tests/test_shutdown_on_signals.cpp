// ShutdownOnSignals: SIGINT and SIGTERM (or the signals given) stop serve_forever() on the
// serving thread, signal() says which, on_signal runs there, and the signals get their default
// action back after the first one. No test delivers a second signal: its default action would
// end the test program.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <socketserver/async/tcp_server.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/shutdown_on_signals.hpp>
#include <socketserver/tcp_server.hpp>
#include <socketserver/threading_servers.hpp>

#include "echo_handlers.hpp"
#include "log_capture.hpp"
#include "test_support.hpp"

using socketserver::LogLevel;

namespace {

using test::bound;
using Plain = socketserver::TCPServer<test::LineEcho>;
using Threading = socketserver::ThreadingTCPServer<test::LineEcho>;
using Async = socketserver::AsyncTCPServer<test::AsyncLineEcho>;

// The current disposition of a signal.
void (*disposition(int signo))(int) {
  struct sigaction action {};
  if (::sigaction(signo, nullptr, &action) != 0) test::fail("sigaction");
  return action.sa_handler;
}

}  // namespace

TEMPLATE_TEST_CASE("SIGINT or SIGTERM stops serve_forever(), signal() says which, on_signal runs on the serving thread",
                   "[signals]", Plain, Threading, Async) {
  const int signo = GENERATE(SIGINT, SIGTERM);
  test::LogCapture lines;
  TestType server({"127.0.0.1", 0});
  server.logger.sink = lines.sink();
  socketserver::ShutdownOnSignals stop(server);
  CHECK(stop.signal() == 0);
  std::thread::id callback_thread;
  int callback_signal = 0;
  int callbacks = 0;
  stop.on_signal = [&](int got) {
    ++callbacks;
    callback_signal = got;
    callback_thread = std::this_thread::get_id();
  };
  // While the helper lives, the signals are caught.
  CHECK(disposition(SIGINT) != SIG_DFL);
  CHECK(disposition(SIGTERM) != SIG_DFL);

  test::Serving serving(server);
  {
    auto client = test::Client::connect(server.server_address());  // it serves until the signal
    client.send("before\n");
    CHECK(client.recv_line() == "before\n");
  }
  REQUIRE(::kill(::getpid(), signo) == 0);
  REQUIRE(serving.returns_within(bound));
  CHECK(stop.signal() == signo);
  CHECK(callbacks == 1);
  CHECK(callback_signal == signo);
  CHECK(callback_thread == serving.thread_id());
  CHECK(lines.strings() ==
        std::vector<std::string>{"server warning: signal " + std::to_string(signo) + " received: shutting down"});

  // After the first signal both have their default action again: a second one would end the
  // process (not tried here).
  CHECK(disposition(SIGINT) == SIG_DFL);
  CHECK(disposition(SIGTERM) == SIG_DFL);
  server.server_close();
}

TEST_CASE("a signal that comes before serve_forever() stops it as soon as it runs", "[signals]") {
  Threading server({"127.0.0.1", 0});
  server.logger.level = LogLevel::off;
  socketserver::ShutdownOnSignals stop(server);
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);  // asio keeps it until the serving thread looks
  test::Serving serving(server);
  REQUIRE(serving.returns_within(bound));
  CHECK(stop.signal() == SIGTERM);
  server.server_close();
}

TEST_CASE("the signals given replace SIGINT and SIGTERM", "[signals]") {
  Threading server({"127.0.0.1", 0});
  server.logger.level = LogLevel::off;
  const auto sigterm_before = disposition(SIGTERM);
  const auto sigint_before = disposition(SIGINT);
  socketserver::ShutdownOnSignals stop(server, {SIGUSR1});
  CHECK(disposition(SIGUSR1) != SIG_DFL);
  CHECK(disposition(SIGTERM) == sigterm_before);  // not taken
  CHECK(disposition(SIGINT) == sigint_before);

  test::Serving serving(server);
  REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
  REQUIRE(serving.returns_within(bound));
  CHECK(stop.signal() == SIGUSR1);
  CHECK(disposition(SIGUSR1) == SIG_DFL);
  CHECK(disposition(SIGTERM) == sigterm_before);
  server.server_close();
}

TEST_CASE("without a signal the server serves on, and shutdown() still stops it", "[signals]") {
  Threading server({"127.0.0.1", 0});
  socketserver::ShutdownOnSignals stop(server);
  bool called = false;
  stop.on_signal = [&](int) { called = true; };
  {
    test::Serving serving(server);
    auto client = test::Client::connect(server.server_address());
    client.send("hello\n");
    CHECK(client.recv_line() == "hello\n");
    client.close();
    server.shutdown();
    REQUIRE(serving.returns_within(bound));
  }
  CHECK(stop.signal() == 0);
  CHECK_FALSE(called);
  server.server_close();
}
