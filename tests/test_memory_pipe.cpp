// MemoryPipe: two connected in-memory ends used from two threads; blocking reads, end of
// stream, timeouts, backpressure through the capacity, EPIPE and EBADF.
#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <system_error>

#include <socketserver/testing/memory_pipe.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::MemoryPipe;
using test::bound;

TEST_CASE("MemoryPipe: what one end writes the other reads, both ways", "[testing][memory_pipe]") {
  MemoryPipe pipe;
  pipe.client->set_timeout(bound);
  pipe.server->set_timeout(bound);
  pipe.client->sendall("ping\n");
  CHECK(pipe.server->available() == 5);
  CHECK(pipe.server->recv(100) == "ping\n");
  pipe.server->sendall("pong\n");
  CHECK(pipe.client->recv(2) == "po");
  CHECK(pipe.client->recv(100) == "ng\n");
  CHECK(pipe.client->native_handle() == -1);
  CHECK(pipe.server->native_handle() == -1);
}

TEST_CASE("MemoryPipe: a blocked read is woken by a write from the other thread", "[testing][memory_pipe]") {
  MemoryPipe pipe;
  pipe.server->set_timeout(bound);
  std::promise<void> reading;
  auto got = std::async(std::launch::async, [&] {
    reading.set_value();
    return pipe.server->recv(100);  // nothing there yet: waits
  });
  reading.get_future().wait();
  pipe.client->sendall("wake up");
  REQUIRE(test::ready(got));
  CHECK(got.get() == "wake up");
}

TEST_CASE("MemoryPipe: a large transfer through a small capacity arrives whole and in order",
          "[testing][memory_pipe]") {
  MemoryPipe pipe(1000);
  pipe.client->set_timeout(bound);
  pipe.server->set_timeout(bound);
  const std::string data = test::counting_bytes(std::size_t{1} << 20);
  auto writer = std::async(std::launch::async, [&] {
    pipe.client->sendall(data);
    pipe.client->shutdown_write();
  });
  std::string got;
  for (std::string part = pipe.server->recv(4096); !part.empty(); part = pipe.server->recv(4096)) {
    CHECK(part.size() <= 1000);
    got += part;
  }
  REQUIRE(test::ready(writer));
  writer.get();
  CHECK(got == data);
}

TEST_CASE("MemoryPipe: shutdown_write ends the stream after the buffered data, and the other way still works",
          "[testing][memory_pipe]") {
  MemoryPipe pipe;
  pipe.client->set_timeout(bound);
  pipe.server->set_timeout(bound);
  pipe.client->sendall("last words");
  pipe.client->shutdown_write();
  CHECK(pipe.server->recv(100) == "last words");
  CHECK(pipe.server->recv(100).empty());
  CHECK(pipe.server->recv(100).empty());  // end of stream stays
  pipe.server->sendall("reply");
  CHECK(pipe.client->recv(100) == "reply");
  CHECK(test::error_of([&] { pipe.client->sendall("more"); }) == std::errc::broken_pipe);
}

TEST_CASE("MemoryPipe: a blocked read sees end of stream when the peer shuts down", "[testing][memory_pipe]") {
  MemoryPipe pipe;
  pipe.server->set_timeout(bound);
  std::promise<void> reading;
  auto got = std::async(std::launch::async, [&] {
    reading.set_value();
    return pipe.server->recv(100);
  });
  reading.get_future().wait();
  pipe.client->shutdown_write();
  REQUIRE(test::ready(got));
  CHECK(got.get().empty());
}

TEST_CASE("MemoryPipe: closing or destroying an end ends the stream after the buffered data",
          "[testing][memory_pipe]") {
  MemoryPipe pipe;
  pipe.server->set_timeout(bound);
  pipe.client->sendall("bye");
  SECTION("close") { pipe.client->close(); }
  SECTION("destruction") { pipe.client.reset(); }
  CHECK(pipe.server->recv(100) == "bye");
  CHECK(pipe.server->recv(100).empty());
}

