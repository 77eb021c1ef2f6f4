// UnixStreamServer: serving on a socket file, removing it on close, refusing an existing path, peers.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include <socketserver/detail/file_descriptor.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/unix_stream_server.hpp>

#include "echo_scenario.hpp"
#include "test_support.hpp"

using socketserver::Address;

namespace {

using Echo = test::LineEcho;

Address* seen_client = nullptr;  // where RecordPeer leaves the client_address it was given

struct RecordPeer : socketserver::StreamRequestHandler {
  void handle() override {
    *seen_client = client_address;
    wfile.write("seen\n");
  }
};

// What is at `path`: S_IFSOCK, S_IFREG, ..., or 0 when nothing is.
unsigned file_type(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) return 0;
  return st.st_mode & S_IFMT;
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  return address;
}

// The path a Unix socket is bound to (Python's sock.getsockname()).
std::string socket_path(int fd) {
  sockaddr_un address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) < 0) test::fail("getsockname");
  return address.sun_path;
}

// A stream client bound to its own socket file before connecting, so the server sees a named peer.
socketserver::detail::FileDescriptor named_client(const std::string& own_path, const std::string& server_path) {
  socketserver::detail::FileDescriptor fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) test::fail("socket");
  const sockaddr_un own = unix_address(own_path);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&own), sizeof own) < 0) test::fail("bind");
  const sockaddr_un server = unix_address(server_path);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&server), sizeof server) < 0) test::fail("connect");
  return fd;
}

}  // namespace

TEST_CASE("UnixStreamServer echoes three clients, then shutdown and server_close close and remove its socket",
          "[unix]") {
  // CPython's test_UnixStreamServer (run_server + stream_examine).
  test::TempDir dir;
  const std::string path = dir.path("echo.sock");
  socketserver::UnixStreamServer<Echo> server(path);
  const int fd = server.fileno();
  REQUIRE(test::fd_is_open(fd));
  CHECK(server.server_address().is_unix());
  CHECK(server.server_address().path() == path);
  CHECK(socket_path(fd) == path);
  CHECK(file_type(path) == S_IFSOCK);
  test::check_echo_scenario(server, dir, [&] {
    CHECK_FALSE(test::fd_is_open(fd));
    CHECK(file_type(path) == 0);
    server.server_close();  // idempotent
    CHECK(server.fileno() == -1);
  });
}

TEST_CASE("destroying a UnixStreamServer closes its socket and removes its file", "[unix]") {
  test::TempDir dir;
  const std::string path = dir.path("scoped.sock");
  int fd = -1;
  {
    socketserver::UnixStreamServer<Echo> server(path);
    fd = server.fileno();
    REQUIRE(file_type(path) == S_IFSOCK);
  }
  CHECK_FALSE(test::fd_is_open(fd));
  CHECK(file_type(path) == 0);
}

TEST_CASE("binding to a path that exists fails with a bind error and leaves the file alone", "[unix]") {
  test::TempDir dir;

  SECTION("a regular file") {
    const std::string path = dir.path("taken");
    {
      socketserver::detail::FileDescriptor file(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
      REQUIRE(file);
    }
    const int open_before = test::count_open_fds();
    try {
      socketserver::UnixStreamServer<Echo> server(path);
      FAIL("binding over a regular file succeeded");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EADDRINUSE);
      CHECK_THAT(e.what(), Catch::Contains("bind") && Catch::Contains(path));
    }
    CHECK(file_type(path) == S_IFREG);
    CHECK(test::count_open_fds() == open_before);
  }

  SECTION("the socket of a live server, which keeps serving") {
    const std::string path = dir.path("live.sock");
    socketserver::UnixStreamServer<Echo> live(path);
    CHECK_THROWS_AS(socketserver::UnixStreamServer<Echo>(path), std::system_error);
    CHECK(file_type(path) == S_IFSOCK);
    auto client = test::Client::connect(live.server_address());
    client.send("still served\n");
    client.shutdown_write();
    live.handle_request();
    CHECK(client.recv_all() == "still served\n");
  }
}

TEST_CASE("bind_and_activate=false creates the socket file at server_bind and accepts after server_activate",
          "[unix]") {
  test::TempDir dir;
  const std::string path = dir.path("later.sock");
  socketserver::UnixStreamServer<Echo> server(path, false);
  CHECK(test::fd_is_open(server.fileno()));
  CHECK(file_type(path) == 0);
  server.server_bind();
  CHECK(file_type(path) == S_IFSOCK);
  CHECK(server.server_address().path() == path);
  CHECK_THROWS_AS(test::Client::connect(server.server_address()), std::system_error);  // not listening yet
  server.server_activate();
  auto client = test::Client::connect(server.server_address());
  client.send("after activate\n");
  client.shutdown_write();
  server.handle_request();
  CHECK(client.recv_all() == "after activate\n");
}

TEST_CASE("the client_address of an unbound client is empty", "[unix]") {
  test::TempDir dir;
  socketserver::UnixStreamServer<RecordPeer> server(dir.path("peer.sock"));
  Address seen = Address::from_path("not set");
  seen_client = &seen;
  auto client = test::Client::connect(server.server_address());
  server.handle_request();
  CHECK(client.recv_all() == "seen\n");
  CHECK(seen.empty());
  CHECK(seen.path().empty());
  CHECK(seen.to_string() == "<unnamed>");
}

TEST_CASE("the client_address of a bound client is its path", "[unix]") {
  test::TempDir dir;
  socketserver::UnixStreamServer<RecordPeer> server(dir.path("peer.sock"));
  Address seen;
  seen_client = &seen;
  const std::string own_path = dir.path("client.sock");
  const auto client = named_client(own_path, server.server_address().path());
  server.handle_request();
  CHECK(seen.is_unix());
  CHECK(seen.path() == own_path);
}
