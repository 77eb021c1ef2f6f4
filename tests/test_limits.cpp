// Limits over real loopback sockets, for blocking servers (thread per connection, pool,
// forking) and the async one: each timeout closes its connection near its deadline, counted in
// stats() and logged; slowloris connections do not delay a normal client; writes to a peer that
// does not read give up with backpressure kept; max_line, max_connections (refuse and pause) and
// the per-IP cap; accept() out of descriptors backs off; SIGTERM drains, then cuts what is left;
// stopping twice is safe.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <asio/error.hpp>

#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/detail/system_error.hpp>
#include <socketserver/error.hpp>
#include <socketserver/forking_servers.hpp>
#include <socketserver/limits.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/shutdown_on_signals.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/tcp_server.hpp>
#include <socketserver/thread_pool_mixin.hpp>
#include <socketserver/threading_servers.hpp>

#include "echo_handlers.hpp"
#include "log_capture.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::Address;
using socketserver::LogCategory;
using socketserver::LogLevel;
using Clock = std::chrono::steady_clock;

namespace {

using test::bound;
// How late a deadline may be met: generous, for sanitizer builds on two busy cores.
constexpr auto slack = 2s;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Checks that what began at `start` ended at its `deadline`: not before, and within `slack`.
void check_ended_at(Clock::time_point start, socketserver::Seconds deadline) {
  const double elapsed = seconds_since(start);
  CHECK(elapsed >= deadline.count());
  CHECK(elapsed < (deadline + slack).count());
}

using Threading = socketserver::ThreadingTCPServer<test::LineEcho>;
using Pool = socketserver::ThreadPoolMixIn<socketserver::TCPServer<test::LineEcho>>;
using Forking = socketserver::ForkingTCPServer<test::LineEcho>;
using Async = socketserver::AsyncTCPServer<test::AsyncLineEcho>;

// Two event loops for the async server; a short drain, so that a test that fails with a
// connection still open ends soon all the same.
template <class Server>
void configure(Server& server) {
  if constexpr (requires { server.threads; }) server.threads = 2;
  server.limits.drain_timeout = 3s;
}

bool connection_ended(int error) { return error == ECONNRESET || error == EPIPE; }

// A test::Client over IPv4 that can be made before it connects (the descriptor test makes its
// sockets before it takes every descriptor away), bound to a source address, and that says how
// the server ended the connection.
class Peer : public test::Client {
 public:
  explicit Peer(const char* source = nullptr) : Client(Client::unconnected(source)) {}
  Peer(Peer&&) noexcept = default;
  Peer& operator=(Peer&&) noexcept = default;
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() { close(); }

  static Peer connect(const Address& server, const char* source = nullptr) {
    Peer peer(source);
    peer.connect_to(server);
    return peer;
  }

  // Shuts the connection down first: a forked child of this process (a ForkingTCPServer's)
  // holds a copy of the descriptor, which close() alone would leave open.
  void close() {
    if (fd() >= 0) ::shutdown(fd(), SHUT_RDWR);
    Client::close();
  }

