// ForkingMixIn and its four servers: the echo round trip, reaping (only the server's own
// children), exit statuses, handle_error in the child, max_children, the child's copy of the
// listening socket, and server_close() with block_on_close off.
//
// Code that runs in a forked child never uses Catch2: it reports back over the client's socket.
#include <catch2/catch.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <concepts>
#include <future>
#include <set>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/forking_mixin.hpp>
#include <socketserver/forking_servers.hpp>
#include <socketserver/stream_request_handler.hpp>

#include "echo_scenario.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::Address;
using socketserver::Request;

namespace {

// The longest any test waits for an event that should come at once.
constexpr auto bound = 5s;

// Echoes one line, as CPython's test handler does. It must not wait for the client to close:
// a child inherits every descriptor of the test process, the client's end of its own
// connection included, so that end never closes while the child lives. Replies still end
// with shutdown_request()'s FIN, which does not depend on other copies of the socket.
struct StreamEcho : socketserver::StreamRequestHandler {
  void handle() override {
    if (auto line = rfile.readline()) wfile.write(*line);
  }
};

struct DatagramEcho : socketserver::DatagramRequestHandler {
  void handle() override { wfile.write(rfile.read()); }
};

// Sends the child's pid, then fails on "raise\n" and answers anything else with "ok\n".
struct PidThenMaybeRaise : socketserver::StreamRequestHandler {
  void handle() override {
    request->sendall(fmt::format("pid {}\n", ::getpid()));
    auto line = rfile.readline();
    if (line && *line == "raise\n") throw std::runtime_error("boom");
    wfile.write("ok\n");
  }
};

// Reports its error to the client, with the pid of the process handle_error runs in.
struct ReportingServer : socketserver::ForkingTCPServer<PidThenMaybeRaise> {
  ReportingServer() : ForkingMixIn(Address("127.0.0.1", 0)) {}
  void handle_error(Request& request, const Address&) override {
    static_cast<socketserver::StreamRequest&>(request).sendall(
        fmt::format("error handled in {}: {}\n", ::getpid(), socketserver::detail::current_exception_message()));
  }
};

// The server's active_children, as each child sees it when it is forked.
const std::set<pid_t>* children = nullptr;

// Says how many other children the server had when it forked this one, then holds the request
// until the client sends a line.
struct HoldUntilReleased : socketserver::StreamRequestHandler {
  void handle() override {
    wfile.write(fmt::format("started beside {}\n", children->size()));
    rfile.readline();  // flushes the line above first
    wfile.write("done\n");
  }
};

// Says whether the child still holds the listening socket.
struct ListeningSocketState : socketserver::StreamRequestHandler {
  void handle() override { wfile.write(test::fd_is_open(server->fileno()) ? "open\n" : "closed\n"); }
};

// True when this process has no child at all, running or unreaped.
bool no_children_left() {
  int status;
  return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

// The pid in a "pid N\n" line; -1 if the line is not one.
pid_t parse_pid(const std::string& line) {
  if (line.rfind("pid ", 0) != 0) return -1;
  return static_cast<pid_t>(std::stol(line.substr(4)));
}

// Whether `S server({"127.0.0.1", 0});` compiles, as it does for TCPServer and ThreadingTCPServer.
template <class S>
concept ConstructibleFromBracedAddress = requires {
  S({"127.0.0.1", 0});
};

}  // namespace

TEST_CASE("a forking server takes a braced address like every other server", "[tcp][udp][forking]") {
  // Library bug: ForkingMixIn's forwarding constructor cannot take a braced list, so
  // `ForkingTCPServer<H> server({"127.0.0.1", 0});` does not compile. The other tests spell
  // Address("127.0.0.1", 0) instead.
  STATIC_REQUIRE(ConstructibleFromBracedAddress<socketserver::TCPServer<StreamEcho>>);
  CHECK(ConstructibleFromBracedAddress<socketserver::ForkingTCPServer<StreamEcho>>);
  CHECK(ConstructibleFromBracedAddress<socketserver::ForkingUDPServer<DatagramEcho>>);
}

TEST_CASE("ForkingTCPServer serves the echo scenario", "[tcp][forking]") {
  test::TempDir dir;
  socketserver::ForkingTCPServer<StreamEcho> server(Address("127.0.0.1", 0));
  test::check_echo_scenario(server, dir, [&] {
    CHECK(server.active_children.empty());
    CHECK(no_children_left());
  });
}

TEST_CASE("ForkingUDPServer serves the echo scenario", "[udp][forking]") {
  test::TempDir dir;
  socketserver::ForkingUDPServer<DatagramEcho> server(Address("127.0.0.1", 0));
  test::check_echo_scenario(server, dir, [&] {
    CHECK(server.active_children.empty());
    CHECK(no_children_left());
  });
}

TEST_CASE("ForkingUnixStreamServer serves the echo scenario", "[unix][forking]") {
  test::TempDir dir;
  socketserver::ForkingUnixStreamServer<StreamEcho> server(dir.path("server.sock"));
  test::check_echo_scenario(server, dir, [&] {
    CHECK(server.active_children.empty());
    CHECK(no_children_left());
  });
}

TEST_CASE("ForkingUnixDatagramServer serves the echo scenario", "[unix][forking]") {
  test::TempDir dir;
  socketserver::ForkingUnixDatagramServer<DatagramEcho> server(dir.path("server.sock"));
  test::check_echo_scenario(server, dir, [&] {
    CHECK(server.active_children.empty());
    CHECK(no_children_left());
  });
}

TEST_CASE("a forking server never reaps a child the program forked itself", "[tcp][forking]") {
  // CPython's test_ForkingTCPServer forks a child of its own that the server must leave alone.
  const pid_t own = ::fork();
  if (own == 0) ::_exit(7);
  REQUIRE(own > 0);
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(own), &info, WEXITED | WNOWAIT) == 0);  // exited, not reaped
  {
    test::TempDir dir;
    socketserver::ForkingTCPServer<StreamEcho> server(Address("127.0.0.1", 0));
    server.max_children = 1;  // also takes the path that waits for a child to exit
    {
      test::ServerThread serving(server, 10ms);
      for (int i = 0; i < 3; ++i) {
        auto peer = test::connect_to(server, dir, "client");
        peer.send("line\n");
        CHECK(peer.reply() == "line\n");
      }
      serving.stop();
    }
    server.server_close();
    CHECK(server.active_children.empty());
  }
  int status = 0;
  CHECK(::waitpid(own, &status, WNOHANG) == own);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);
  CHECK(no_children_left());
}

