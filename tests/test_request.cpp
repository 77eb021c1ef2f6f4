// The request kinds: StreamRequest, AsyncStreamRequest and DatagramRequest, and what each does
// and does not offer (checked at compile time).
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <socketserver/async/stream_request.hpp>
#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/base_request_handler.hpp>
#include <socketserver/datagram_request.hpp>
#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/io/memory_stream.hpp>
#include <socketserver/io/stream_layer.hpp>
#include <socketserver/stream_request.hpp>
#include <socketserver/stream_request_handler.hpp>

namespace {
class FakeSocket final : public socketserver::DatagramSocket {
 public:
  void sendto(std::string_view data, const socketserver::Address& to) override {
    sent = std::string(data) + "@" + to.to_string();
  }
  int native_handle() const noexcept override { return 42; }
  std::string sent;
};

template <class R>
concept HasBlockingCalls = requires(R& r) {
  r.recv(1);
  r.sendall("x");
};
template <class R>
concept HasPacket = requires(R& r) {
  r.packet();
};
template <class R>
concept HasStream = requires(R& r) {
  r.stream();
};

// A coroutine handler cannot make a blocking call on its connection, nor a stream handler take
// a packet: the wrong call does not compile.
static_assert(HasBlockingCalls<socketserver::StreamRequest>);
static_assert(!HasBlockingCalls<socketserver::AsyncStreamRequest>);
static_assert(!HasStream<socketserver::AsyncStreamRequest>);
static_assert(!HasBlockingCalls<socketserver::DatagramRequest>);
static_assert(HasPacket<socketserver::DatagramRequest>);
static_assert(!HasPacket<socketserver::StreamRequest>);
// Each handler sees its own kind.
static_assert(std::is_same_v<decltype(socketserver::StreamRequestHandler::request), socketserver::StreamRequest*>);
static_assert(std::is_same_v<decltype(socketserver::BaseRequestHandler::request), socketserver::StreamRequest*>);
static_assert(std::is_same_v<decltype(socketserver::DatagramRequestHandler::request), socketserver::DatagramRequest*>);
static_assert(
    std::is_same_v<decltype(socketserver::AsyncStreamRequestHandler::request), socketserver::AsyncStreamRequest*>);
// The hooks take the common base.
static_assert(std::is_base_of_v<socketserver::Request, socketserver::StreamRequest>);
static_assert(std::is_base_of_v<socketserver::Request, socketserver::AsyncStreamRequest>);
static_assert(std::is_base_of_v<socketserver::Request, socketserver::DatagramRequest>);
static_assert(!std::is_copy_constructible_v<socketserver::StreamRequest>);
}  // namespace

TEST_CASE("an empty request is false and has no descriptor", "[request]") {
  socketserver::StreamRequest stream;
  CHECK_FALSE(stream);
  CHECK(stream.fileno() == -1);
  socketserver::DatagramRequest datagram;
  CHECK_FALSE(datagram);
  CHECK(datagram.fileno() == -1);
  socketserver::AsyncStreamRequest async;
  CHECK_FALSE(async);
}

TEST_CASE("a stream request offers Python's recv and sendall", "[request]") {
  auto memory = std::make_unique<socketserver::MemoryStream>("ping");
  auto& stream = *memory;
  socketserver::StreamRequest r(std::move(memory));
  CHECK(r);
  CHECK(&r.stream() == &stream);
  CHECK(r.recv(10) == "ping");
  CHECK(r.recv(10).empty());
  r.sendall("pong");
  CHECK(stream.output() == "pong");
  CHECK(r.proxy_header() == nullptr);  // no server, no PROXY header
}

TEST_CASE("a datagram request holds the packet and the socket to answer from", "[request]") {
  FakeSocket socket;
  socketserver::DatagramRequest r("packet", socket);
  CHECK(r);
  CHECK(r.packet() == "packet");
  CHECK(r.fileno() == 42);
  r.socket().sendto("reply", socketserver::Address("127.0.0.1", 5));
  CHECK(socket.sent == "reply@127.0.0.1:5");
}

TEST_CASE("moving a request leaves the source empty", "[request]") {
  socketserver::StreamRequest a(std::make_unique<socketserver::MemoryStream>("x"));
  socketserver::StreamRequest b = std::move(a);
  CHECK(b);
  CHECK(b.recv(1) == "x");
  CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is the point
}

TEST_CASE("moving a datagram request leaves the source empty too", "[request]") {
  FakeSocket socket;
  socketserver::DatagramRequest a("packet", socket);
  socketserver::DatagramRequest b;
  b = std::move(a);
  CHECK(b.packet() == "packet");
  CHECK(&b.socket() == &socket);
  CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is the point
}

TEST_CASE("closing a stream request through the Request base closes its stream", "[request]") {
  // A layer that records close(): StreamLayer forwards everything else to the memory below.
  struct Closing final : socketserver::StreamLayer {
    explicit Closing(bool& flag) : StreamLayer(std::make_unique<socketserver::MemoryStream>("abc")), closed(flag) {}
    void close() noexcept override {
      closed = true;
      StreamLayer::close();
    }
    bool& closed;
  };
  bool closed = false;
  socketserver::StreamRequest r(std::make_unique<Closing>(closed));
  socketserver::Request& base = r;
  CHECK(r.recv(3) == "abc");
  base.close();
  CHECK(closed);
}
