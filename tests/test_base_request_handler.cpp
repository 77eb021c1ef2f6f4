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