  // Sends a line and reads the reply; std::nullopt when the server has closed the connection.
  std::optional<std::string> exchange(std::string_view line) {
    try {
      send(line);
      std::string reply = recv_line();
      if (reply.empty()) return std::nullopt;
      return reply;
    } catch (const std::system_error& e) {
      if (connection_ended(e.code().value())) return std::nullopt;
      throw;
    }
  }
  // Reads (and drops) until the server closes: true at the end of the stream or a reset,
  // false when nothing came for test::io_timeout_seconds.
  bool wait_closed() {
    std::string buffer(std::size_t{64} * 1024, '\0');
    for (;;) {
      const ssize_t got = ::recv(fd(), buffer.data(), buffer.size(), 0);
      if (got == 0) return true;
      if (got < 0) return connection_ended(errno);
    }
  }
  // Without waiting: whether the server has closed the connection (unread data is dropped).
  bool closed_now() {
    char buffer[256];
    for (;;) {
      const ssize_t got = ::recv(fd(), buffer, sizeof buffer, MSG_DONTWAIT);
      if (got == 0) return true;
      if (got < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }
  // Without waiting: sends one byte; false when the connection has ended.
  bool drip() {
    const ssize_t n = ::send(fd(), "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n == 1 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }
  // Whether anything (data or the end of the stream) arrives within `limit`.
  bool readable_within(std::chrono::milliseconds limit) {
    pollfd p{fd(), POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(limit.count()));
    if (n < 0) test::fail("poll");
    return n == 1;
  }
};

bool can_bind(const char* host) {
  try {
    (void)test::Client::unconnected(host);
    return true;
  } catch (const std::system_error&) {
    return false;
  }
}

// A client that never reads, and a handler that writes 64 MiB to it in 4000-byte writes
// (below direct_write_size, so they collect in wfile's buffer): what the handler saw.
struct FloodReport {
  std::error_code error;
  std::size_t max_buffered = 0;
  std::size_t buffer_size = 0;
  std::uint64_t written = 0;
  double failed_after = -1;  // seconds from the last write that returned to the one that threw
};
std::promise<FloodReport>* flood = nullptr;  // set by the test
constexpr std::size_t flood_total = std::size_t{64} * 1024 * 1024;
constexpr std::size_t flood_chunk = 4000;

struct Flood : socketserver::StreamRequestHandler {
  void handle() override {
    if (!rfile.readline()) return;  // "go\n": the client is there
    const std::string chunk(flood_chunk, 'x');
    FloodReport report;
    report.buffer_size = wfile.buffer_size;
    auto last = Clock::now();
    try {
      for (; report.written < flood_total; report.written += chunk.size()) {
        wfile.write(chunk);
        report.max_buffered = std::max(report.max_buffered, wfile.buffered());
        last = Clock::now();
      }
    } catch (const std::system_error& e) {
      report.error = e.code();
      report.failed_after = seconds_since(last);
      flood->set_value(report);
      throw;
    }
    flood->set_value(report);
  }
};

struct AsyncFlood : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    if (!co_await rfile.readline()) co_return;
    const std::string chunk(flood_chunk, 'x');
    FloodReport report;
    report.buffer_size = wfile.buffer_size;
    auto last = Clock::now();
    try {
      for (; report.written < flood_total; report.written += chunk.size()) {
        co_await wfile.write(chunk);
        report.max_buffered = std::max(report.max_buffered, wfile.buffered());
        last = Clock::now();
      }
    } catch (const std::system_error& e) {
      report.error = e.code();
      report.failed_after = seconds_since(last);
      flood->set_value(report);
      throw;
    }
    flood->set_value(report);
  }
};

using ThreadingFlood = socketserver::ThreadingTCPServer<Flood>;
using AsyncFloodServer = socketserver::AsyncTCPServer<AsyncFlood>;

// `wanted` connections, or `fallback` where the descriptor limit cannot be raised for `wanted`.
std::size_t connections_allowed(std::size_t wanted, std::size_t fallback) {
  if (test::raise_open_file_limit(4 * wanted + 100)) return wanted;
  WARN("the descriptor limit is too low for " << wanted << " connections: using " << fallback);
  return fallback;
}

// Slowloris: `count` connections each send one byte every 100 ms and never a newline, while a
// normal client exchanges a line every 50 ms. Every slow one must be closed between
// read_timeout and read_timeout + slack after its first byte; every normal reply must come
// within a second.
template <class Server>
void check_slowloris(std::size_t count, bool server_counts) {
  test::LogCapture log;
  Server server({"127.0.0.1", 0});
  configure(server);
  const auto read_timeout = 500ms;
  server.limits.read_timeout = read_timeout;
  log.attach(server.logger, LogLevel::warning);
  test::ServerThread serving(server);

  Peer normal = Peer::connect(server.server_address());
  struct Slow {
    Peer peer;
    Clock::time_point first_byte{};
    Clock::time_point closed{};
  };
  std::vector<Slow> slow;
  slow.reserve(count);
  for (std::size_t i = 0; i < count; ++i) slow.push_back({Peer::connect(server.server_address())});

  // The load: a drip of bytes, and a note of when each connection is seen closed.
  const auto give_up = Clock::now() + read_timeout + slack + 2s;
  auto driver = std::async(std::launch::async, [&] {
    std::size_t open = slow.size();
    while (open > 0 && Clock::now() < give_up) {
      for (Slow& s : slow) {
        if (s.closed != Clock::time_point{}) continue;
        const bool first = s.first_byte == Clock::time_point{};
        const auto now = Clock::now();
        if (first) s.first_byte = now;
        if ((!first && s.peer.closed_now()) || !s.peer.drip()) {
          s.closed = Clock::now();
          --open;
        }
      }
      std::this_thread::sleep_for(100ms);  // the drip's pace: this is the load, not a wait
    }
    return open;
  });

  double worst_reply = 0;
  int replies = 0;
  while (driver.wait_for(50ms) != std::future_status::ready) {  // a line every 50 ms meanwhile
    const auto sent = Clock::now();
    const auto reply = normal.exchange("ping " + std::to_string(replies) + "\n");
    worst_reply = std::max(worst_reply, seconds_since(sent));
    REQUIRE(reply == "ping " + std::to_string(replies) + "\n");
    ++replies;
  }
  CHECK(driver.get() == 0);  // every slow connection was closed
  CHECK(replies >= 3);
  CHECK(worst_reply < 1.0);
  double earliest = 1e9, latest = 0;
  for (const Slow& s : slow) {
    if (s.closed == Clock::time_point{}) continue;
    const double after = std::chrono::duration<double>(s.closed - s.first_byte).count();
    earliest = std::min(earliest, after);
    latest = std::max(latest, after);
  }
  INFO("slow connections closed between " << earliest << " s and " << latest << " s after their first byte");
  CHECK(earliest >= 0.5);
  CHECK(latest < 0.5 + std::chrono::duration<double>(slack).count());
  CHECK(normal.exchange("still here\n") == "still here\n");
  if (server_counts) {
    CHECK(test::eventually([&] { return server.stats().timed_out == count; }));
    CHECK(log.contains(LogCategory::security, "read timeout"));
  }
}

// Sets the soft limit on descriptors to one past the highest open, and fills the holes below
// it: the process has no descriptor left to give until restore() (or the destructor).
class NoDescriptorsLeft {
 public:
  NoDescriptorsLeft() {
    meet_accept_failure_types();
    if (::getrlimit(RLIMIT_NOFILE, &saved_) != 0) test::fail("getrlimit");
    int highest = -1;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) test::fail("opendir");
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') highest = std::max(highest, std::atoi(entry->d_name));
    }
    ::closedir(dir);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest) + 1;
    if (::setrlimit(RLIMIT_NOFILE, &lowered) != 0) test::fail("setrlimit");
    for (;;) {
      const int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) break;
      fillers_.push_back(fd);
    }
  }
  NoDescriptorsLeft(const NoDescriptorsLeft&) = delete;
  NoDescriptorsLeft& operator=(const NoDescriptorsLeft&) = delete;
  ~NoDescriptorsLeft() { restore(); }

  void restore() {
    for (const int fd : fillers_) ::close(fd);
    fillers_.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> fillers_;

  // UndefinedBehaviorSanitizer checks the dynamic type of each object a member is called on, and
  // the first time it meets a type it opens a pipe to probe the vtable's memory: with no
  // descriptor left that fails, and it reports a bad vptr. So the types the server's accept()
  // failure goes through (the exception, the error categories it is compared with) are met
  // here first, while descriptors are still free. Without the sanitizer this is a no-op.
  static void meet_accept_failure_types() {
    try {
      socketserver::detail::throw_errno("accept", EMFILE);
    } catch (const std::system_error& e) {
      const std::error_code code = e.code();
      const bool resource = code == std::errc::too_many_files_open ||
                            code == std::errc::too_many_files_open_in_system || code == std::errc::no_buffer_space ||
                            code == std::errc::not_enough_memory;
      CHECK(resource);
      const std::error_code aborted = asio::error::operation_aborted;  // a cancelled wait's result
      CHECK(aborted != code);
      CHECK_FALSE(aborted != asio::error::operation_aborted);
      CHECK(std::string_view(e.what()).find("accept") != std::string_view::npos);
      socketserver::Logger logger;  // and the back-off's log line: fmt's buffers
      logger.sink = [](LogLevel, LogCategory, std::string_view) {};
      logger.log(LogLevel::warning, LogCategory::server, "{}; not accepting for {} ms", e.what(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(Clock::duration(10)).count());
    }
  }
};

void send_sigterm() { REQUIRE(::kill(::getpid(), SIGTERM) == 0); }

// A request that never finishes, then `stop()` ends serve_forever(): server_close() must cut
// the request at the server's drain_timeout.
template <class Server, class Stop>
void check_cut_at_drain_timeout(Server& server, test::Serving& serving, Stop stop) {
  Peer stuck = Peer::connect(server.server_address());
  stuck.send("partial");  // and nothing more
  REQUIRE(test::eventually([&] { return server.stats().active == 1; }));
  stop();
  REQUIRE(serving.returns_within(bound));

  const auto start = Clock::now();
  server.server_close();
  check_ended_at(start, *server.limits.drain_timeout);
  CHECK(stuck.wait_closed());
  CHECK(server.stats().cut == 1);
}

}  // namespace

