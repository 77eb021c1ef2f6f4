// Connection handles and groups: other threads and loops send to a connection, cut a slow
// consumer at its cap while the others get every line, and find a closed connection harmless.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/connection_group.hpp>
#include <socketserver/connection_handle.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/thread_pool_mixin.hpp>
#include <socketserver/threading_servers.hpp>

#include "log_capture.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

// The room the handlers below share, and the handle of the last connection to join it.
socketserver::ConnectionGroup* room = nullptr;
std::mutex last_mutex;
socketserver::ConnectionHandle last_joined;

void shrink_send_buffer(int fd) {
  const int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
}

void joined(const socketserver::ConnectionHandle& me) {
  room->add(me);
  const std::lock_guard lock(last_mutex);
  last_joined = me;
}

// Every line a member sends goes to every other member, but three: "slow" shrinks the member's
// send buffer (so that a peer that does not read backs its queue up at once, not after megabytes
// of kernel buffers), "echo" comes back through wfile, "bye" ends the connection.
struct Fanout : socketserver::StreamRequestHandler {
  void handle() override {
    joined(connection_handle());
    while (auto line = rfile.readline()) {
      if (*line == "bye\n") return;
      if (*line == "echo\n") {
        wfile.write(*line);
      } else if (*line == "slow\n") {
        shrink_send_buffer(request->fileno());
      } else {
        room->broadcast(*line, connection_handle());
      }
    }
  }
};

struct AsyncFanout : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    joined(connection_handle());
    while (auto line = co_await rfile.readline()) {
      if (*line == "bye\n") co_return;
      if (*line == "echo\n") {
        co_await wfile.write(std::string_view());  // an empty write holds no buffer (a leak once)
        co_await wfile.write(*line);
      } else if (*line == "slow\n") {
        shrink_send_buffer(request->fileno());
      } else {
        room->broadcast(*line, connection_handle());
      }
    }
  }
};

// A client whose receive buffer is small and that does not read, whose connection's send
// buffer is small too.
test::Client slow_consumer(const socketserver::Address& address) {
  test::Client client(test::Client::unconnected());
  const int small = 4096;
  ::setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  client.connect_to(address);
  client.send("slow\n");
  return client;
}

// Reads every member's socket at once until each has `expected` bytes or ends; what each got.
std::vector<std::string> read_all(std::vector<test::Client>& members, std::size_t expected) {
  std::vector<std::string> got(members.size());
  std::vector<bool> done(members.size(), false);
  std::size_t open = members.size();
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  std::vector<pollfd> fds;
  std::vector<std::size_t> index;
  char buffer[65536];
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    fds.clear();
    index.clear();
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (done[i]) continue;
      fds.push_back({members[i].fd(), POLLIN, 0});
      index.push_back(i);
    }
    if (::poll(fds.data(), fds.size(), 1000) <= 0) continue;
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      const std::size_t i = index[k];
      const ssize_t n = ::recv(fds[k].fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) got[i].append(buffer, static_cast<std::size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN) || got[i].size() >= expected) {
        done[i] = true;
        --open;
      }
    }
  }
  return got;
}

std::string numbered(std::size_t i) {
  std::string line = "line " + std::to_string(i) + " ";
  line.resize(63, 'x');
  return line + "\n";
}

// `members` clients and one slow consumer join; one of the members sends `lines` lines. Every
// other member gets all of them, whole and in order; the slow consumer is cut at the cap, once
// more than max_queued_bytes (128 KiB) and its buffers hold waits for it.
template <class Server>
void check_fanout_with_slow_consumer(std::size_t members, std::size_t lines) {
  REQUIRE(test::raise_open_file_limit(4 * members + 64));
  socketserver::ConnectionGroup group;
  room = &group;
  Server server({"127.0.0.1", 0});
  if constexpr (requires { server.threads; }) server.threads = 2;
  if constexpr (requires { server.max_workers; }) server.max_workers = members + 1;  // one per connection
  // Room for what one member's handler may broadcast before its loop writes (a 64 KiB read);
  // the slow consumer's buffers hold far less than a burst.
  server.limits.max_queued_bytes = 128 * 1024;
  test::LogCapture log;
  log.attach(server.logger);
  test::ServerThread serving(server);

  std::vector<test::Client> clients;
  clients.reserve(members);
  for (std::size_t i = 0; i < members; ++i) clients.push_back(test::Client::connect(server.server_address()));
  test::Client slow = slow_consumer(server.server_address());
  REQUIRE(test::eventually([&] { return group.size() == members + 1; }));

  // The sender goes a round at a time, each round read by every member before the next: a
  // member that reads keeps at most a round queued, the slow consumer's queue only grows.
  constexpr std::size_t rounds = 16;
  std::vector<test::Client> readers;
  for (std::size_t i = 1; i < members; ++i) readers.push_back(std::move(clients[i]));
  std::string burst;
  for (std::size_t round = 0; round < rounds; ++round) {
    std::string part;
    for (std::size_t i = round * lines / rounds; i < (round + 1) * lines / rounds; ++i) part += numbered(i);
    burst += part;
    clients[0].send(part);
    const std::vector<std::string> got = read_all(readers, part.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO("round " << round << ": member " << i << " got " << got[i].size() << " of " << part.size() << " bytes");
      REQUIRE(got[i] == part);  // all, whole, in order
    }
  }

  // The slow consumer was cut: its socket ends after whatever fitted in the buffers.
  REQUIRE(test::eventually([&] { return group.size() == members; }));
  CHECK(server.stats().queues.disconnected == 1);
  std::string prefix;
  for (std::string part = slow.recv(); !part.empty(); part = slow.recv()) prefix += part;
  CHECK(prefix.size() < burst.size());
  CHECK(burst.compare(0, prefix.size(), prefix) == 0);  // no message torn or reordered before the cut
  CHECK(log.contains(socketserver::LogCategory::security, "a slow consumer"));
  CHECK(test::eventually([&] { return log.contains(socketserver::LogCategory::access, "send queue over"); }));
  // The broadcasts count in the members' bytes out, as wfile's writes do, once they close.
  readers.clear();
  clients.clear();
  REQUIRE(test::eventually([&] { return server.stats().active == 0; }));
  CHECK(server.stats().bytes_out >= (members - 1) * burst.size());
}

}  // namespace

