// ThreadingMixIn and its four servers: the echo round trip, concurrent requests, reaping of
// finished threads, server_close() with block_on_close and daemon_threads, shutdown() from a
// request thread, and errors raised on request threads.
#include <catch2/catch.hpp>

#include <pthread.h>

#include <asio/post.hpp>
#include <atomic>
#include <chrono>
#include <concepts>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/threading_mixin.hpp>
#include <socketserver/threading_servers.hpp>

#include "echo_scenario.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::Address;
using socketserver::Request;

namespace {

using test::bound;

// Lets the test hold request "A" until request "B" has been answered.
struct Concurrency {
  std::promise<void> a_started;
  std::promise<void> b_answered;
  std::shared_future<void> b_answered_future = b_answered.get_future().share();
};
Concurrency* concurrency = nullptr;  // set by the test that uses it

// The echo reply, except that "A\n" waits (boundedly) for the test to report B answered.
std::string respond(const std::string& text) {
  if (text != "A\n" || concurrency == nullptr) return text;
  concurrency->a_started.set_value();
  const bool b_first = concurrency->b_answered_future.wait_for(bound) == std::future_status::ready;
  return b_first ? "A after B\n" : "A timed out\n";
}

struct StreamEcho : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) wfile.write(respond(*line));
  }
};

struct DatagramEcho : socketserver::DatagramRequestHandler {
  void handle() override { wfile.write(respond(std::string(packet))); }
};

// Request A blocks until request B has been answered: only a server that runs them at once
// can answer B.
template <class Server>
void check_two_at_once(Server& server, const test::TempDir& dir) {
  Concurrency state;
  concurrency = &state;
  {
    test::ServerThread serving(server);
    auto a = test::connect_to(server, dir, "a");
    a.send("A\n");
    auto a_started = state.a_started.get_future();
    REQUIRE(test::ready(a_started));
    auto b = test::connect_to(server, dir, "b");
    b.send("B\n");
    CHECK(b.reply() == "B\n");
    state.b_answered.set_value();
    CHECK(a.reply() == "A after B\n");
    serving.stop();
  }
  server.server_close();
  concurrency = nullptr;
}

// Lets the test hold a request's handler until it releases it.
struct Gate {
  std::promise<void> started;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> finished{false};
};
Gate* gate = nullptr;

struct Blocking : socketserver::StreamRequestHandler {
  void handle() override {
    gate->started.set_value();
    gate->released.wait_for(bound);
    gate->finished.store(true);
  }
};

// A datagram handler that replies only once the test releases it.
struct BlockingDatagram : socketserver::DatagramRequestHandler {
  void handle() override {
    gate->started.set_value();
    gate->released.wait_for(bound);
    wfile.write("late reply\n");
  }
};

struct ShutdownFromHandler : socketserver::StreamRequestHandler {
  void handle() override {
    server->shutdown();  // from a request thread: waits until the loop has ended
    wfile.write("bye\n");
  }
};

// Where a failing request ran, and where its error was handled.
struct ErrorThreads {
  std::promise<std::thread::id> handler;
  std::promise<std::thread::id> handle_error;
  std::string message;
};
ErrorThreads* error_threads = nullptr;

struct RaiseOnRequest : socketserver::StreamRequestHandler {
  void handle() override {
    auto line = rfile.readline();
    if (line && *line == "raise\n") {
      error_threads->handler.set_value(std::this_thread::get_id());
      throw std::runtime_error("boom");
    }
    if (line) wfile.write(*line);
  }
};

struct ExitOnRequest : socketserver::StreamRequestHandler {
  void handle() override {
    auto line = rfile.readline();
    if (line && *line == "exit\n") pthread_exit(nullptr);
    if (line) wfile.write(*line);
  }
};

}  // namespace

TEST_CASE("ThreadingTCPServer serves the echo scenario", "[tcp][threading]") {
  test::TempDir dir;
  socketserver::ThreadingTCPServer<StreamEcho> server({"127.0.0.1", 0});
  test::check_echo_scenario(server, dir, [&] { CHECK(server.thread_count() == 0); });
}

TEST_CASE("ThreadingUDPServer serves the echo scenario", "[udp][threading]") {
  test::TempDir dir;
  socketserver::ThreadingUDPServer<DatagramEcho> server({"127.0.0.1", 0});
  test::check_echo_scenario(server, dir, [&] { CHECK(server.thread_count() == 0); });
}