TEMPLATE_TEST_CASE("first_byte_timeout closes a client that sends nothing", "[limits][timeout]", Threading, Pool,
                   Async) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.first_byte_timeout = 300ms;
  log.attach(server.logger);  // routine timeouts are logged at info
  test::ServerThread serving(server);

  const auto start = Clock::now();
  Peer silent = Peer::connect(server.server_address());
  REQUIRE(silent.wait_closed());
  check_ended_at(start, 300ms);
  REQUIRE(test::eventually([&] { return server.stats().timed_out == 1; }));
  INFO(log.dump());
  CHECK(log.contains(LogCategory::security, "first-byte timeout"));
  // The access line comes last, once the connection is counted.
  CHECK(test::eventually([&] {
    return log.contains(LogCategory::access, "0 bytes in, 0 bytes out: no data within the first-byte timeout");
  }));
}

TEMPLATE_TEST_CASE("idle_timeout closes a silent client between requests, not a talking one", "[limits][timeout]",
                   Threading, Async) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.idle_timeout = 400ms;
  log.attach(server.logger);
  test::ServerThread serving(server);

  const auto start = Clock::now();  // before the request: the idle wait starts after its reply
  Peer quiet = Peer::connect(server.server_address());
  REQUIRE(quiet.exchange("one\n") == "one\n");
  REQUIRE(quiet.wait_closed());
  check_ended_at(start, 400ms);
  REQUIRE(test::eventually([&] { return server.stats().timed_out == 1; }));
  CHECK(log.contains(LogCategory::security, "idle timeout"));

  // A line every 100 ms for 1 s: far longer than idle_timeout in all, never idle that long.
  Peer talker = Peer::connect(server.server_address());
  const auto talk_start = Clock::now();
  int lines = 0;
  while (Clock::now() - talk_start < 1s) {
    REQUIRE(talker.exchange("tick\n") == "tick\n");
    ++lines;
    std::this_thread::sleep_for(100ms);  // the client's pace
  }
  CHECK(lines >= 3);
  CHECK(talker.exchange("still open\n") == "still open\n");
  CHECK(server.stats().timed_out == 1);
}

