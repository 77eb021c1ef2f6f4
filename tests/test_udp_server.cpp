// UDPServer: binding, the echo round trip, replies through the request's socket, truncation to
// max_packet_size, IPv6, and the SO_REUSEADDR default.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#include <socketserver/access_list.hpp>
#include <socketserver/base_request_handler.hpp>
#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/detail/file_descriptor.hpp>
#include <socketserver/threading_servers.hpp>
#include <socketserver/udp_server.hpp>

#include "log_capture.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::Address;

namespace {

struct Echo : socketserver::DatagramRequestHandler {
  void handle() override { wfile.write(rfile.read()); }
};

// Python's `data, sock = self.request; sock.sendto(data, self.client_address)`.
struct RawEcho : socketserver::BasicRequestHandler<socketserver::DatagramRequest> {
  void handle() override { request->socket().sendto(request->packet(), client_address); }
};

}  // namespace

TEST_CASE("UDPServer echoes a datagram for each of three clients, then closes", "[udp]") {
  // CPython's test_UDPServer: bound name, serve in a thread, three clients, shutdown, close.
  socketserver::UDPServer<Echo> server({"127.0.0.1", 0});
  CHECK(server.server_address().port() != 0);
  CHECK(server.server_address() == test::socket_name(server.fileno()));
  {
    test::ServerThread serving(server);
    for (int i = 0; i < 3; ++i) {
      auto client = test::Client::datagram(server.server_address());
      client.send("datagram " + std::to_string(i) + "\n");
      CHECK(client.recv() == "datagram " + std::to_string(i) + "\n");
    }
    serving.stop();
  }
  server.server_close();
  CHECK(server.fileno() == -1);
}

TEST_CASE("a raw datagram handler replies through request->socket().sendto()", "[udp][handler]") {
  socketserver::UDPServer<RawEcho> server({"127.0.0.1", 0});
  auto client = test::Client::datagram(server.server_address());
  client.send("raw packet");
  server.handle_request();
  CHECK(client.recv() == "raw packet");
}

TEST_CASE("a datagram longer than max_packet_size is truncated", "[udp]") {
  socketserver::UDPServer<RawEcho> server({"127.0.0.1", 0});
  CHECK(server.max_packet_size == 8192);  // Python's default
  server.max_packet_size = 4;
  auto client = test::Client::datagram(server.server_address());
  client.send("abcdefgh");
  server.handle_request();
  CHECK(client.recv() == "abcd");
  // The rest of that datagram is gone, not read as a second request.
  client.send("xy");
  server.handle_request();
  CHECK(client.recv() == "xy");
}

TEST_CASE("UDPServer serves IPv6 on ::1", "[udp]") {
  std::optional<socketserver::UDPServer<Echo>> server;
  try {
    server.emplace(Address("::1", 0));
  } catch (const std::system_error& e) {
    WARN("skipped: cannot bind ::1: " << e.what());
    return;
  }
  CHECK(server->server_address().host() == "::1");
  CHECK(server->server_address() == test::socket_name(server->fileno()));
  test::ServerThread serving(*server);
  auto client = test::Client::datagram(server->server_address());
  client.send("over IPv6");
  CHECK(client.recv() == "over IPv6");
}

TEST_CASE("allow_reuse_address defaults to false, so a second server cannot take the port", "[udp]") {
  socketserver::UDPServer<Echo> server({"127.0.0.1", 0});
  CHECK_FALSE(server.allow_reuse_address);
  int on = -1;
  socklen_t length = sizeof on;
  REQUIRE(::getsockopt(server.fileno(), SOL_SOCKET, SO_REUSEADDR, &on, &length) == 0);
  CHECK(on == 0);
  CHECK_THROWS_AS(socketserver::UDPServer<Echo>(server.server_address()), std::system_error);
}

TEST_CASE("the access list drops datagrams from denied peers", "[udp][access_list]") {
  socketserver::UDPServer<Echo> server({"127.0.0.1", 0});
  server.logger.level = socketserver::LogLevel::off;
  server.set_access_list(socketserver::AccessList({}, {"127.0.0.3"}));
  const socketserver::detail::FileDescriptor denied(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in own{};
  own.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.3", &own.sin_addr);
  REQUIRE(::bind(denied.get(), reinterpret_cast<const sockaddr*>(&own), sizeof own) == 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server.server_address().port());
  ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  REQUIRE(::sendto(denied.get(), "denied", 6, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 6);
  server.handle_request();  // the denied datagram: dropped unanswered
  auto allowed = test::Client::datagram(server.server_address());
  allowed.send("allowed\n");
  server.handle_request();
  CHECK(allowed.recv() == "allowed\n");
  char reply[16];
  CHECK(::recv(denied.get(), reply, sizeof reply, MSG_DONTWAIT) < 0);  // nothing came back
  CHECK(server.stats().denied == 1);
}

namespace {

// Holds every request until the gate opens, counting how many are held at once.
std::mutex gate_mutex;
std::condition_variable gate_changed;
bool gate_open = false;
std::atomic<int> held{0};
std::atomic<int> most_held{0};

struct Held : socketserver::DatagramRequestHandler {
  void handle() override {
    const int now = ++held;
    int most = most_held.load();
    while (now > most && !most_held.compare_exchange_weak(most, now)) {
    }
    {
      std::unique_lock lock(gate_mutex);
      gate_changed.wait_for(lock, test::bound, [] { return gate_open; });
    }
    --held;
    wfile.write(rfile.read());
  }
};

}  // namespace

TEST_CASE("ThreadingUDPServer keeps to max_threads under a flood: the rest is dropped, counted and logged",
          "[udp][threading]") {
  gate_open = false;
  most_held = 0;
  socketserver::ThreadingUDPServer<Held> server({"127.0.0.1", 0});
  CHECK(server.max_threads > 0);  // bounded by default
  server.max_threads = 4;
  test::LogCapture log;
  log.attach(server.logger, socketserver::LogLevel::warning);
  test::ServerThread serving(server);
  auto client = test::Client::datagram(server.server_address());
  constexpr int flood = 100;  // small datagrams: the socket's receive buffer holds them all
  for (int i = 0; i < flood; ++i) client.send("flood " + std::to_string(i));
  REQUIRE(test::eventually([&] { return server.stats().datagrams.received == flood; }));
  CHECK(server.stats().datagrams.dropped == flood - 4);
  CHECK(most_held.load() <= 4);
  CHECK(server.thread_count() <= 4);
  const auto drops = log.of(socketserver::LogCategory::security);
  CHECK(!drops.empty());
  CHECK(drops.size() <= 3);  // at most a line a second, however many are dropped
  {
    const std::lock_guard lock(gate_mutex);
    gate_open = true;
  }
  gate_changed.notify_all();
  for (int i = 0; i < 4; ++i) CHECK(client.recv().starts_with("flood "));  // the four held ones
  client.send("after the flood");
  CHECK(client.recv() == "after the flood");  // threads are free again
  CHECK(most_held.load() <= 4);
}