TEST_CASE("threading server: a broadcast reaches 100 members in order while a slow consumer is cut", "[handle][slow]") {
  check_fanout_with_slow_consumer<socketserver::ThreadingTCPServer<Fanout>>(100, 4000);
}

TEST_CASE("async server, two loops: a broadcast reaches 1,000 members in order while a slow consumer is cut",
          "[handle][slow]") {
  check_fanout_with_slow_consumer<socketserver::AsyncTCPServer<AsyncFanout>>(1000, 4000);
}

TEST_CASE("thread pool server: a broadcast reaches every member", "[handle]") {
  check_fanout_with_slow_consumer<socketserver::ThreadPoolMixIn<socketserver::TCPServer<Fanout>>>(8, 4000);
}

namespace {

template <class Server>
void check_handle_after_close() {
  socketserver::ConnectionGroup group;
  room = &group;
  socketserver::ConnectionHandle kept;
  {
    Server server({"127.0.0.1", 0});
    if constexpr (requires { server.threads; }) server.threads = 1;
    test::ServerThread serving(server);
    {
      test::Client client = test::Client::connect(server.server_address());
      REQUIRE(test::eventually([&] { return group.size() == 1; }));
      {
        const std::lock_guard lock(last_mutex);
        kept = last_joined;
      }
      CHECK(kept.client_address().port() != 0);
      CHECK_FALSE(kept.closed());
      CHECK(kept.send("from another thread\n"));
      CHECK(client.recv_line() == "from another thread\n");
    }
    // The client left: the group forgets it, and the handle goes quiet.
    REQUIRE(test::eventually([&] { return group.size() == 0 && kept.closed(); }));
    CHECK_FALSE(kept.send("too late\n"));
    kept.close();
    CHECK(group.broadcast("nobody\n") == 0);
  }
  // The server has gone too.
  CHECK_FALSE(kept.send("later still\n"));
  kept.close();
  CHECK(kept.closed());
  CHECK_FALSE(group.add(kept));
  {
    const std::lock_guard lock(last_mutex);
    last_joined = {};
  }
}

// A message queued before the handler writes goes out before what it writes.
template <class Server>
void check_order_with_handler_writes() {
  socketserver::ConnectionGroup group;
  room = &group;
  Server server({"127.0.0.1", 0});
  if constexpr (requires { server.threads; }) server.threads = 2;
  test::ServerThread serving(server);
  test::Client client = test::Client::connect(server.server_address());
  REQUIRE(test::eventually([&] { return group.size() == 1; }));
  const socketserver::ConnectionHandle handle = group.members().front();
  std::string got;
  std::string want;
  for (int i = 0; i < 200; ++i) {
    const std::string queued = "queued " + std::to_string(i) + "\n";
    REQUIRE(handle.send(queued));
    client.send("echo\n");
    want += queued + "echo\n";
    while (got.size() < want.size()) got += client.recv();
  }
  CHECK(got == want);
}

template <class Server>
void check_close_from_another_thread() {
  socketserver::ConnectionGroup group;
  room = &group;
  Server server({"127.0.0.1", 0});
  if constexpr (requires { server.threads; }) server.threads = 1;
  test::ServerThread serving(server);
  test::Client client = test::Client::connect(server.server_address());
  REQUIRE(test::eventually([&] { return group.size() == 1; }));
  std::thread([member = group.members().front()] { member.close(); }).join();
  CHECK(client.recv().empty());  // the server ended the connection
  REQUIRE(test::eventually([&] { return group.size() == 0 && server.stats().active == 0; }));
}

}  // namespace

TEST_CASE("threading server: a handle outlives its connection and its server harmlessly", "[handle]") {
  check_handle_after_close<socketserver::ThreadingTCPServer<Fanout>>();
}