TEST_CASE("read_timeout: 200 slowloris connections to a ThreadingTCPServer are closed while a normal client is served",
          "[limits][timeout][slowloris]") {
  check_slowloris<Threading>(connections_allowed(200, 50), true);
}

TEST_CASE("read_timeout: 500 slowloris connections to an AsyncTCPServer are closed while a normal client is served",
          "[limits][timeout][slowloris]") {
  check_slowloris<Async>(connections_allowed(500, 100), true);
}

TEST_CASE("read_timeout: 20 slowloris connections to a ForkingTCPServer are closed while a normal client is served",
          "[limits][timeout][slowloris][forking]") {
  check_slowloris<Forking>(20, false);  // the children count and log their connections, not the parent
}

TEMPLATE_TEST_CASE("write_timeout: a peer that does not read fails the handler's write, and the buffer stays bounded",
                   "[limits][timeout][backpressure]", ThreadingFlood, AsyncFloodServer) {
  std::promise<FloodReport> report_promise;
  flood = &report_promise;
  auto report_future = report_promise.get_future();
  {
    test::LogCapture log;
    TestType server({"127.0.0.1", 0});
    configure(server);
    server.limits.write_timeout = 300ms;
    log.attach(server.logger);
    test::ServerThread serving(server);

    Peer reader = Peer::connect(server.server_address());
    reader.send("go\n");  // and never read, until the handler has given up
    REQUIRE(test::ready(report_future));
    const FloodReport report = report_future.get();
    CHECK(report.error == socketserver::errc::write_timeout);
    CHECK(report.written < flood_total);
    CHECK(report.max_buffered > 0);
    CHECK(report.max_buffered <= report.buffer_size);
    CHECK(report.failed_after >= 0.3);
    CHECK(report.failed_after < 0.3 + 2.0);

    REQUIRE(reader.wait_closed());  // what was sent, then the end of the stream
    REQUIRE(test::eventually([&] { return server.stats().timed_out == 1 && server.stats().active == 0; }));
    CHECK(log.contains(LogCategory::security, "write timeout"));
  }
  flood = nullptr;
}

