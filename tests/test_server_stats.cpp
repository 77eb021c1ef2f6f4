// stats() over real servers, blocking and async: accepted and active connections, the bytes
// exchanged (added when a connection closes), the durations histogram, handler errors; a full
// pool's refusals; and what a forking server's parent sees.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <numeric>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <socketserver/async/tcp_server.hpp>
#include <socketserver/forking_servers.hpp>
#include <socketserver/server_stats.hpp>
#include <socketserver/tcp_server.hpp>
#include <socketserver/thread_pool_mixin.hpp>
#include <socketserver/threading_servers.hpp>

#include "echo_handlers.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::ServerStats;

namespace {

using Echo = test::RaisingLineEcho;
using Threading = socketserver::ThreadingTCPServer<Echo>;
using Async = socketserver::AsyncTCPServer<test::AsyncRaisingLineEcho>;

template <class Server>
void configure(Server& server) {
  if constexpr (requires { server.threads; }) server.threads = 2;
  server.logger.sink = [](socketserver::LogLevel, socketserver::LogCategory, std::string_view) {};  // quiet
}

std::uint64_t closed_connections(const ServerStats& stats) {
  return std::accumulate(stats.durations.begin(), stats.durations.end(), std::uint64_t{0});
}

// Sends a line and reads its echo; adds what went each way.
void exchange(test::Client& client, const std::string& line, std::uint64_t& sent, std::uint64_t& received) {
  client.send(line);
  sent += line.size();
  const std::string reply = client.recv_line();
  CHECK(reply == line);
  received += reply.size();
}

}  // namespace

TEST_CASE("a new server's counters are all zero", "[stats]") {
  Threading server({"127.0.0.1", 0});
  const ServerStats stats = server.stats();
  CHECK(stats.accepted == 0);
  CHECK(stats.active == 0);
  CHECK(stats.refused == 0);
  CHECK(stats.timed_out == 0);
  CHECK(stats.limit_exceeded == 0);
  CHECK(stats.errors == 0);
  CHECK(stats.cut == 0);
  CHECK(stats.accept_errors == 0);
  CHECK(stats.bytes_in == 0);
  CHECK(stats.bytes_out == 0);
  CHECK(closed_connections(stats) == 0);
  CHECK(stats.durations.size() == ServerStats::duration_bounds.size() + 1);
  CHECK(std::is_sorted(ServerStats::duration_bounds.begin(), ServerStats::duration_bounds.end()));
}

TEMPLATE_TEST_CASE("stats() counts accepted and active connections", "[stats]", Threading, Async) {
  TestType server({"127.0.0.1", 0});
  configure(server);
  test::ServerThread serving(server);

  std::vector<test::Client> clients;
  std::uint64_t sent = 0, received = 0;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(test::Client::connect(server.server_address()));
    exchange(clients.back(), "hello\n", sent, received);  // accepted and served
  }
  CHECK(server.stats().accepted == 3);
  CHECK(server.stats().active == 3);
  CHECK(closed_connections(server.stats()) == 0);

  // A closing connection leaves `active` first; its bytes and duration are added after.
  clients[0].close();
  REQUIRE(test::eventually([&] { return closed_connections(server.stats()) == 1; }));
  CHECK(server.stats().active == 2);
  CHECK(server.stats().accepted == 3);

  clients[1].close();
  clients[2].close();
  REQUIRE(test::eventually([&] { return closed_connections(server.stats()) == 3; }));
  const ServerStats stats = server.stats();
  CHECK(stats.accepted == 3);
  CHECK(closed_connections(stats) == 3);
  CHECK(stats.errors == 0);
  CHECK(stats.refused == 0);
}

TEMPLATE_TEST_CASE("bytes_in and bytes_out match the bytes exchanged, once the connections close", "[stats]", Threading,
                   Async) {
  TestType server({"127.0.0.1", 0});
  configure(server);
  test::ServerThread serving(server);

  std::uint64_t sent = 0, received = 0;
  auto a = test::Client::connect(server.server_address());
  auto b = test::Client::connect(server.server_address());
  exchange(a, "abc\n", sent, received);
  exchange(b, std::string(5000, 'b') + "\n", sent, received);
  exchange(a, "defgh\n", sent, received);
  exchange(b, "x\n", sent, received);
  exchange(a, std::string(50000, 'a') + "\n", sent, received);  // many reads, under max_line
  // Counted when a connection closes: none has.
  CHECK(server.stats().bytes_in == 0);
  CHECK(server.stats().bytes_out == 0);

  a.close();
  b.close();
  REQUIRE(test::eventually([&] { return closed_connections(server.stats()) == 2; }));
  const ServerStats stats = server.stats();
  CHECK(stats.bytes_in == sent);
  CHECK(stats.bytes_out == received);
  CHECK(sent == received);
}

