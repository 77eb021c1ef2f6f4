// BaseRequestHandler: request, client_address and server are set; setup/handle/finish order.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include <socketserver/base_request_handler.hpp>
#include <socketserver/tcp_server.hpp>

#include "test_support.hpp"

using socketserver::Address;
using socketserver::Request;

namespace {

struct Seen {
  socketserver::BaseServer* server = nullptr;
  Address client_address;
  std::string events;
};
Seen* seen = nullptr;

// Python's classic BaseRequestHandler echo: self.request.recv() / sendall().
struct RawEcho : socketserver::BaseRequestHandler {
  void handle() override {
    seen->server = server;
    seen->client_address = client_address;
    for (std::string data = request->recv(1024); !data.empty(); data = request->recv(1024)) request->sendall(data);
  }
};

struct FailingSetup : socketserver::BaseRequestHandler {
  void setup() override {
    seen->events += "setup ";
    throw std::runtime_error("setup failed");
  }
  void handle() override { seen->events += "handle "; }
  void finish() override { seen->events += "finish "; }
};

template <class Handler>
struct CountingServer : socketserver::TCPServer<Handler> {
  CountingServer() : socketserver::TCPServer<Handler>({"127.0.0.1", 0}) {}
  std::atomic<int> errors{0};
  void handle_error(Request&, const Address&) override { ++errors; }
};

}  // namespace

TEST_CASE("a handler sees its request, the peer's address and its server", "[handler]") {
  Seen s;
  seen = &s;
  CountingServer<RawEcho> server;
  auto client = test::Client::connect(server.server_address());
  client.send("raw bytes");
  client.shutdown_write();
  server.handle_request();
  CHECK(client.recv_all() == "raw bytes");
  CHECK(s.server == &server);
  sockaddr_in name{};
  socklen_t length = sizeof name;
  ::getsockname(client.fd(), reinterpret_cast<sockaddr*>(&name), &length);
  CHECK(s.client_address == Address("127.0.0.1", ntohs(name.sin_port)));
}

TEST_CASE("an exception from setup skips handle and finish and reaches handle_error", "[handler]") {
  Seen s;
  seen = &s;
  CountingServer<FailingSetup> server;
  auto client = test::Client::connect(server.server_address());
  server.handle_request();
  CHECK(client.recv_all().empty());
  CHECK(s.events == "setup ");
  CHECK(server.errors == 1);
}

namespace {

std::string wrong_type_error;

struct GreetingHandler : socketserver::BaseRequestHandler {
  void handle() override;
};

// A server subclass with state of its own, as Python's handlers reach through self.server.
struct Greeter : socketserver::TCPServer<GreetingHandler> {
  using Base = socketserver::TCPServer<GreetingHandler>;
  using Base::Base;
  std::string greeting = "hello";
};

void GreetingHandler::handle() {
  try {
    (void)server_as<socketserver::TCPServer<RawEcho>>();
  } catch (const std::logic_error& e) {
    wrong_type_error = e.what();
  }
  request->sendall(server_as<Greeter>().greeting + "\n");
}

}  // namespace

TEST_CASE("server_as<S>() gives the handler its server as its own type, checked", "[handler]") {
  Greeter server({"127.0.0.1", 0});
  server.greeting = "hi from the subclass";
  auto client = test::Client::connect(server.server_address());
  server.handle_request();
  CHECK(client.recv_all() == "hi from the subclass\n");
  CHECK(wrong_type_error == "server_as(): the handler's server is of another type");
  CHECK_THROWS_AS(socketserver::server_as<Greeter>(nullptr), std::logic_error);
}