TEMPLATE_TEST_CASE("connection_timeout cuts a client that keeps sending", "[limits][timeout]", Threading, Async) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.connection_timeout = 500ms;
  log.attach(server.logger);
  test::ServerThread serving(server);

  const auto start = Clock::now();
  Peer busy = Peer::connect(server.server_address());
  int lines = 0;
  while (seconds_since(start) < 0.5 + 2.0) {
    const auto reply = busy.exchange("tick\n");
    if (!reply) break;
    REQUIRE(*reply == "tick\n");
    ++lines;
    std::this_thread::sleep_for(20ms);  // the client's pace
  }
  CHECK(lines >= 3);
  check_ended_at(start, 500ms);
  REQUIRE(test::eventually([&] { return server.stats().timed_out == 1; }));
  CHECK(log.contains(LogCategory::security, "connection timeout"));
}

TEMPLATE_TEST_CASE("limits.max_line caps readline() for handlers that leave rfile.max_line at 0", "[limits][max_line]",
                   Threading, Pool, Async) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.max_line = 100;
  log.attach(server.logger);
  test::ServerThread serving(server);

  Peer client = Peer::connect(server.server_address());
  const std::string short_line = std::string(49, 's') + "\n";
  CHECK(client.exchange(short_line) == short_line);
  const std::string long_line = std::string(199, 'l') + "\n";
  CHECK_FALSE(client.exchange(long_line));  // closed, unanswered
  REQUIRE(test::eventually([&] { return server.stats().limit_exceeded == 1; }));
  CHECK(server.stats().timed_out == 0);
  CHECK(log.contains(LogCategory::security, "line too long"));

  Peer next = Peer::connect(server.server_address());  // the server goes on
  CHECK(next.exchange(short_line) == short_line);
}

TEMPLATE_TEST_CASE("limits.max_line = 0 lifts the cap", "[limits][max_line]", Threading, Async) {
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.max_line = 0;
  test::ServerThread serving(server);

  Peer client = Peer::connect(server.server_address());
  const std::string line = std::string(std::size_t{200} * 1024, 'l') + "\n";  // past the 64 KiB default
  CHECK(client.exchange(line) == line);
  CHECK(server.stats().limit_exceeded == 0);
}

TEMPLATE_TEST_CASE("without first_byte_timeout a silent new client gets idle_timeout", "[limits][timeout]", Threading,
                   Async) {
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.first_byte_timeout = std::nullopt;
  server.limits.idle_timeout = 300ms;
  test::ServerThread serving(server);

  const auto start = Clock::now();
  Peer silent = Peer::connect(server.server_address());
  REQUIRE(silent.wait_closed());
  check_ended_at(start, 300ms);
  REQUIRE(test::eventually([&] { return server.stats().timed_out == 1; }));
}

TEMPLATE_TEST_CASE("max_connections with Overload::refuse closes the connection past the cap at once",
                   "[limits][max_connections]", Threading, Async) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.max_connections = 2;
  server.limits.overload = socketserver::Limits::Overload::refuse;
  log.attach(server.logger);
  test::ServerThread serving(server);

  Peer a = Peer::connect(server.server_address());
  Peer b = Peer::connect(server.server_address());
  REQUIRE(a.exchange("a\n") == "a\n");
  REQUIRE(b.exchange("b\n") == "b\n");
  Peer c = Peer::connect(server.server_address());
  CHECK(c.recv_line().empty());  // the end of the stream, unanswered
  REQUIRE(test::eventually([&] { return server.stats().refused == 1; }));
  CHECK(server.stats().accepted == 2);
  CHECK(log.contains(LogCategory::security, "max_connections (2) reached"));
  CHECK(a.exchange("a again\n") == "a again\n");

  a.close();  // room again: the next one is served
  REQUIRE(test::eventually([&] { return server.stats().active == 1; }));
  Peer d = Peer::connect(server.server_address());
  CHECK(d.exchange("d\n") == "d\n");
}