TEST_CASE("ThreadingUnixStreamServer serves the echo scenario", "[unix][threading]") {
  test::TempDir dir;
  socketserver::ThreadingUnixStreamServer<StreamEcho> server(dir.path("server.sock"));
  test::check_echo_scenario(server, dir, [&] { CHECK(server.thread_count() == 0); });
}

TEST_CASE("ThreadingUnixDatagramServer serves the echo scenario", "[unix][threading]") {
  test::TempDir dir;
  socketserver::ThreadingUnixDatagramServer<DatagramEcho> server(dir.path("server.sock"));
  test::check_echo_scenario(server, dir, [&] { CHECK(server.thread_count() == 0); });
}

TEST_CASE("ThreadingTCPServer serves two clients at once", "[tcp][threading]") {
  test::TempDir dir;
  socketserver::ThreadingTCPServer<StreamEcho> server({"127.0.0.1", 0});
  check_two_at_once(server, dir);
}

TEST_CASE("ThreadingUDPServer serves two datagrams at once", "[udp][threading]") {
  test::TempDir dir;
  socketserver::ThreadingUDPServer<DatagramEcho> server({"127.0.0.1", 0});
  check_two_at_once(server, dir);
}

TEST_CASE("ThreadingUnixStreamServer serves two clients at once", "[unix][threading]") {
  test::TempDir dir;
  socketserver::ThreadingUnixStreamServer<StreamEcho> server(dir.path("server.sock"));
  check_two_at_once(server, dir);
}

TEST_CASE("ThreadingUnixDatagramServer serves two datagrams at once", "[unix][threading]") {
  test::TempDir dir;
  socketserver::ThreadingUnixDatagramServer<DatagramEcho> server(dir.path("server.sock"));
  check_two_at_once(server, dir);
}

TEST_CASE("finished request threads are joined at the next request", "[tcp][threading]") {
  // CPython's test_threads_reaped: the join list holds only live threads.
  socketserver::ThreadingTCPServer<StreamEcho> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  int wrong_replies = 0;
  for (int i = 0; i < 50; ++i) {
    auto client = test::Client::connect(server.server_address());
    client.send("request\n");
    client.shutdown_write();
    wrong_replies += client.recv_all() != "request\n";
  }
  CHECK(wrong_replies == 0);
  // The last request's thread, and perhaps the one before if it was still exiting.
  CHECK(server.thread_count() <= 2);
}

TEST_CASE("a threading server can be closed without ever serving", "[tcp][udp][threading]") {
  // CPython's test_close_immediately.
  socketserver::ThreadingTCPServer<StreamEcho> tcp({"127.0.0.1", 0});
  tcp.server_close();
  CHECK(tcp.fileno() == -1);
  CHECK(tcp.thread_count() == 0);
  socketserver::ThreadingUDPServer<DatagramEcho> udp({"127.0.0.1", 0});
  udp.server_close();
  CHECK(udp.fileno() == -1);
  CHECK(udp.thread_count() == 0);
}

TEST_CASE("server_close waits for a running request thread when block_on_close is set", "[tcp][threading]") {
  struct Server : socketserver::ThreadingTCPServer<Blocking> {
    Server() : ThreadingMixIn({"127.0.0.1", 0}) {}
    std::promise<void> closing;
    bool closed = false;
    void server_close() override {
      if (!std::exchange(closed, true)) closing.set_value();  // the first call only
      ThreadingMixIn::server_close();
    }
  };
  Gate state;
  gate = &state;
  Server server;
  CHECK(server.block_on_close);  // Python's default
  CHECK_FALSE(server.daemon_threads);
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  auto started = state.started.get_future();
  REQUIRE(test::ready(started));
  serving.stop();  // the loop ends; the request thread goes on
  std::atomic<bool> finished_when_closed{false};
  std::thread closer([&] {
    server.server_close();
    finished_when_closed = state.finished.load();
  });
  auto closing = server.closing.get_future();
  CHECK(test::ready(closing));
  state.release.set_value();  // only now may the handler finish
  closer.join();
  CHECK(finished_when_closed);
  CHECK(server.thread_count() == 0);
  CHECK(client.recv_all().empty());
}

