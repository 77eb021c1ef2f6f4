// BasicAsyncStreamServer (AsyncTCPServer, AsyncUnixStreamServer): CPython's echo scenario,
// concurrency over several loops, the hooks, closing with and without waiting, and 10,000
// connections in one process.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <asio/error.hpp>
#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/async/unix_stream_server.hpp>

#include "echo_handlers.hpp"
#include "echo_scenario.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::Address;
using socketserver::Request;
using test::AsyncLineEcho;

TEST_CASE("the echo scenario, on one loop and on two") {
  const std::size_t threads = GENERATE(1, 2);
  test::TempDir dir;
  SECTION("AsyncTCPServer") {
    socketserver::AsyncTCPServer<AsyncLineEcho> server({"127.0.0.1", 0});
    server.threads = threads;
    test::check_echo_scenario(server, dir, [&] { CHECK(server.active_connections() == 0); });
  }
  SECTION("AsyncTCPServer over IPv6") {
    socketserver::AsyncTCPServer<AsyncLineEcho> server({"::1", 0});
    server.threads = threads;
    test::check_echo_scenario(server, dir, [] {});
  }
  SECTION("AsyncUnixStreamServer") {
    const std::string path = dir.path("async.sock");
    socketserver::AsyncUnixStreamServer<AsyncLineEcho> server(path);
    server.threads = threads;
    test::check_echo_scenario(server, dir, [&] { CHECK_FALSE(std::filesystem::exists(path)); });
  }
}

TEST_CASE("many clients at once, pipelined lines, lines split over many reads") {
  socketserver::AsyncTCPServer<AsyncLineEcho> server({"127.0.0.1", 0});
  server.threads = 2;
  test::ServerThread serving(server);

  std::vector<test::Client> clients;
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += "line " + std::to_string(i) + "\n";
  clients.reserve(20);
  for (int c = 0; c < 20; ++c) clients.push_back(test::Client::connect(server.server_address()));
  for (auto& client : clients) client.send(batch);  // all before any reply is read
  for (auto& client : clients) {
    std::string got;
    while (got.size() < batch.size()) {
      const std::string part = client.recv();
      REQUIRE_FALSE(part.empty());
      got += part;
    }
    CHECK(got == batch);
  }

  auto slow = test::Client::connect(server.server_address());
  for (const char c : std::string("one byte at a time\n")) slow.send(std::string(1, c));
  CHECK(slow.recv_line() == "one byte at a time\n");

  auto last = test::Client::connect(server.server_address());
  last.send("complete\nno newline");
  last.shutdown_write();
  CHECK(last.recv_all() == "complete\nno newline");
}

// After a short read the reader waits for the next edge, unless the peer's FIN already sits
// behind the data: no edge would come, so the server must not wait for one.
TEST_CASE("a FIN that arrives with the data ends the stream") {
  socketserver::AsyncTCPServer<AsyncLineEcho> server({"127.0.0.1", 0});
  server.threads = 1;
  test::ServerThread serving(server);
  for (int i = 0; i < 200; ++i) {
    auto client = test::Client::connect(server.server_address());
    client.send("line\nrest");
    client.shutdown_write();
    REQUIRE(client.recv_all() == "line\nrest");
  }
}

namespace {

std::mutex seen_mutex;
std::set<std::thread::id> seen_threads;
std::atomic<int> handlers_started{0};

struct RecordThread : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    {
      std::lock_guard lock(seen_mutex);
      seen_threads.insert(std::this_thread::get_id());
    }
    ++handlers_started;
    while (auto line = co_await rfile.readline()) co_await wfile.write(*line);
  }
};

}  // namespace

TEST_CASE("threads: connections go to the loops in turn, the first loop on the serving thread") {
  seen_threads.clear();
  handlers_started = 0;
  socketserver::AsyncTCPServer<RecordThread> server({"127.0.0.1", 0});
  server.threads = 3;
  test::ServerThread serving(server);
  std::vector<test::Client> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(test::Client::connect(server.server_address()));
    clients.back().send("hi\n");
    CHECK(clients.back().recv_line() == "hi\n");
  }
  REQUIRE(handlers_started == 6);
  CHECK(server.active_connections() == 6);
  std::lock_guard lock(seen_mutex);
  CHECK(seen_threads.size() == 3);
  CHECK(seen_threads.count(std::this_thread::get_id()) == 0);
}