TEST_CASE("MemoryPipe: a read times out with timed_out, and a zero timeout does not wait", "[testing][memory_pipe]") {
  MemoryPipe pipe;
  SECTION("a timeout") {
    pipe.server->set_timeout(100ms);
    const auto start = std::chrono::steady_clock::now();
    CHECK(test::error_of([&] { pipe.server->recv(100); }) == std::errc::timed_out);
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(waited >= 100ms);
    CHECK(waited < bound);
  }
  SECTION("zero") {
    pipe.server->set_timeout(0s);
    CHECK(test::error_of([&] { pipe.server->recv(100); }) == std::errc::timed_out);
    pipe.client->sendall("x");
    CHECK(pipe.server->recv(100) == "x");  // data there: no wait needed
  }
  // The read that timed out lost nothing.
  pipe.server->set_timeout(bound);
  pipe.client->sendall("after");
  CHECK(pipe.server->recv(100).ends_with("after"));
}

TEST_CASE("MemoryPipe: a writer blocks while the capacity is full and resumes when the peer reads",
          "[testing][memory_pipe]") {
  MemoryPipe pipe(4);
  pipe.client->set_timeout(bound);
  pipe.server->set_timeout(bound);
  const std::string first = "abcdef";
  CHECK(pipe.client->write_some(first) == 4);  // a partial write: the capacity is 4
  CHECK(pipe.server->available() == 4);

  auto writer = std::async(std::launch::async, [&] { pipe.client->sendall("efgh"); });
  // Nothing reads yet: the writer must still be waiting.
  CHECK(writer.wait_for(50ms) == std::future_status::timeout);
  CHECK(test::recv_exact(*pipe.server, 4) == "abcd");
  CHECK(test::recv_exact(*pipe.server, 4) == "efgh");
  REQUIRE(test::ready(writer));
  writer.get();
}

TEST_CASE("MemoryPipe: a write to a full pipe times out when the peer never reads", "[testing][memory_pipe]") {
  MemoryPipe pipe(4);
  pipe.client->sendall("full");
  SECTION("a timeout") {
    pipe.client->set_timeout(100ms);
    const auto start = std::chrono::steady_clock::now();
    CHECK(test::error_of([&] { pipe.client->sendall("more"); }) == std::errc::timed_out);
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(waited >= 100ms);
    CHECK(waited < bound);
  }
  SECTION("zero") {
    pipe.client->set_timeout(0s);
    CHECK(test::error_of([&] { pipe.client->sendall("more"); }) == std::errc::timed_out);
  }
  CHECK(pipe.server->available() == 4);  // the timed-out write added nothing
}

TEST_CASE("MemoryPipe: a write after the peer closed is EPIPE, also one that was waiting", "[testing][memory_pipe]") {
  MemoryPipe pipe(4);
  pipe.client->set_timeout(bound);
  SECTION("closed before the write") {
    pipe.server->close();
    CHECK(test::error_of([&] { pipe.client->sendall("x"); }) == std::errc::broken_pipe);
  }
  SECTION("destroyed before the write") {
    pipe.server.reset();
    CHECK(test::error_of([&] { pipe.client->sendall("x"); }) == std::errc::broken_pipe);
  }
  SECTION("closed while the write waits for room") {
    pipe.client->sendall("full");
    std::promise<void> writing;
    auto writer = std::async(std::launch::async, [&] {
      writing.set_value();
      return test::error_of([&] { pipe.client->sendall("more"); });
    });
    writing.get_future().wait();
    pipe.server->close();
    REQUIRE(test::ready(writer));
    CHECK(writer.get() == std::errc::broken_pipe);
  }
}

TEST_CASE("MemoryPipe: an end's own close() makes its reads and writes EBADF and wakes its waiting read",
          "[testing][memory_pipe]") {
  MemoryPipe pipe;
  pipe.server->set_timeout(bound);
  SECTION("after close") {
    pipe.client->sendall("unread");
    pipe.server->close();
    pipe.server->close();  // idempotent
    CHECK(test::error_of([&] { pipe.server->recv(100); }) == std::errc::bad_file_descriptor);
    CHECK(test::error_of([&] { pipe.server->sendall("x"); }) == std::errc::bad_file_descriptor);
  }
  SECTION("during a read") {
    std::promise<void> reading;
    auto reader = std::async(std::launch::async, [&] {
      reading.set_value();
      return test::error_of([&] { pipe.server->recv(100); });
    });
    reading.get_future().wait();
    pipe.server->close();
    REQUIRE(test::ready(reader));
    CHECK(reader.get() == std::errc::bad_file_descriptor);
  }
}

TEST_CASE("MemoryPipe: a capacity of 0 is refused", "[testing][memory_pipe]") {
  CHECK_THROWS_AS(MemoryPipe(0), std::invalid_argument);
}
