// Request: what a handler serves, stream or datagram.
#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include <socketserver/io/memory_stream.hpp>
#include <socketserver/request.hpp>

namespace {
class FakeSocket final : public socketserver::DatagramSocket {
 public:
  void sendto(std::string_view data, const socketserver::Address& to) override {
    sent = std::string(data) + "@" + to.to_string();
  }
  int native_handle() const noexcept override { return 42; }
  std::string sent;
};
}  // namespace

TEST_CASE("an empty request is false and has no descriptor", "[request]") {
  socketserver::Request r;
  CHECK_FALSE(r);
  CHECK_FALSE(r.is_stream());
  CHECK(r.fileno() == -1);
  CHECK_THROWS_AS(r.stream(), std::logic_error);
  CHECK_THROWS_AS(r.socket(), std::logic_error);
}

TEST_CASE("a stream request offers Python's recv and sendall", "[request]") {
  auto memory = std::make_unique<socketserver::MemoryStream>("ping");
  auto& stream = *memory;
  socketserver::Request r(std::move(memory));
  CHECK(r);
  CHECK(r.is_stream());
  CHECK(r.recv(10) == "ping");
  CHECK(r.recv(10).empty());
  r.sendall("pong");
  CHECK(stream.output() == "pong");
  CHECK_THROWS_AS(r.socket(), std::logic_error);
}

TEST_CASE("a datagram request holds the packet and the socket to answer from", "[request]") {
  FakeSocket socket;
  socketserver::Request r("packet", socket);
  CHECK(r);
  CHECK_FALSE(r.is_stream());
  CHECK(r.packet() == "packet");
  CHECK(r.fileno() == 42);
  r.socket().sendto("reply", socketserver::Address("127.0.0.1", 5));
  CHECK(socket.sent == "reply@127.0.0.1:5");
  CHECK_THROWS_AS(r.stream(), std::logic_error);
}

TEST_CASE("moving a request leaves the source empty", "[request]") {
  socketserver::Request a(std::make_unique<socketserver::MemoryStream>("x"));
  socketserver::Request b = std::move(a);
  CHECK(b.is_stream());
  CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is the point
}

TEST_CASE("moving a datagram request leaves the source empty too", "[request]") {
  FakeSocket socket;
  socketserver::Request a("packet", socket);
  socketserver::Request b;
  b = std::move(a);
  CHECK(b.packet() == "packet");
  CHECK(&b.socket() == &socket);
  CHECK_FALSE(a);                                 // NOLINT(bugprone-use-after-move): the moved-from state is the point
  CHECK_THROWS_AS(a.socket(), std::logic_error);  // NOLINT(clang-analyzer-cplusplus.Move): as above
}