TEMPLATE_TEST_CASE("max_connections with Overload::pause leaves the connection past the cap waiting until one closes",
                   "[limits][max_connections]", Threading, Async) {
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.max_connections = 2;
  server.limits.overload = socketserver::Limits::Overload::pause;
  test::ServerThread serving(server);

  Peer a = Peer::connect(server.server_address());
  Peer b = Peer::connect(server.server_address());
  REQUIRE(a.exchange("a\n") == "a\n");
  REQUIRE(b.exchange("b\n") == "b\n");
  Peer c = Peer::connect(server.server_address());  // the kernel's backlog takes it
  c.send("third\n");
  CHECK_FALSE(c.readable_within(300ms));  // not accepted: no reply, no end of stream
  CHECK(server.stats().accepted == 2);

  const auto closed = Clock::now();
  a.close();
  CHECK(c.recv_line() == "third\n");
  CHECK(seconds_since(closed) < 2.0);
  CHECK(server.stats().refused == 0);
  CHECK(server.stats().accepted == 3);
}

TEMPLATE_TEST_CASE("max_connections_per_ip refuses a second connection from one address", "[limits][max_connections]",
                   Threading, Async) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.max_connections_per_ip = 1;
  log.attach(server.logger);
  test::ServerThread serving(server);

  Peer first = Peer::connect(server.server_address(), "127.0.0.1");
  REQUIRE(first.exchange("first\n") == "first\n");
  Peer second = Peer::connect(server.server_address(), "127.0.0.1");
  CHECK(second.recv_line().empty());
  REQUIRE(test::eventually([&] { return server.stats().refused == 1; }));
  CHECK(log.contains(LogCategory::security, "max_connections_per_ip (1)"));

  // Another loopback address is another peer (Linux routes all of 127/8 to lo).
  if (can_bind("127.0.0.2")) {
    Peer other = Peer::connect(server.server_address(), "127.0.0.2");
    CHECK(other.exchange("other\n") == "other\n");
  } else {
    WARN("127.0.0.2 is not available here: the second address is not tried");
  }
  CHECK(first.exchange("first again\n") == "first again\n");

  first.close();  // its slot is free again
  REQUIRE(test::eventually([&] { return server.stats().active == 0; }));
  Peer third = Peer::connect(server.server_address(), "127.0.0.1");
  CHECK(third.exchange("third\n") == "third\n");
}

TEMPLATE_TEST_CASE("accept() out of descriptors backs off instead of spinning, then serves again", "[limits][emfile]",
                   Threading, Async) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  log.attach(server.logger, LogLevel::warning);
  test::ServerThread serving(server);

  Peer first = Peer::connect(server.server_address());
  REQUIRE(first.exchange("before\n") == "before\n");  // the server runs, its loops too
  Peer waiting;                                       // its socket exists before the descriptors run out
  {
    NoDescriptorsLeft exhausted;
    waiting.connect_to(server.server_address());  // the backlog takes it; accept() cannot
    REQUIRE(test::eventually([&] { return server.stats().accept_errors > 0; }));
    const std::uint64_t before = server.stats().accept_errors;
    // A window to measure the rate in: a loop that spins on the readable listening socket
    // fails accept() thousands of times a second; backing off from 10 ms, a handful.
    std::this_thread::sleep_for(1s);
    const std::uint64_t during = server.stats().accept_errors - before;
    exhausted.restore();
    INFO(during << " accept() failures in 1 s");
    CHECK(during < 50);
  }
  CHECK(log.contains(LogCategory::server, "not accepting for"));
  CHECK(waiting.exchange("after\n") == "after\n");
  Peer fresh = Peer::connect(server.server_address());
  CHECK(fresh.exchange("fresh\n") == "fresh\n");
  CHECK(first.exchange("first\n") == "first\n");
}