TEMPLATE_TEST_CASE("the durations histogram counts every closed connection once, by how long it lived", "[stats]",
                   Threading, Async) {
  TestType server({"127.0.0.1", 0});
  configure(server);
  test::ServerThread serving(server);

  std::uint64_t sent = 0, received = 0;
  for (int i = 0; i < 4; ++i) {
    auto client = test::Client::connect(server.server_address());
    exchange(client, "short\n", sent, received);
  }
  {
    auto client = test::Client::connect(server.server_address());
    exchange(client, "long\n", sent, received);
    std::this_thread::sleep_for(150ms);  // the connection's age: it lives past the 0.1 s bound
  }
  REQUIRE(test::eventually([&] { return closed_connections(server.stats()) == 5; }));
  const ServerStats stats = server.stats();
  CHECK(stats.active == 0);
  CHECK(stats.accepted == 5);
  // The connection that lived 0.15 s or more sits in a bucket above 0.1 s.
  const auto above_100ms = std::accumulate(stats.durations.begin() + 4, stats.durations.end(), std::uint64_t{0});
  CHECK(ServerStats::duration_bounds[3] == 0.1);
  CHECK(above_100ms >= 1);
}

TEMPLATE_TEST_CASE("errors counts a handler that throws", "[stats]", Threading, Async) {
  TestType server({"127.0.0.1", 0});
  configure(server);
  test::ServerThread serving(server);

  std::uint64_t sent = 0, received = 0;
  auto good = test::Client::connect(server.server_address());
  exchange(good, "fine\n", sent, received);
  auto bad = test::Client::connect(server.server_address());
  bad.send("raise\n");
  CHECK(bad.recv_all().empty());  // closed, unanswered
  REQUIRE(test::eventually([&] { return server.stats().errors == 1; }));
  good.close();
  REQUIRE(test::eventually([&] { return closed_connections(server.stats()) == 2; }));
  const ServerStats stats = server.stats();
  CHECK(stats.errors == 1);
  CHECK(stats.timed_out == 0);
  CHECK(stats.limit_exceeded == 0);
  CHECK(stats.cut == 0);
  CHECK(stats.accepted == 2);
  CHECK(closed_connections(stats) == 2);
  CHECK(stats.bytes_in == sent + 6);
  CHECK(stats.bytes_out == received);
}

TEST_CASE("refused counts the requests a full ThreadPoolMixIn refuses", "[stats][pool]") {
  socketserver::ThreadPoolMixIn<socketserver::TCPServer<Echo>> server({"127.0.0.1", 0});
  configure(server);
  server.max_workers = 1;
  server.max_queue = 0;
  server.overload = decltype(server)::Overload::refuse;
  test::ServerThread serving(server);

  std::uint64_t sent = 0, received = 0;
  auto busy = test::Client::connect(server.server_address());
  exchange(busy, "holds the only worker\n", sent, received);
  auto refused = test::Client::connect(server.server_address());
  CHECK(refused.recv_all().empty());
  REQUIRE(test::eventually([&] { return server.stats().refused == 1; }));
  CHECK(server.refused() == 1);
  CHECK(server.stats().accepted == 1);  // a refused request is not counted as accepted too
  exchange(busy, "still served\n", sent, received);
}

TEST_CASE("a forking server's parent counts connections, not their bytes", "[stats][forking]") {
  socketserver::ForkingTCPServer<Echo> server({"127.0.0.1", 0});
  configure(server);
  test::ServerThread serving(server);

  std::uint64_t sent = 0, received = 0;
  for (int i = 0; i < 2; ++i) {
    auto client = test::Client::connect(server.server_address());
    exchange(client, "forked\n", sent, received);
    client.shutdown_write();  // the child holds a copy of this descriptor: close() alone is not the end
    CHECK(client.recv_all().empty());
  }
  REQUIRE(test::eventually([&] { return closed_connections(server.stats()) == 2; }));  // reaped
  const ServerStats stats = server.stats();
  CHECK(stats.accepted == 2);
  CHECK(closed_connections(stats) == 2);
  CHECK(stats.bytes_in == 0);
  CHECK(stats.bytes_out == 0);
}
