// SocketStream on a socketpair: reads, writes, end of stream, timeouts, shutdown, close, EPIPE.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <socketserver/io/socket_stream.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::SocketStream;

namespace {

// Both ends of a connected AF_UNIX stream socketpair, each owned by a SocketStream.
struct StreamPair {
  StreamPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) test::fail("socketpair");
    a = std::make_unique<SocketStream>(fds[0]);
    b = std::make_unique<SocketStream>(fds[1]);
    // A broken stream must fail the test, not hang it.
    a->set_timeout(std::chrono::seconds(test::io_timeout_seconds));
    b->set_timeout(std::chrono::seconds(test::io_timeout_seconds));
  }
  std::unique_ptr<SocketStream> a;
  std::unique_ptr<SocketStream> b;
};

std::string read_text(SocketStream& stream, std::size_t n = 256) {
  std::string buffer(n, '\0');
  buffer.resize(stream.read_some(buffer));
  return buffer;
}

}  // namespace

TEST_CASE("read_some and write_some move bytes both ways, and read_some returns what is there", "[socket_stream]") {
  StreamPair pair;
  CHECK(pair.a->write_some(std::string_view("hello")) == 5);
  CHECK(read_text(*pair.b) == "hello");  // 5 bytes into a 256-byte buffer: no wait for more
  CHECK(pair.b->write_some(std::string_view("back")) == 4);
  CHECK(read_text(*pair.a) == "back");
  std::array<char, 0> nothing{};
  CHECK(pair.a->read_some(nothing) == 0);  // an empty buffer returns at once
  CHECK(pair.a->write_some(std::string_view()) == 0);
}

TEST_CASE("the constructor makes the socket blocking and the stream owns it", "[socket_stream]") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  const socketserver::detail::FileDescriptor peer(fds[1]);
  CHECK(::fcntl(fds[0], F_GETFL) & O_NONBLOCK);
  {
    SocketStream stream(fds[0]);
    CHECK(stream.native_handle() == fds[0]);
    CHECK_FALSE(::fcntl(fds[0], F_GETFL) & O_NONBLOCK);
  }
  CHECK_FALSE(test::fd_is_open(fds[0]));
  CHECK_THROWS_AS(SocketStream(-1), std::system_error);
}

TEST_CASE("the blocking tag takes a blocking socket as it is, with no system call", "[socket_stream]") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  const socketserver::detail::FileDescriptor peer(fds[1]);
  {
    SocketStream stream(fds[0], SocketStream::blocking);
    CHECK(stream.native_handle() == fds[0]);
    CHECK(stream.write_some(std::string_view("tagged")) == 6);
    std::array<char, 16> got{};
    CHECK(::recv(fds[1], got.data(), got.size(), 0) == 6);
  }
  CHECK_FALSE(test::fd_is_open(fds[0]));  // owned all the same
  // No check of the descriptor either: an invalid one is not detected here, only when used.
  SocketStream invalid(-1, SocketStream::blocking);
  CHECK_THROWS_AS(invalid.write_some(std::string_view("x")), std::system_error);
}

TEST_CASE("read_some returns 0 at end of stream", "[socket_stream]") {
  StreamPair pair;
  SECTION("the peer closed") {
    pair.b->write_some(std::string_view("last"));
    pair.b.reset();
    CHECK(read_text(*pair.a) == "last");
    CHECK(read_text(*pair.a).empty());
    CHECK(read_text(*pair.a).empty());  // and stays there
  }
  SECTION("the peer shut down its writing side, and can still read") {
    pair.b->shutdown_write();
    CHECK(read_text(*pair.a).empty());
    pair.a->sendall("reply");
    CHECK(read_text(*pair.b) == "reply");
  }
}

TEST_CASE("a read with nothing to read throws timed_out once the timeout has passed", "[socket_stream]") {
  StreamPair pair;
  pair.a->set_timeout(50ms);
  CHECK(pair.a->timeout(socketserver::Direction::read) == socketserver::Seconds(0.05));
  const auto start = std::chrono::steady_clock::now();
  try {
    read_text(*pair.a);
    FAIL("read_some returned with nothing to read");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::timed_out);
    CHECK_THAT(e.what(), Catch::Contains("recv"));
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 50ms);
  CHECK(waited < 5s);
  pair.b->sendall("later");  // the stream is still usable
  CHECK(read_text(*pair.a) == "later");
}