TEMPLATE_TEST_CASE("SIGTERM under load: serve_forever() returns, server_close() lets requests in flight finish",
                   "[limits][drain][signals]", Threading, Async) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.drain_timeout = 5s;
  log.attach(server.logger, LogLevel::warning);
  socketserver::ShutdownOnSignals stop(server);
  test::Serving serving(server);

  std::vector<Peer> idle, busy;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(Peer::connect(server.server_address()));
    REQUIRE(idle.back().exchange("hi\n") == "hi\n");  // waits for its next request
  }
  for (int i = 0; i < 3; ++i) {
    busy.push_back(Peer::connect(server.server_address()));
    busy.back().send("hel");  // in the middle of its first request
  }
  REQUIRE(test::eventually([&] { return server.stats().active == 6; }));  // all accepted

  send_sigterm();
  REQUIRE(serving.returns_within(bound));
  CHECK(stop.signal() == SIGTERM);

  // The clients, while server_close() drains on this thread: the idle ones are closed (which
  // shows the drain has begun), then the busy ones finish their lines and get their replies.
  auto clients = std::async(std::launch::async, [&]() -> std::string {
    for (Peer& p : idle) {
      if (!p.wait_closed()) return "an idle connection was not closed";
    }
    for (Peer& p : busy) p.send("lo\n");
    for (Peer& p : busy) {
      const std::string reply = p.recv_line();
      if (reply != "hello\n") return "a busy connection got '" + reply + "'";
      if (!p.wait_closed()) return "a busy connection was not closed after its reply";
    }
    return "";
  });
  const auto start = Clock::now();
  server.server_close();
  const double elapsed = seconds_since(start);
  REQUIRE(test::ready(clients));
  CHECK(clients.get().empty());
  CHECK(elapsed < 5.0);
  const auto stats = server.stats();
  CHECK(stats.cut == 0);
  CHECK(stats.active == 0);
  CHECK(stats.accepted == 6);
  CHECK(stats.timed_out == 0);
  CHECK(log.contains(LogCategory::server, "signal 15 received"));
}

TEMPLATE_TEST_CASE("SIGTERM, then a request that never finishes is cut at drain_timeout", "[limits][drain][signals]",
                   Threading, Async) {
  test::LogCapture log;
  TestType server({"127.0.0.1", 0});
  configure(server);
  server.limits.drain_timeout = 300ms;
  log.attach(server.logger, LogLevel::warning);
  socketserver::ShutdownOnSignals stop(server);
  test::Serving serving(server);

  check_cut_at_drain_timeout(server, serving, send_sigterm);
  CHECK(server.stats().active == 0);
  CHECK(log.contains(LogCategory::server, "cut 1 connection"));
}

TEST_CASE("server_close() ends a forked request that never finishes at drain_timeout", "[limits][drain][forking]") {
  Forking server({"127.0.0.1", 0});
  configure(server);
  server.limits.drain_timeout = 300ms;
  server.limits.read_timeout = 3s;  // ends the child anyway, should the drain not
  test::Serving serving(server);

  check_cut_at_drain_timeout(server, serving, [&] { server.shutdown(); });
  CHECK(server.active_children.empty());
}

// A child forked while ShutdownOnSignals is installed inherits asio's SIGTERM handler, which
// only writes to a pipe no one reads in the child: the child must take SIGTERM's default action
// back (forking_mixin.hpp), or the drain's SIGTERM does not end it and server_close() waits
// until the child ends on its own (here at read_timeout).
TEST_CASE("SIGTERM, then a forked request that never finishes is cut at drain_timeout",
          "[limits][drain][signals][forking]") {
  Forking server({"127.0.0.1", 0});
  configure(server);
  server.limits.drain_timeout = 300ms;
  server.limits.read_timeout = 3s;  // ends the child anyway, should the drain's SIGTERM not
  socketserver::ShutdownOnSignals stop(server);
  test::Serving serving(server);

  check_cut_at_drain_timeout(server, serving, send_sigterm);
  CHECK(server.active_children.empty());
}

TEMPLATE_TEST_CASE("stopping a server that never started, or twice, is safe", "[limits][shutdown]", Threading, Pool,
                   Forking, Async) {
  SECTION("shutdown() before serve_forever(): serve_forever() returns at once") {
    TestType server({"127.0.0.1", 0});
    server.shutdown();
    {
      test::Serving serving(server);
      CHECK(serving.returns_within(bound));
    }
    server.server_close();
    server.server_close();
  }
  SECTION("server_close() twice without serving") {
    TestType server({"127.0.0.1", 0});
    server.server_close();
    server.server_close();
    CHECK(server.fileno() == -1);
  }
  SECTION("shutdown() twice, then server_close() twice, after serving") {
    TestType server({"127.0.0.1", 0});
    configure(server);
    {
      test::Serving serving(server);
      Peer client = Peer::connect(server.server_address());
      CHECK(client.exchange("hello\n") == "hello\n");
      client.close();
      server.shutdown();
      server.shutdown();  // no loop any more: returns at once
      CHECK(serving.returns_within(bound));
    }
    server.server_close();
    server.server_close();
    CHECK(server.fileno() == -1);
  }
}
