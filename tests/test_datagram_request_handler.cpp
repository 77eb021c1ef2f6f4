// DatagramRequestHandler: rfile over the packet, wfile sent once as one datagram at finish(),
// no datagram for an empty reply, and the packet and socket members.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <string>

#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/udp_server.hpp>
#include <socketserver/unix_datagram_server.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

// Frames each piece rfile hands out, so the reply shows where readline() and read() cut.
struct Pieces : socketserver::DatagramRequestHandler {
  void handle() override {
    for (int i = 0; i < 2; ++i) {
      if (auto line = rfile.readline()) wfile.write("[" + *line + "]");
    }
    wfile.write("[" + rfile.read(3) + "]");
    wfile.write("[" + rfile.read() + "]");
    wfile.write(rfile.readline() ? "[more]" : "[end]");
  }
};

// Writes its reply in three parts.
struct ThreeWrites : socketserver::DatagramRequestHandler {
  void handle() override {
    wfile.write("one,");
    wfile.write("two,");
    wfile.write("three");
  }
};

// Answers only a packet that asks for an answer.
struct AnswerIfAsked : socketserver::DatagramRequestHandler {
  void handle() override {
    if (packet == "answer me") wfile.write("answered");
  }
};

// Reports whether packet and socket are what the request holds, with a first reply sent
// through `socket` before the one wfile sends.
struct Members : socketserver::DatagramRequestHandler {
  void handle() override {
    socket->sendto("direct", client_address);
    const bool packet_set = packet == request->packet() && packet == "the packet";
    const bool socket_set = socket == &request->socket() && socket->native_handle() == server->fileno();
    wfile.write(std::string(packet_set ? "packet ok" : "packet wrong") +
                (socket_set ? ", socket ok" : ", socket wrong"));
  }
};

}  // namespace

TEST_CASE("rfile reads the packet by lines and by size", "[handler][udp]") {
  socketserver::UDPServer<Pieces> server({"127.0.0.1", 0});
  auto client = test::Client::datagram(server.server_address());
  client.send("first\nsecond\nabcdef");
  server.handle_request();
  CHECK(client.recv() == "[first\n][second\n][abc][def][end]");
}

TEST_CASE("several writes to wfile leave as one datagram", "[handler][udp]") {
  socketserver::UDPServer<ThreeWrites> server({"127.0.0.1", 0});
  auto client = test::Client::datagram(server.server_address());
  client.send("go");
  server.handle_request();
  CHECK(client.recv() == "one,two,three");  // one recv() takes exactly one datagram
}

TEST_CASE("several writes to wfile leave as one datagram over a Unix socket", "[handler][unix]") {
  test::TempDir dir;
  socketserver::UnixDatagramServer<ThreeWrites> server(dir.path("server.sock"));
  auto client = test::Client::datagram(server.server_address(), dir.path("client.sock"));
  client.send("go");
  server.handle_request();
  CHECK(client.recv() == "one,two,three");
}

TEST_CASE("an empty wfile sends no datagram", "[handler][udp]") {
  // Python sends an empty datagram here; this library sends nothing.
  socketserver::UDPServer<AnswerIfAsked> server({"127.0.0.1", 0});
  auto client = test::Client::datagram(server.server_address());
  client.send("stay quiet");
  server.handle_request();  // the handler has finished when this returns
  // Wait briefly for an answer that must not come.
  const timeval short_wait{0, 200'000};
  REQUIRE(::setsockopt(client.fd(), SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof short_wait) == 0);
  char byte;
  errno = 0;
  const ssize_t got = ::recv(client.fd(), &byte, sizeof byte, 0);
  const int error = errno;
  CHECK(got == -1);
  CHECK((error == EAGAIN || error == EWOULDBLOCK));
  // The next reply is the first datagram the client gets: no empty one was queued before it.
  client.send("answer me");
  server.handle_request();
  CHECK(client.recv() == "answered");
}

TEST_CASE("packet and socket are set, and socket sends replies of its own", "[handler][udp]") {
  socketserver::UDPServer<Members> server({"127.0.0.1", 0});
  auto client = test::Client::datagram(server.server_address());
  client.send("the packet");
  server.handle_request();
  CHECK(client.recv() == "direct");
  CHECK(client.recv() == "packet ok, socket ok");
}
