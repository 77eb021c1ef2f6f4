// UnixDatagramServer: the echo round trip to a client bound to its own path, the peer's path as
// client_address, and removal of the socket file on server_close().
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <string>

#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/unix_datagram_server.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

struct Echo : socketserver::DatagramRequestHandler {
  void handle() override { wfile.write(rfile.read()); }
};

// Replies with the path the datagram came from.
struct PeerPath : socketserver::DatagramRequestHandler {
  void handle() override { wfile.write(client_address.is_unix() ? client_address.path() : "<not a Unix address>"); }
};

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("UnixDatagramServer echoes a datagram for each of three clients, then closes", "[unix]") {
  test::TempDir dir;
  const std::string path = dir.path("server.sock");
  socketserver::UnixDatagramServer<Echo> server(path);
  CHECK(server.server_address().path() == path);
  CHECK(file_exists(path));
  {
    test::ServerThread serving(server);
    for (int i = 0; i < 3; ++i) {
      auto client = test::Client::datagram(server.server_address(), dir.path("client" + std::to_string(i) + ".sock"));
      client.send("datagram " + std::to_string(i) + "\n");
      CHECK(client.recv() == "datagram " + std::to_string(i) + "\n");
    }
    serving.stop();
  }
  server.server_close();
  CHECK(server.fileno() == -1);
}

TEST_CASE("server_close removes the Unix datagram socket file", "[unix]") {
  test::TempDir dir;
  const std::string path = dir.path("server.sock");
  socketserver::UnixDatagramServer<Echo> server(path);
  REQUIRE(file_exists(path));
  server.server_close();
  CHECK_FALSE(file_exists(path));
  server.server_close();  // idempotent
  CHECK(server.fileno() == -1);
}

TEST_CASE("client_address is the path the client's socket is bound to", "[unix]") {
  test::TempDir dir;
  socketserver::UnixDatagramServer<PeerPath> server(dir.path("server.sock"));
  const std::string client_path = dir.path("client.sock");
  auto client = test::Client::datagram(server.server_address(), client_path);
  client.send("who am I?");
  server.handle_request();
  CHECK(client.recv() == client_path);
}