TEST_CASE("a child exits with status 0 after success and 1 after an error", "[tcp][forking]") {
  ReportingServer server;
  struct Case {
    const char* request;
    const char* reply;
    int status;
  };
  for (const Case& c : {Case{"fine\n", "ok\n", 0}, Case{"raise\n", "error handled", 1}}) {
    CAPTURE(c.request);
    auto client = test::Client::connect(server.server_address());
    client.send(c.request);
    server.handle_request();  // forks and returns; nothing reaps the child but this test
    const pid_t pid = parse_pid(client.recv_line());
    REQUIRE(pid > 0);
    CHECK(server.active_children.count(pid) == 1);
    CHECK_THAT(client.recv_all(), Catch::StartsWith(c.reply));
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == c.status);
  }
  server.server_close();
  CHECK(server.active_children.empty());  // reaped by the test: gone all the same
}

TEST_CASE("handle_error runs in the child, and the parent keeps serving", "[tcp][forking]") {
  ReportingServer server;
  test::ServerThread serving(server, 10ms);

  auto failing = test::Client::connect(server.server_address());
  failing.send("raise\n");
  const pid_t child = parse_pid(failing.recv_line());
  REQUIRE(child > 0);
  CHECK(child != ::getpid());
  CHECK(failing.recv_all() == fmt::format("error handled in {}: boom\n", child));

  auto next = test::Client::connect(server.server_address());
  next.send("fine\n");
  const pid_t second = parse_pid(next.recv_line());
  CHECK(second > 0);
  CHECK(second != child);
  CHECK(next.recv_all() == "ok\n");

  serving.stop();
  server.server_close();
  CHECK(server.active_children.empty());
  CHECK(no_children_left());
}