TEST_CASE("a write that finds no room throws timed_out once the timeout has passed", "[socket_stream]") {
  StreamPair pair;
  pair.a->set_timeout(50ms);
  const std::string chunk(std::size_t{64} * 1024, 'x');
  std::size_t written = 0;
  std::error_code error;
  for (int i = 0; i < 1024 && !error; ++i) {  // socket buffers hold far less than 64 MiB
    try {
      written += pair.a->write_some(chunk);
    } catch (const std::system_error& e) {
      error = e.code();
    }
  }
  CHECK(error == std::errc::timed_out);
  CHECK(written > 0);
}

TEST_CASE("a signal during a wait neither ends it early nor surfaces EINTR", "[socket_stream][signal]") {
  StreamPair pair;
  test::signals_caught = 0;
  const test::ScopedSignal handler(SIGUSR1, test::count_signal);
  std::promise<pthread_t> reader_id;
  auto read = std::async(std::launch::async, [&] {
    reader_id.set_value(::pthread_self());
    return read_text(*pair.a);
  });
  auto id = reader_id.get_future();
  REQUIRE(id.wait_for(10s) == std::future_status::ready);
  const pthread_t reader = id.get();
  // Interrupt the blocked read until 20 signals have landed (and no longer than 10 s), then send.
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (test::signals_caught < 20 && std::chrono::steady_clock::now() < give_up) {
    ::pthread_kill(reader, SIGUSR1);
    if (read.wait_for(1ms) == std::future_status::ready) break;  // returned early: a failure
  }
  CHECK(test::signals_caught >= 20);
  CHECK(read.wait_for(0s) == std::future_status::timeout);  // still waiting
  pair.b->sendall("after the signals");
  REQUIRE(read.wait_for(10s) == std::future_status::ready);
  CHECK(read.get() == "after the signals");
}

TEST_CASE("recv and sendall move a buffer larger than the socket can hold", "[socket_stream]") {
  StreamPair pair;
  const std::string payload = test::counting_bytes(std::size_t{4} << 20);
  auto writer = std::async(std::launch::async, [&] {
    pair.a->sendall(payload);  // blocks until the reader has drained most of it
    pair.a->shutdown_write();
  });
  std::string received;
  std::size_t largest = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    const std::string part = pair.b->recv(std::size_t{64} * 1024);
    if (part.empty()) break;
    largest = std::max(largest, part.size());
    received += part;
  }
  writer.get();  // rethrows a failure of sendall
  CHECK(largest <= std::size_t{64} * 1024);
  CHECK(received.size() == payload.size());
  CHECK(received == payload);
}

TEST_CASE("close() releases the descriptor: native_handle() is -1, the peer sees end of stream, I/O fails with EBADF",
          "[socket_stream]") {
  StreamPair pair;
  const int fd = pair.a->native_handle();
  REQUIRE(test::fd_is_open(fd));
  pair.a->close();
  CHECK(pair.a->native_handle() == -1);
  CHECK_FALSE(test::fd_is_open(fd));
  CHECK(read_text(*pair.b).empty());
  try {
    read_text(*pair.a);
    FAIL("read_some after close() succeeded");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::bad_file_descriptor);
  }
  CHECK_THROWS_AS(pair.a->write_some(std::string_view("x")), std::system_error);
  pair.a->close();           // idempotent
  pair.a->shutdown_write();  // harmless once closed
  CHECK(pair.a->native_handle() == -1);
}

TEST_CASE("writing to a closed peer throws EPIPE, never raises SIGPIPE", "[socket_stream]") {
  const test::ScopedSignal sigpipe(SIGPIPE, SIG_DFL);  // a SIGPIPE would now end this process
  StreamPair pair;
  pair.b.reset();
  try {
    pair.a->write_some(std::string_view("nobody is listening"));
    FAIL("a write to a closed peer succeeded");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::broken_pipe);
    CHECK_THAT(e.what(), Catch::Contains("send"));
  }
  CHECK_THROWS_AS(pair.a->sendall("again"), std::system_error);
}

TEST_CASE("set_no_delay is a no-op on a Unix socket", "[socket_stream]") {
  StreamPair pair;
  CHECK_NOTHROW(pair.a->set_no_delay(true));
  CHECK_NOTHROW(pair.a->set_no_delay(false));
  pair.a->sendall("still works");
  CHECK(read_text(*pair.b) == "still works");
}

TEST_CASE("a descriptor that cannot be used throws, and is not closed by the stream", "[socket_stream]") {
  CHECK_THROWS_AS(socketserver::SocketStream(-1), std::system_error);
}