TEST_CASE("server_close does not wait for daemon threads", "[tcp][threading]") {
  Gate state;
  gate = &state;
  socketserver::ThreadingTCPServer<Blocking> server({"127.0.0.1", 0});
  server.daemon_threads = true;
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  auto started = state.started.get_future();
  REQUIRE(test::ready(started));
  serving.stop();
  auto closing = std::async(std::launch::async, [&] { server.server_close(); });
  const bool returned = closing.wait_for(bound) == std::future_status::ready;
  const bool finished_before = state.finished.load();
  state.release.set_value();  // let the handler end so that the destructor can join it
  closing.wait();
  CHECK(returned);
  CHECK_FALSE(finished_before);
  CHECK(server.fileno() == -1);
  CHECK(client.recv_all().empty());  // the request thread finished and shut the request down
}

TEST_CASE("shutdown from a request thread returns and ends the loop", "[tcp][threading]") {
  socketserver::ThreadingTCPServer<ShutdownFromHandler> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  // "bye" is written only after shutdown() returned, which it does once the loop has ended.
  CHECK(client.recv_all() == "bye\n");
  serving.join();  // the loop ended without the test calling shutdown()
}

TEST_CASE("a request thread's exception goes to handle_error on that thread, and serving goes on", "[tcp][threading]") {
  struct Server : socketserver::ThreadingTCPServer<RaiseOnRequest> {
    Server() : ThreadingMixIn({"127.0.0.1", 0}) {}
    void handle_error(Request&, const Address&) override {
      error_threads->message = socketserver::detail::current_exception_message();
      error_threads->handle_error.set_value(std::this_thread::get_id());
    }
  };
  ErrorThreads state;
  error_threads = &state;
  Server server;
  std::promise<std::thread::id> serving_id;
  asio::post(server.get_executor(), [&] { serving_id.set_value(std::this_thread::get_id()); });
  test::ServerThread serving(server);

  auto failing = test::Client::connect(server.server_address());
  failing.send("raise\n");
  auto handler_thread = state.handler.get_future();
  auto error_thread = state.handle_error.get_future();
  auto serving_thread = serving_id.get_future();
  REQUIRE(test::ready(handler_thread));
  REQUIRE(test::ready(error_thread));
  REQUIRE(test::ready(serving_thread));
  const auto handler_id = handler_thread.get();
  CHECK(error_thread.get() == handler_id);
  CHECK(handler_id != serving_thread.get());
  CHECK(state.message == "boom");
  CHECK(failing.recv_all().empty());

  auto next = test::Client::connect(server.server_address());
  next.send("still serving\n");
  next.shutdown_write();
  CHECK(next.recv_all() == "still serving\n");
}

TEST_CASE("an exiting request thread skips handle_error but its request is shut down", "[tcp][threading]") {
  struct Server : socketserver::ThreadingTCPServer<ExitOnRequest> {
    Server() : ThreadingMixIn({"127.0.0.1", 0}) {}
    std::atomic<int> errors{0}, shutdowns{0};
    void handle_error(Request&, const Address&) override { ++errors; }
    void shutdown_request(Request& r) override {
      ++shutdowns;
      ThreadingMixIn::shutdown_request(r);
    }
  };
  Server server;
  test::ServerThread serving(server);
  auto exiting = test::Client::connect(server.server_address());
  exiting.send("exit\n");
  CHECK(exiting.recv_all().empty());  // shut down as the thread unwound
  auto next = test::Client::connect(server.server_address());
  next.send("still serving\n");
  next.shutdown_write();
  CHECK(next.recv_all() == "still serving\n");
  serving.stop();
  server.server_close();  // joins both request threads
  CHECK(server.errors == 0);
  CHECK(server.shutdowns == 2);
}

TEST_CASE("a datagram server's server_close lets running handlers reply before closing the socket",
          "[udp][threading]") {
  // The handlers reply through the server's socket: closing it first would lose the reply, and
  // a descriptor closed under a running sendto() could even be reused by another file.
  Gate state;
  gate = &state;
  socketserver::ThreadingUDPServer<BlockingDatagram> server({"127.0.0.1", 0});
  server.daemon_threads = true;  // not even a daemon thread may outlive the socket it uses
  test::ServerThread serving(server);
  auto client = test::Client::datagram(server.server_address());
  client.send("ping");
  auto started = state.started.get_future();
  REQUIRE(test::ready(started));
  serving.stop();
  auto closing = std::async(std::launch::async, [&] { server.server_close(); });
  // server_close() must wait for the handler; the wait that expires here is the proof.
  CHECK(closing.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  state.release.set_value();
  CHECK(client.recv() == "late reply\n");
  closing.wait();
  CHECK(server.fileno() == -1);
}