TEST_CASE("async server: a handle outlives its connection and its server harmlessly", "[handle]") {
  check_handle_after_close<socketserver::AsyncTCPServer<AsyncFanout>>();
}

TEST_CASE("threading server: a message queued before the handler writes goes out first", "[handle]") {
  check_order_with_handler_writes<socketserver::ThreadingTCPServer<Fanout>>();
}

TEST_CASE("async server: a message queued before the handler writes goes out first", "[handle]") {
  check_order_with_handler_writes<socketserver::AsyncTCPServer<AsyncFanout>>();
}

TEST_CASE("threading server: a handle closes its connection from another thread", "[handle]") {
  check_close_from_another_thread<socketserver::ThreadingTCPServer<Fanout>>();
}

TEST_CASE("async server: a handle closes its connection from another thread", "[handle]") {
  check_close_from_another_thread<socketserver::AsyncTCPServer<AsyncFanout>>();
}

namespace {

// With QueueOverflow::drop, a slow consumer misses messages but keeps its connection, and what
// it gets is whole lines.
template <class Server>
void check_drop_policy() {
  socketserver::ConnectionGroup group;
  room = &group;
  Server server({"127.0.0.1", 0});
  if constexpr (requires { server.threads; }) server.threads = 1;
  server.limits.max_queued_bytes = 8 * 1024;
  server.limits.queue_overflow = socketserver::Limits::QueueOverflow::drop;
  test::ServerThread serving(server);
  test::Client sender = test::Client::connect(server.server_address());
  test::Client slow = slow_consumer(server.server_address());
  REQUIRE(test::eventually([&] { return group.size() == 2; }));
  std::string burst;
  constexpr std::size_t lines = 4000;
  for (std::size_t i = 0; i < lines; ++i) burst += numbered(i);
  sender.send(burst);
  REQUIRE(test::eventually([&] { return server.stats().queues.dropped > 0; }));
  // "bye" ends the slow consumer's handler, which writes what its queue still holds before the
  // connection closes: what arrives is whole lines, in order, with gaps.
  slow.send("bye\n");
  std::string got;
  for (std::string part = slow.recv(); !part.empty(); part = slow.recv()) got += part;
  CHECK(got.size() < burst.size());
  CHECK(got.ends_with("\n"));
  std::size_t previous = 0;
  bool first = true;
  bool whole = !got.empty();
  for (std::size_t at = 0; at < got.size();) {
    const std::size_t end = got.find('\n', at);
    const std::string line = got.substr(at, end - at + 1);
    at = end + 1;
    const std::size_t n = std::stoul(line.substr(5));
    whole = whole && line == numbered(n) && (first || n > previous);
    previous = n;
    first = false;
  }
  CHECK(whole);
  CHECK(server.stats().queues.disconnected == 0);
}

}  // namespace

TEST_CASE("threading server: the drop policy keeps a slow consumer and drops whole messages", "[handle]") {
  check_drop_policy<socketserver::ThreadingTCPServer<Fanout>>();
}

TEST_CASE("async server: the drop policy keeps a slow consumer and drops whole messages", "[handle]") {
  check_drop_policy<socketserver::AsyncTCPServer<AsyncFanout>>();
}

namespace {

// Connections join and leave while another thread broadcasts without pause (for TSan).
template <class Server>
void check_churn_during_broadcast() {
  socketserver::ConnectionGroup group;
  room = &group;
  Server server({"127.0.0.1", 0});
  if constexpr (requires { server.threads; }) server.threads = 3;
  server.limits.max_queued_bytes = 4096;  // the broadcaster is faster than any reader: drop
  server.limits.queue_overflow = socketserver::Limits::QueueOverflow::drop;
  server.logger.level = socketserver::LogLevel::error;
  test::ServerThread serving(server);
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> broadcasts{0};
  std::thread broadcaster([&] {
    for (std::size_t i = 0; i < 1'000'000 && !stop.load(); ++i) {
      group.broadcast("tick\n");
      group.for_each([](const socketserver::ConnectionHandle& member) { (void)member.queued(); });
      broadcasts.fetch_add(1);
    }
  });
  for (std::size_t round = 0; round < 20; ++round) {
    REQUIRE(test::eventually([&] { return group.size() == 0; }));  // the last round's have left
    std::vector<test::Client> clients;
    clients.reserve(10);
    for (int i = 0; i < 10; ++i) clients.push_back(test::Client::connect(server.server_address()));
    REQUIRE(test::eventually([&] { return group.size() == 10; }));
    CHECK(clients.front().recv_line() == "tick\n");
  }
  stop = true;
  broadcaster.join();
  CHECK(broadcasts.load() > 0);
  REQUIRE(test::eventually([&] { return group.size() == 0 && server.stats().active == 0; }));
}

}  // namespace

TEST_CASE("threading server: connections join and leave a group during broadcasts", "[handle]") {
  check_churn_during_broadcast<socketserver::ThreadingTCPServer<Fanout>>();
}

TEST_CASE("async server, three loops: connections join and leave a group during broadcasts", "[handle]") {
  check_churn_during_broadcast<socketserver::AsyncTCPServer<AsyncFanout>>();
}