TEST_CASE("max_children holds a request back until a child exits", "[tcp][forking]") {
  socketserver::ForkingTCPServer<HoldUntilReleased> server(Address("127.0.0.1", 0));
  CHECK(server.max_children == 40);  // Python's default
  server.max_children = 2;
  children = &server.active_children;
  test::ServerThread serving(server, 10ms);
  // Accepted in connection order: a and b are forked at once; c must wait for a slot.
  auto a = test::Client::connect(server.server_address());
  auto b = test::Client::connect(server.server_address());
  auto c = test::Client::connect(server.server_address());
  CHECK(a.recv_line() == "started beside 0\n");
  CHECK(b.recv_line() == "started beside 1\n");
  a.send("go\n");
  CHECK(a.recv_all() == "done\n");
  // Without the limit c would have been forked beside a and b.
  CHECK(c.recv_line() == "started beside 1\n");
  b.send("go\n");
  c.send("go\n");
  CHECK(b.recv_all() == "done\n");
  CHECK(c.recv_all() == "done\n");
  serving.stop();
  server.server_close();
  CHECK(server.active_children.empty());
  CHECK(no_children_left());
}

TEST_CASE("the child closes its copy of the listening socket", "[tcp][unix][forking]") {
  test::TempDir dir;
  socketserver::ForkingTCPServer<ListeningSocketState> tcp(Address("127.0.0.1", 0));
  socketserver::ForkingUnixStreamServer<ListeningSocketState> unix_stream(dir.path("server.sock"));
  auto tcp_client = test::Client::connect(tcp.server_address());
  auto unix_client = test::Client::connect(unix_stream.server_address());
  tcp.handle_request();
  unix_stream.handle_request();
  CHECK(tcp_client.recv_all() == "closed\n");
  CHECK(unix_client.recv_all() == "closed\n");
  CHECK(test::fd_is_open(tcp.fileno()));  // the parent's copy stays open
  CHECK(test::fd_is_open(unix_stream.fileno()));
  tcp.server_close();
  unix_stream.server_close();
  CHECK(no_children_left());
}

TEST_CASE("a forking server's timeout defaults to 300 seconds", "[tcp][udp][forking]") {
  socketserver::ForkingTCPServer<StreamEcho> tcp(Address("127.0.0.1", 0));
  REQUIRE(tcp.timeout.has_value());
  CHECK(tcp.timeout->count() == 300.0);
  CHECK(tcp.block_on_close);
  CHECK(tcp.active_children.empty());
  socketserver::ForkingUDPServer<DatagramEcho> udp(Address("127.0.0.1", 0));
  REQUIRE(udp.timeout.has_value());
  CHECK(udp.timeout->count() == 300.0);
}

TEST_CASE("server_close does not wait for children when block_on_close is off", "[tcp][forking]") {
  socketserver::ForkingTCPServer<HoldUntilReleased> server(Address("127.0.0.1", 0));
  server.block_on_close = false;
  children = &server.active_children;
  auto client = test::Client::connect(server.server_address());
  server.handle_request();
  CHECK(client.recv_line() == "started beside 0\n");
  REQUIRE(server.active_children.size() == 1);
  const pid_t pid = *server.active_children.begin();

  auto closing = std::async(std::launch::async, [&] { server.server_close(); });
  const bool returned = closing.wait_for(bound) == std::future_status::ready;
  client.send("go\n");  // release the child, so that a server_close() that waits can end
  closing.wait();
  CHECK(returned);
  CHECK(server.fileno() == -1);
  CHECK(client.recv_all() == "done\n");
  int status = 0;
  CHECK(::waitpid(pid, &status, 0) == pid);  // the test reaps it; the server left it running
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
