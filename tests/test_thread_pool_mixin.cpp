// ThreadPoolMixIn: the four servers on a pool, the bound on threads, the two overload
// policies, draining the queue at server_close(), and errors on a worker.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/tcp_server.hpp>
#include <socketserver/thread_pool_mixin.hpp>
#include <socketserver/udp_server.hpp>
#include <socketserver/unix_datagram_server.hpp>
#include <socketserver/unix_stream_server.hpp>

#include "echo_scenario.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::Address;
using socketserver::Request;

namespace {

constexpr auto bound = 5s;

// Counts events and lets the test wait for a number of them, boundedly.
class Counter {
 public:
  void add() {
    std::lock_guard lock(mutex_);
    ++count_;
    changed_.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, bound, [&] { return count_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int count_ = 0;
};

struct Gate {
  Counter started;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
};
Gate* gate = nullptr;

// Says "started", then waits for the test before it answers.
struct Held : socketserver::StreamRequestHandler {
  void handle() override {
    gate->started.add();
    gate->released.wait_for(bound);
    wfile.write("done\n");
  }
};

struct DatagramEcho : socketserver::DatagramRequestHandler {
  void handle() override { wfile.write(rfile.read()); }
};

// A pool server that also counts the requests the serving thread has handed on.
struct HeldPool : socketserver::ThreadPoolMixIn<socketserver::TCPServer<Held>> {
  HeldPool() : ThreadPoolMixIn({"127.0.0.1", 0}) {}
  Counter dispatched;
  void process_request(Request& request, const Address& client_address) override {
    ThreadPoolMixIn::process_request(request, client_address);
    dispatched.add();
  }
};

template <class Server>
void check_pool_echo(Server& server, const test::TempDir& dir) {
  test::check_echo_scenario(server, dir, [&] { CHECK(server.worker_count() == 0); });
}

}  // namespace

TEST_CASE("a pool serves the echo scenario for every server type", "[pool][tcp][udp][unix]") {
  test::TempDir dir;
  SECTION("TCP") {
    socketserver::ThreadPoolMixIn<socketserver::TCPServer<test::LineEcho>> server({"127.0.0.1", 0});
    check_pool_echo(server, dir);
  }
  SECTION("UDP") {
    socketserver::ThreadPoolMixIn<socketserver::UDPServer<DatagramEcho>> server({"127.0.0.1", 0});
    check_pool_echo(server, dir);
  }
  SECTION("Unix stream") {
    socketserver::ThreadPoolMixIn<socketserver::UnixStreamServer<test::LineEcho>> server(dir.path("stream.sock"));
    check_pool_echo(server, dir);
  }
  SECTION("Unix datagram") {
    socketserver::ThreadPoolMixIn<socketserver::UnixDatagramServer<DatagramEcho>> server(dir.path("dgram.sock"));
    check_pool_echo(server, dir);
  }
}

TEST_CASE("no more than max_workers threads run, the rest wait in the queue", "[pool][tcp]") {
  Gate state;
  gate = &state;
  HeldPool server;
  server.max_workers = 2;
  test::ServerThread serving(server);
  std::vector<test::Client> clients;
  clients.reserve(6);
  for (int i = 0; i < 6; ++i) clients.push_back(test::Client::connect(server.server_address()));
  REQUIRE(server.dispatched.wait_for(6));
  REQUIRE(state.started.wait_for(2));
  CHECK(server.worker_count() == 2);
  CHECK(server.queued() == 4);
  state.release.set_value();
  for (auto& client : clients) CHECK(client.recv_all() == "done\n");
  CHECK(server.worker_count() == 2);
  CHECK(server.refused() == 0);
}

TEST_CASE("with overload = refuse, a request beyond workers and queue is shut down and logged", "[pool][tcp]") {
  Gate state;
  gate = &state;
  HeldPool server;
  server.max_workers = 1;
  server.max_queue = 1;
  server.overload = HeldPool::Overload::refuse;
  test::ServerThread serving(server);
  auto busy = test::Client::connect(server.server_address());
  REQUIRE(state.started.wait_for(1));
  auto queued = test::Client::connect(server.server_address());
  REQUIRE(server.dispatched.wait_for(2));
  test::StderrCapture capture;
  auto refused = test::Client::connect(server.server_address());
  REQUIRE(server.dispatched.wait_for(3));
  const std::string log = capture.finish();
  CHECK(refused.recv_all().empty());
  CHECK(server.refused() == 1);
  CHECK_THAT(log, Catch::Contains("pool full, refusing request from 127.0.0.1:"));
  state.release.set_value();
  CHECK(busy.recv_all() == "done\n");
  CHECK(queued.recv_all() == "done\n");
}

TEST_CASE("with overload = wait, the serving thread waits for room instead of refusing", "[pool][tcp]") {
  Gate state;
  gate = &state;
  HeldPool server;
  server.max_workers = 1;
  server.max_queue = 0;
  test::ServerThread serving(server);
  auto first = test::Client::connect(server.server_address());
  REQUIRE(state.started.wait_for(1));
  auto second = test::Client::connect(server.server_address());
  // The serving thread now waits inside process_request() for the one worker.
  state.release.set_value();
  CHECK(first.recv_all() == "done\n");
  CHECK(second.recv_all() == "done\n");
  CHECK(server.refused() == 0);
  CHECK(server.worker_count() == 1);
}

TEST_CASE("server_close serves the queued requests, then joins the workers", "[pool][tcp]") {
  Gate state;
  gate = &state;
  HeldPool server;
  server.max_workers = 1;
  test::ServerThread serving(server);
  auto first = test::Client::connect(server.server_address());
  auto second = test::Client::connect(server.server_address());
  REQUIRE(server.dispatched.wait_for(2));
  serving.stop();
  auto closing = std::async(std::launch::async, [&] { server.server_close(); });
  state.release.set_value();
  closing.wait();
  CHECK(first.recv_all() == "done\n");
  CHECK(second.recv_all() == "done\n");
  CHECK(server.worker_count() == 0);
  CHECK(server.fileno() == -1);
}

TEST_CASE("a handler's exception goes to handle_error on the worker, and the pool goes on", "[pool][tcp]") {
  struct Raise : socketserver::StreamRequestHandler {
    void handle() override {
      if (auto line = rfile.readline(); line && *line == "raise\n") throw std::runtime_error("boom");
      wfile.write("fine\n");
    }
  };
  struct Server : socketserver::ThreadPoolMixIn<socketserver::TCPServer<Raise>> {
    Server() : ThreadPoolMixIn({"127.0.0.1", 0}) {}
    std::atomic<int> errors{0};
    void handle_error(Request&, const Address&) override { ++errors; }
  } server;
  server.max_workers = 1;
  test::ServerThread serving(server);
  auto failing = test::Client::connect(server.server_address());
  failing.send("raise\n");
  CHECK(failing.recv_all().empty());
  auto next = test::Client::connect(server.server_address());
  next.send("hello\n");
  CHECK(next.recv_all() == "fine\n");
  CHECK(server.errors == 1);
  CHECK(server.worker_count() == 1);
}