namespace {

std::atomic<int> finished{0};
std::atomic<int> aborted_reads{0};

struct Throws : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    auto line = co_await rfile.readline();
    co_await wfile.write("before the error\n");
    throw std::runtime_error("bad request: " + std::string(line.value_or("")));
  }
  asio::awaitable<void> finish() override {
    ++finished;
    co_await AsyncStreamRequestHandler::finish();
  }
};

template <class Handler>
class Recording : public socketserver::AsyncTCPServer<Handler> {
 public:
  using socketserver::AsyncTCPServer<Handler>::AsyncTCPServer;

  bool verify_request(Request& request, const Address& client_address) override {
    ++verified;
    return !refuse && socketserver::AsyncTCPServer<Handler>::verify_request(request, client_address);
  }
  void handle_error(Request& /*request*/, const Address& client_address) override {
    std::lock_guard lock(mutex);
    try {
      throw;
    } catch (const std::exception& e) {
      errors.push_back(e.what());
    }
    peers.push_back(client_address);
  }
  void shutdown_request(Request& request) override {
    ++shut_down;
    socketserver::AsyncTCPServer<Handler>::shutdown_request(request);
  }

  std::atomic<bool> refuse{false};
  std::atomic<int> verified{0};
  std::atomic<int> shut_down{0};
  std::mutex mutex;
  std::vector<std::string> errors;
  std::vector<Address> peers;
};

}  // namespace

TEST_CASE("handle_error gets the handler's exception and the peer, finish runs, and the connection closes") {
  finished = 0;
  Recording<Throws> server({"127.0.0.1", 0});
  server.threads = 1;
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  client.send("hello\n");
  CHECK(client.recv_all() == "before the error\n");  // flushed by finish(), then closed
  REQUIRE(test::eventually([&] { return server.shut_down.load() == 1; }));
  CHECK(finished == 1);
  std::lock_guard lock(server.mutex);
  REQUIRE(server.errors.size() == 1);
  CHECK(server.errors[0] == "bad request: hello\n");
  CHECK(server.peers[0] == test::socket_name(client.fd()));
}

TEST_CASE("verify_request() refuses: the connection closes unanswered, no handler runs") {
  handlers_started = 0;
  Recording<RecordThread> server({"127.0.0.1", 0});
  server.threads = 1;
  server.refuse = true;
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  client.send("hello\n");
  CHECK(client.recv_all().empty());
  CHECK(server.verified == 1);
  CHECK(handlers_started == 0);
}

TEST_CASE("a line past max_line is an error and a close, not unbounded buffering") {
  struct Capped : AsyncLineEcho {
    void setup() override {
      rfile.max_line = 1000;
      AsyncLineEcho::setup();
    }
  };
  Recording<Capped> server({"127.0.0.1", 0});
  server.threads = 1;
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  client.send("short\n" + std::string(5000, 'x'));
  CHECK(client.recv_all() == "short\n");
  REQUIRE(test::eventually([&] { return server.shut_down.load() == 1; }));
  std::lock_guard lock(server.mutex);
  REQUIRE(server.errors.size() == 1);
  CHECK(server.errors[0] == "readline: line too long");
}

TEST_CASE("server_close() lets requests in flight finish, and the loops serve them meanwhile") {
  socketserver::AsyncTCPServer<AsyncLineEcho> server({"127.0.0.1", 0});
  server.threads = 2;
  std::vector<test::Client> clients;
  auto serving = std::make_unique<test::ServerThread>(server);
  for (int i = 0; i < 2; ++i) {
    clients.push_back(test::Client::connect(server.server_address()));
    clients.back().send("first\n");
    CHECK(clients.back().recv_line() == "first\n");
  }
  serving->stop();
  // Part of the next request, in flight: the connection on loop 0 (the serving thread's, idle
  // now) has not read it when server_close() starts to drain.
  for (auto& client : clients) client.send("while ");
  auto closing = std::async(std::launch::async, [&] { server.server_close(); });
  CHECK(closing.wait_for(100ms) == std::future_status::timeout);
  for (auto& client : clients) {
    client.send("closing\n");
    CHECK(client.recv_line() == "while closing\n");
    CHECK(client.recv_all().empty());  // then, waiting for a new request, it is closed
  }
  REQUIRE(test::ready(closing));
  CHECK(server.active_connections() == 0);
  CHECK(server.stats().cut == 0);
  CHECK(server.fileno() == -1);
  serving.reset();
}

namespace {

struct NoticesAbort : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    ++handlers_started;
    try {
      while (auto line = co_await rfile.readline()) co_await wfile.write(*line);
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::operation_aborted) ++aborted_reads;
      throw;
    }
  }
  asio::awaitable<void> finish() override {
    ++finished;
    co_await AsyncStreamRequestHandler::finish();
  }
};

}  // namespace

