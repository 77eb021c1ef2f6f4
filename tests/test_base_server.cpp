// BaseServer: the serve loop, shutdown, handle_request, and the order of the request hooks.
#include <catch2/catch.hpp>

#include <pthread.h>

#include <algorithm>
#include <asio/post.hpp>
#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <socketserver/base_server.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/tcp_server.hpp>

#include "echo_scenario.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::Address;
using socketserver::Request;

namespace {

using Echo = test::LineEcho;

struct ShutdownFromHandler : socketserver::StreamRequestHandler {
  void handle() override {
    server->shutdown();
    wfile.write("bye\n");
  }
};

// Records every hook call, in order.
class Recorder {
 public:
  void add(std::string event) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> events_;
};

Recorder* recorder = nullptr;  // the handler reaches the test's recorder through this

struct RecordingHandler : socketserver::StreamRequestHandler {
  void setup() override {
    recorder->add("setup");
    StreamRequestHandler::setup();
  }
  void handle() override {
    recorder->add("handle");
    if (auto line = rfile.readline(); line && *line == "raise\n") throw std::runtime_error("boom");
    wfile.write("ok\n");
  }
  void finish() override {
    recorder->add("finish");
    StreamRequestHandler::finish();
  }
};

class RecordingServer : public socketserver::TCPServer<RecordingHandler> {
 public:
  RecordingServer() : TCPServer({"127.0.0.1", 0}) {}
  bool accept = true;
  bool verify_request(Request& r, const Address& a) override {
    recorder->add("verify_request");
    return accept && TCPServer::verify_request(r, a);
  }
  void process_request(Request& r, const Address& a) override {
    recorder->add("process_request");
    TCPServer::process_request(r, a);
  }
  void finish_request(Request& r, const Address& a) override {
    recorder->add("finish_request");
    TCPServer::finish_request(r, a);
  }
  void shutdown_request(Request& r) override {
    recorder->add("shutdown_request");
    TCPServer::shutdown_request(r);
  }
  void close_request(Request& r) override {
    recorder->add("close_request");
    TCPServer::close_request(r);
  }
  void handle_error(Request&, const Address&) override {
    recorder->add("handle_error: " + socketserver::detail::current_exception_message());
  }
};

}  // namespace

TEST_CASE("serve_forever serves requests until shutdown from another thread", "[base_server]") {
  socketserver::TCPServer<Echo> server({"127.0.0.1", 0});
  {
    test::ServerThread serving(server);
    for (int i = 0; i < 3; ++i) {
      auto client = test::Client::connect(server.server_address());
      client.send("line " + std::to_string(i) + "\n");
      client.shutdown_write();
      CHECK(client.recv_all() == "line " + std::to_string(i) + "\n");
    }
    serving.stop();
  }
  server.server_close();
  CHECK(server.fileno() == -1);
}

TEST_CASE("shutdown right after the serving thread starts always ends the loop", "[base_server]") {
  // CPython's test_shutdown: a race between serve_forever() starting and shutdown().
  for (int i = 0; i < 20; ++i) {
    socketserver::TCPServer<Echo> server({"127.0.0.1", 0});
    std::thread t([&] { server.serve_forever(0.01s); });
    server.shutdown();
    t.join();
  }
  SUCCEED("all 20 loops ended");
}

TEST_CASE("shutdown before serve_forever makes the next serve_forever return at once", "[base_server]") {
  socketserver::TCPServer<Echo> server({"127.0.0.1", 0});
  server.shutdown();            // nothing is serving: returns without waiting
  server.serve_forever(3600s);  // returns at once: the request is pending
  // The request was consumed: a new loop serves again.
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  client.send("again\n");
  client.shutdown_write();
  CHECK(client.recv_all() == "again\n");
}

TEST_CASE("shutdown from a handler on the serving thread does not deadlock", "[base_server]") {
  socketserver::TCPServer<ShutdownFromHandler> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  CHECK(client.recv_all() == "bye\n");  // the handler finished its request after shutdown()
  serving.join();                       // and the loop ended by itself
}

TEST_CASE("serve_forever refuses to run twice at once", "[base_server]") {
  socketserver::TCPServer<Echo> server({"127.0.0.1", 0});
  std::promise<void> running;
  asio::post(server.get_executor(), [&] { running.set_value(); });
  test::ServerThread serving(server);
  running.get_future().wait();
  CHECK_THROWS_AS(server.serve_forever(), std::logic_error);
}

TEST_CASE("work posted to the executor runs on the serving thread", "[base_server]") {
  socketserver::TCPServer<Echo> server({"127.0.0.1", 0});
  std::promise<std::thread::id> ran_on;
  asio::post(server.get_executor(), [&] { ran_on.set_value(std::this_thread::get_id()); });
  std::thread::id serving_id;
  std::thread t([&] {
    serving_id = std::this_thread::get_id();
    server.serve_forever(3600s);
  });
  const auto id = ran_on.get_future().get();
  server.shutdown();
  t.join();
  CHECK(id == serving_id);
}

