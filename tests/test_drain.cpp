// The drain at server_close() and silent connections: a connection that has sent nothing is not
// a request in flight, so it gets limits.silent_grace (from its accept), not all of
// drain_timeout, while a request that has begun still gets drain_timeout.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <string>

#include <socketserver/async/tcp_server.hpp>
#include <socketserver/thread_pool_mixin.hpp>
#include <socketserver/threading_servers.hpp>

#include "echo_handlers.hpp"
#include "log_capture.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

template <class Server>
void configure(Server& server) {
  if constexpr (requires { server.threads; }) server.threads = 2;
  server.limits.drain_timeout = 10s;
  server.limits.silent_grace = 0.4s;
}

}  // namespace

TEMPLATE_TEST_CASE("a silent connection ends the drain after silent_grace, not drain_timeout", "[drain]",
                   socketserver::ThreadingTCPServer<test::LineEcho>,
                   socketserver::ThreadPoolMixIn<socketserver::TCPServer<test::LineEcho>>,
                   socketserver::AsyncTCPServer<test::AsyncLineEcho>) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  log.attach(server.logger);
  test::Serving serving(server);
  auto silent = test::Client::connect(server.server_address());  // a port scanner: connects, waits
  REQUIRE(test::eventually([&] { return server.stats().active == 1; }));
  const auto accepted = Clock::now();
  server.shutdown();
  REQUIRE(serving.returns_within(5s));
  server.server_close();  // begins before the connection is silent_grace old
  const double took = seconds_since(accepted);
  CHECK(took >= 0.35);  // its grace counts from its accept, so it was not closed at once
  CHECK(took < 3.0);    // and not held for drain_timeout either
  CHECK(silent.recv_all().empty());
  const auto stats = server.stats();
  CHECK(stats.cut == 0);
  CHECK(stats.errors == 0);
  CHECK(log.contains(socketserver::LogCategory::access, "closed by server_close(): it had sent nothing"));
}

TEMPLATE_TEST_CASE("a request in flight still gets drain_timeout while a silent one is closed", "[drain]",
                   socketserver::ThreadingTCPServer<test::LineEcho>,
                   socketserver::AsyncTCPServer<test::AsyncLineEcho>) {
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.logger.level = socketserver::LogLevel::off;
  test::Serving serving(server);
  auto silent = test::Client::connect(server.server_address());
  auto busy = test::Client::connect(server.server_address());
  busy.send("half a li");  // its request has begun
  REQUIRE(test::eventually([&] { return server.stats().active == 2; }));
  server.shutdown();
  REQUIRE(serving.returns_within(5s));
  auto finish = std::async(std::launch::async, [&] {
    const bool silent_closed = silent.recv_all().empty();  // within silent_grace
    busy.send("ne\n");                                     // then the busy one finishes its line
    return silent_closed && busy.recv_line() == "half a line\n";
  });
  const auto start = Clock::now();
  server.server_close();
  REQUIRE(test::ready(finish));
  CHECK(finish.get());
  CHECK(seconds_since(start) < 5.0);
  CHECK(server.stats().cut == 0);
}

TEST_CASE("silent_grace off: a silent connection waits out drain_timeout", "[drain]") {
  socketserver::ThreadingTCPServer<test::LineEcho> server({"127.0.0.1", 0});
  server.limits.drain_timeout = 0.5s;
  server.limits.silent_grace = std::nullopt;
  server.logger.level = socketserver::LogLevel::off;
  test::Serving serving(server);
  auto silent = test::Client::connect(server.server_address());
  REQUIRE(test::eventually([&] { return server.stats().active == 1; }));
  server.shutdown();
  REQUIRE(serving.returns_within(5s));
  const auto start = Clock::now();
  server.server_close();
  CHECK(seconds_since(start) >= 0.45);
  CHECK(server.stats().cut == 1);
}