TEST_CASE("block_on_close = false: server_close() aborts waiting handlers without reporting errors") {
  handlers_started = finished = aborted_reads = 0;
  Recording<NoticesAbort> server({"127.0.0.1", 0});
  server.threads = 2;
  server.block_on_close = false;
  std::vector<test::Client> clients;
  {
    test::ServerThread serving(server);
    for (int i = 0; i < 4; ++i) clients.push_back(test::Client::connect(server.server_address()));
    REQUIRE(test::eventually([] { return handlers_started.load() == 4; }));
  }  // shutdown(), then server_close()
  CHECK(aborted_reads == 4);
  CHECK(finished == 4);
  CHECK(server.shut_down == 4);
  CHECK(server.active_connections() == 0);
  std::lock_guard lock(server.mutex);
  CHECK(server.errors.empty());
  for (auto& client : clients) CHECK(client.recv_all().empty());
}

TEST_CASE("destroying a server aborts its open connections") {
  handlers_started = finished = aborted_reads = 0;
  auto server = std::make_unique<socketserver::AsyncTCPServer<NoticesAbort>>(Address{"127.0.0.1", 0});
  server->threads = 2;
  std::vector<test::Client> clients;
  {
    std::thread serving([&] { server->serve_forever(); });
    for (int i = 0; i < 3; ++i) clients.push_back(test::Client::connect(server->server_address()));
    const bool started = test::eventually([] { return handlers_started.load() == 3; });
    server->shutdown();
    serving.join();
    REQUIRE(started);
  }
  server.reset();
  CHECK(aborted_reads == 3);
  CHECK(finished == 3);
  for (auto& client : clients) CHECK(client.recv_all().empty());
}

namespace {

// The clients of the 10,000-connection test, in a forked child so that the two ends do not share
// one descriptor table. Only system calls after fork(): the parent has threads running.
[[noreturn]] void run_clients(const socketserver::Address& server, int connections, int* fds, int report, int hold) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto number = [](int value, char* out) {  // "<value>\n" into out, returns its length
    char digits[16];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value > 0);
    for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
    out[n] = '\n';
    return n + 1;
  };
  int answered = 0;
  for (int i = 0; i < connections; ++i) {
    fds[i] = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 || ::connect(fds[i], reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) ::_exit(2);
  }
  for (int i = 0; i < connections; ++i) {
    char line[16];
    const int length = number(i, line);
    if (::send(fds[i], line, static_cast<std::size_t>(length), MSG_NOSIGNAL) != length) ::_exit(3);
  }
  for (int i = 0; i < connections; ++i) {
    char want[16];
    char got[16];
    const int length = number(i, want);
    int have = 0;
    while (have < length) {
      const ssize_t n = ::recv(fds[i], got + have, static_cast<std::size_t>(length - have), 0);
      if (n <= 0) break;
      have += static_cast<int>(n);
    }
    if (have == length && std::memcmp(got, want, static_cast<std::size_t>(length)) == 0) ++answered;
  }
  if (::write(report, &answered, sizeof answered) != sizeof answered) ::_exit(4);
  char ignored;
  while (::read(hold, &ignored, 1) > 0) {
  }
  ::_exit(0);  // closes every connection
}

}  // namespace

TEST_CASE("10,000 concurrent connections in one process") {
  constexpr int connections = 10000;
  REQUIRE(test::raise_open_file_limit(connections + 500));

  socketserver::AsyncTCPServer<AsyncLineEcho> server({"127.0.0.1", 0});
  server.threads = 2;
  test::ServerThread serving(server);

  std::vector<int> fds(connections);
  int report[2];
  int hold[2];
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(hold, O_CLOEXEC) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(report[0]);
    ::close(hold[1]);
    run_clients(server.server_address(), connections, fds.data(), report[1], hold[0]);
  }
  ::close(report[1]);
  ::close(hold[0]);
  int answered = -1;
  pollfd ready{report[0], POLLIN, 0};
  if (::poll(&ready, 1, 30000) == 1 && ::read(report[0], &answered, sizeof answered) != sizeof answered) answered = -1;
  CHECK(answered == connections);
  CHECK(server.active_connections() == connections);
  ::close(hold[1]);  // the child exits and its connections close
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  ::close(report[0]);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(test::eventually([&] { return server.active_connections() == 0; }));
}