TEST_CASE("handle_request times out into handle_timeout", "[base_server]") {
  struct Server : socketserver::TCPServer<Echo> {
    Server() : TCPServer({"127.0.0.1", 0}) {}
    int timeouts = 0;
    void handle_timeout() override { ++timeouts; }
  } server;
  server.timeout = 0.05s;
  const auto start = std::chrono::steady_clock::now();
  server.handle_request();
  CHECK(server.timeouts == 1);
  CHECK(std::chrono::steady_clock::now() - start >= 50ms);
}

TEST_CASE("handle_request handles one waiting request", "[base_server]") {
  struct Server : socketserver::TCPServer<Echo> {
    Server() : TCPServer({"127.0.0.1", 0}) {}
    int timeouts = 0;
    void handle_timeout() override { ++timeouts; }
  } server;
  server.timeout = 10s;
  auto client = test::Client::connect(server.server_address());  // queued by listen()
  client.send("one\n");
  client.shutdown_write();
  server.handle_request();
  CHECK(server.timeouts == 0);
  CHECK(client.recv_all() == "one\n");
}

TEST_CASE("service_actions runs every poll_interval while idle", "[base_server]") {
  struct Server : socketserver::TCPServer<Echo> {
    Server() : TCPServer({"127.0.0.1", 0}) {}
    int calls = 0;
    void service_actions() override {
      if (++calls == 3) shutdown();  // from the serving thread: returns at once
    }
  } server;
  server.serve_forever(0.01s);  // returns after the third call, with no request ever made
  CHECK(server.calls == 3);
}

TEST_CASE("hooks run in Python's order for an accepted request", "[base_server][hooks]") {
  Recorder events;
  recorder = &events;
  RecordingServer server;
  auto client = test::Client::connect(server.server_address());
  client.send("hello\n");
  server.handle_request();
  CHECK(client.recv_all() == "ok\n");
  CHECK(events.events() == std::vector<std::string>{"verify_request", "process_request", "finish_request", "setup",
                                                    "handle", "finish", "shutdown_request", "close_request"});
}

TEST_CASE("verify_request returning false shuts the request down unanswered", "[base_server][hooks]") {
  Recorder events;
  recorder = &events;
  RecordingServer server;
  server.accept = false;
  auto client = test::Client::connect(server.server_address());
  client.send("hello\n");
  server.handle_request();
  CHECK(client.recv_all().empty());
  CHECK(events.events() == std::vector<std::string>{"verify_request", "shutdown_request", "close_request"});
}

TEST_CASE("a handler exception reaches handle_error once, after finish, and the server goes on",
          "[base_server][hooks]") {
  Recorder events;
  recorder = &events;
  RecordingServer server;
  auto client = test::Client::connect(server.server_address());
  client.send("raise\n");
  server.handle_request();
  CHECK(client.recv_all().empty());
  CHECK(events.events() == std::vector<std::string>{"verify_request", "process_request", "finish_request", "setup",
                                                    "handle", "finish", "handle_error: boom", "shutdown_request",
                                                    "close_request"});
  auto second = test::Client::connect(server.server_address());
  second.send("fine\n");
  server.handle_request();
  CHECK(second.recv_all() == "ok\n");
}

TEST_CASE("an exiting exception (thread cancellation) is not passed to handle_error", "[base_server][hooks]") {
  // C++'s counterpart of Python's SystemExit: pthread_exit() unwinds with abi::__forced_unwind,
  // which must pass through every catch (...) untouched.
  struct Exit : socketserver::StreamRequestHandler {
    void handle() override { pthread_exit(nullptr); }
  };
  struct Server : socketserver::TCPServer<Exit> {
    Server() : TCPServer({"127.0.0.1", 0}) {}
    std::atomic<int> errors{0}, shutdowns{0};
    void handle_error(Request&, const Address&) override { ++errors; }
    void shutdown_request(Request& r) override {
      ++shutdowns;
      TCPServer::shutdown_request(r);
    }
  } server;
  auto client = test::Client::connect(server.server_address());
  std::thread t([&] { server.serve_forever(); });
  CHECK(client.recv_all().empty());  // the request was shut down as the thread unwound
  t.join();                          // the serving thread ended; serve_forever() cleaned up
  CHECK(server.errors == 0);
  CHECK(server.shutdowns == 1);
  server.shutdown();  // no loop is running: returns at once
}

TEST_CASE("the default handle_error logs one line with the peer and the message", "[base_server][hooks]") {
  struct Raise : socketserver::StreamRequestHandler {
    void handle() override { throw std::runtime_error("handler failed on purpose"); }
  };
  socketserver::TCPServer<Raise> server({"127.0.0.1", 0});
  auto client = test::Client::connect(server.server_address());
  test::StderrCapture capture;
  server.handle_request();
  const std::string log = capture.finish();
  CHECK(client.recv_all().empty());
  CHECK(std::count(log.begin(), log.end(), '\n') == 1);
  CHECK_THAT(log, Catch::Contains("handler failed on purpose"));
  CHECK_THAT(log, Catch::Contains("127.0.0.1:"));
}
