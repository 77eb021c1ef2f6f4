// StreamRequestHandler over real TCP: rfile reading, wfile flushing, timeouts, TCP_NODELAY, signals.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <socketserver/error.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/memory_stream.hpp>
#include <socketserver/io/stream_layer.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/tcp_server.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::Address;
using socketserver::Request;

namespace {

// What a handler saw, for tests that run it with handle_request() on their own thread.
std::vector<std::optional<std::string>>* reads = nullptr;

struct Echo : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) wfile.write(*line);
  }
};

// readline() until it returns std::nullopt, then once more.
struct ReadLines : socketserver::StreamRequestHandler {
  void handle() override {
    for (int i = 0; i < 100; ++i) {
      auto line = rfile.readline();
      reads->push_back(line);
      if (!line) break;
    }
    reads->push_back(rfile.readline());
  }
};

struct ReadLinesWithLimit : socketserver::StreamRequestHandler {
  void handle() override {
    for (const std::size_t limit : {5, 100, 1, 10, 10}) reads->push_back(rfile.readline(limit));
  }
};

struct MixReads : socketserver::StreamRequestHandler {
  void handle() override {
    reads->push_back(rfile.readline());
    reads->push_back(rfile.read(4));
    reads->push_back(rfile.read(3));
    reads->push_back(rfile.read(100));  // the stream ends first: what is left
    reads->push_back(rfile.read(1));    // at end of stream: nothing
  }
};

struct IterateLines : socketserver::StreamRequestHandler {
  void handle() override {
    for (const auto& line : rfile) reads->push_back(line);
  }
};

constexpr std::size_t big_size = std::size_t{1} << 20;

// read(n) with n larger than any one segment, then the 4 bytes after it.
struct ReadExact : socketserver::StreamRequestHandler {
  void handle() override {
    const std::string body = rfile.read(big_size);
    const std::string after = rfile.read(4);
    wfile.write(std::to_string(body.size()) + (body == test::counting_bytes(big_size) ? " same " : " different ") +
                after + "\n");
  }
};

// read() to the end of the stream.
struct ReadAll : socketserver::StreamRequestHandler {
  void handle() override {
    const std::string all = rfile.read();
    wfile.write(std::to_string(all.size()) + (all == test::counting_bytes(all.size()) ? " same\n" : " different\n"));
  }
};

std::optional<std::error_code>* line_error = nullptr;

// Echoes lines up to 16 bytes; reports a longer one instead of echoing it.
struct ShortLines : socketserver::StreamRequestHandler {
  void handle() override {
    rfile.max_line = 16;
    try {
      while (auto line = rfile.readline()) wfile.write(*line);
    } catch (const std::system_error& e) {
      *line_error = e.code();
      wfile.write(std::string("error: ") + e.what() + "\n");
    }
  }
};

// Counts write_some() calls on every connection it wraps.
std::atomic<int> write_calls{0};

// A layer that counts the handler's writes.
class CountingStream final : public socketserver::StreamLayer {
 public:
  using StreamLayer::StreamLayer;
  std::size_t write_some(std::span<const char> data) override {
    ++write_calls;
    return StreamLayer::write_some(data);
  }
};

// An echo server whose connections count their writes.
class CountingServer : public socketserver::TCPServer<Echo> {
 public:
  CountingServer() : TCPServer({"127.0.0.1", 0}) {
    layers.emplace_back([](std::unique_ptr<socketserver::ByteStream> next) {
      return std::make_unique<CountingStream>(std::move(next));
    });
  }
};

struct TimeoutResult {
  std::optional<std::error_code> code;
  std::chrono::steady_clock::duration waited{};
};
TimeoutResult* timeout_result = nullptr;

struct TimesOut : socketserver::StreamRequestHandler {
  void setup() override {
    timeout = 0.2s;
    StreamRequestHandler::setup();
  }
  void handle() override {
    const auto start = std::chrono::steady_clock::now();
    try {
      rfile.readline();
    } catch (const std::system_error& e) {
      timeout_result->code = e.code();
    }
    timeout_result->waited = std::chrono::steady_clock::now() - start;
    wfile.write("timed out\n");
  }
};

int* no_delay = nullptr;  // TCP_NODELAY as the handler found it

int tcp_no_delay(int fd) {
  int value = -1;
  socklen_t length = sizeof value;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &length) < 0) test::fail("getsockopt(TCP_NODELAY)");
  return value;
}

struct ReportNoDelay : socketserver::StreamRequestHandler {
  void handle() override { *no_delay = tcp_no_delay(request->fileno()); }
};

struct KeepNagle : ReportNoDelay {
  KeepNagle() { disable_nagle_algorithm = false; }
};

std::size_t* left_buffered = nullptr;

struct NoExplicitFlush : socketserver::StreamRequestHandler {
  void handle() override {
    wfile.write("never flushed by handle()\n");
    *left_buffered = wfile.buffered();
  }
};

std::vector<std::string>* events = nullptr;

struct ThrowsAfterWriting : socketserver::StreamRequestHandler {
  void handle() override {
    wfile.write("partial reply\n");
    events->push_back("handle");
    throw std::runtime_error("handler failed");
  }
  void finish() override {
    events->push_back("finish");
    StreamRequestHandler::finish();
  }
};

class RecordingErrorsServer : public socketserver::TCPServer<ThrowsAfterWriting> {
 public:
  RecordingErrorsServer() : TCPServer({"127.0.0.1", 0}) {}
  void handle_error(Request&, const Address&) override {
    events->push_back("handle_error: " + socketserver::detail::current_exception_message());
  }
};

// CPython's test_write (scenario 7): a large write while signals keep interrupting it.
constexpr std::size_t signalled_write_size = std::size_t{20} << 20;
const std::string* signalled_payload = nullptr;
std::promise<pthread_t>* writer_thread = nullptr;
struct BigWrite : socketserver::StreamRequestHandler {
  void handle() override {
    writer_thread->set_value(pthread_self());
    wfile.write(*signalled_payload);
  }
};

}  // namespace

TEST_CASE("readline returns each line with its newline, then the unterminated rest, then nullopt", "[handler]") {
  std::vector<std::optional<std::string>> got;
  reads = &got;
  socketserver::TCPServer<ReadLines> server({"127.0.0.1", 0});
  auto client = test::Client::connect(server.server_address());
  client.send("one\ntwo\n\nlast");
  client.shutdown_write();
  server.handle_request();
  using L = std::optional<std::string>;
  CHECK(got == std::vector<L>{"one\n", "two\n", "\n", "last", std::nullopt, std::nullopt});
}

TEST_CASE("readline(limit) stops at limit bytes or at the newline, whichever comes first", "[handler]") {
  std::vector<std::optional<std::string>> got;
  reads = &got;
  socketserver::TCPServer<ReadLinesWithLimit> server({"127.0.0.1", 0});
  auto client = test::Client::connect(server.server_address());
  client.send("hello world\nxy");
  client.shutdown_write();
  server.handle_request();
  using L = std::optional<std::string>;
  CHECK(got == std::vector<L>{"hello", " world\n", "x", "y", std::nullopt});
}

TEST_CASE("read(n) takes exactly n bytes after a readline, fewer only at end of stream", "[handler]") {
  std::vector<std::optional<std::string>> got;
  reads = &got;
  socketserver::TCPServer<MixReads> server({"127.0.0.1", 0});
  auto client = test::Client::connect(server.server_address());
  client.send("head\nabcdefghij");
  client.shutdown_write();
  server.handle_request();
  using L = std::optional<std::string>;
  CHECK(got == std::vector<L>{"head\n", "abcd", "efg", "hij", ""});
}

TEST_CASE("read(n) gathers n bytes that arrive in many segments", "[handler]") {
  socketserver::TCPServer<ReadExact> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  client.send(test::counting_bytes(big_size) + "tail");  // more than the socket buffers hold at once
  CHECK(client.recv_line() == std::to_string(big_size) + " same tail\n");
}

TEST_CASE("read() returns everything up to the end of the stream", "[handler]") {
  socketserver::TCPServer<ReadAll> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  const std::size_t size = std::size_t{300} * 1024 + 7;
  client.send(test::counting_bytes(size));
  client.shutdown_write();
  CHECK(client.recv_all() == std::to_string(size) + " same\n");
}

TEST_CASE("iterating over rfile yields every line", "[handler]") {
  std::vector<std::optional<std::string>> got;
  reads = &got;
  socketserver::TCPServer<IterateLines> server({"127.0.0.1", 0});
  auto client = test::Client::connect(server.server_address());
  client.send("alpha\nbeta\ngamma");
  client.shutdown_write();
  server.handle_request();
  using L = std::optional<std::string>;
  CHECK(got == std::vector<L>{"alpha\n", "beta\n", "gamma"});
}

TEST_CASE("a line longer than rfile.max_line throws errc::line_too_long", "[handler]") {
  std::optional<std::error_code> error;
  line_error = &error;
  socketserver::TCPServer<ShortLines> server({"127.0.0.1", 0});
  auto client = test::Client::connect(server.server_address());
  const std::string fits = std::string(15, 'y') + "\n";  // exactly max_line, newline included
  client.send("short\n" + fits + std::string(40, 'x') + "\n");
  client.shutdown_write();
  server.handle_request();
  REQUIRE(error);
  CHECK(*error == socketserver::errc::line_too_long);
  CHECK(error->category() == socketserver::error_category());
  CHECK(client.recv_all() == "short\n" + fits + "error: readline: line too long\n");
}

TEST_CASE("an unterminated last line of exactly max_line bytes is returned, not refused", "[handler]") {
  // Library bug: readline() refuses any max_line bytes without a newline, even when the stream
  // ends right there, so this last line, no longer than max_line, throws line_too_long.
  std::optional<std::error_code> error;
  line_error = &error;
  socketserver::TCPServer<ShortLines> server({"127.0.0.1", 0});
  auto client = test::Client::connect(server.server_address());
  const std::string last(16, 'z');
  client.send(last);
  client.shutdown_write();
  server.handle_request();
  CHECK_FALSE(error);
  CHECK(client.recv_all() == last);
}

TEST_CASE("pipelined requests are all answered, in a single write", "[handler]") {
  write_calls = 0;
  CountingServer server;
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  std::string batch;
  for (int i = 0; i < 16; ++i) batch += "request " + std::to_string(i) + "\n";
  client.send(batch);  // one send(): the handler reads all 16 lines at once
  std::string replies;
  for (int i = 0; i < 16; ++i) replies += client.recv_line();
  // Every reply came while the connection is still open: wfile was flushed before rfile waited.
  CHECK(replies == batch);
  client.shutdown_write();
  CHECK(client.recv_all().empty());
  serving.stop();
  CHECK(write_calls == 1);
}

TEST_CASE("timeout set in setup() makes a read from a silent client throw timed_out", "[handler]") {
  TimeoutResult result;
  timeout_result = &result;
  socketserver::TCPServer<TimesOut> server({"127.0.0.1", 0});
  // On its own thread, so that a timeout that never fires fails the client's recv instead of
  // hanging the test.
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());  // and sends nothing
  CHECK(client.recv_line() == "timed out\n");
  client.close();
  serving.stop();  // the handler has finished: its result is safe to read
  REQUIRE(result.code);
  CHECK(*result.code == std::errc::timed_out);
  CHECK(result.waited >= 200ms);
  CHECK(result.waited < 5s);
}

TEST_CASE("disable_nagle_algorithm sets TCP_NODELAY by default and leaves it off when false", "[handler]") {
  int value = -1;
  no_delay = &value;
  SECTION("default: on") {
    socketserver::TCPServer<ReportNoDelay> server({"127.0.0.1", 0});
    auto client = test::Client::connect(server.server_address());
    server.handle_request();
    CHECK(value == 1);
  }
  SECTION("false: off") {
    socketserver::TCPServer<KeepNagle> server({"127.0.0.1", 0});
    auto client = test::Client::connect(server.server_address());
    server.handle_request();
    CHECK(value == 0);
  }
}

TEST_CASE("wfile is flushed when handle() returns", "[handler]") {
  std::size_t buffered = 0;
  left_buffered = &buffered;
  socketserver::TCPServer<NoExplicitFlush> server({"127.0.0.1", 0});
  auto client = test::Client::connect(server.server_address());
  server.handle_request();
  CHECK(buffered > 0);  // nothing had been sent when handle() returned
  CHECK(client.recv_all() == "never flushed by handle()\n");
}

TEST_CASE("finish() runs and flushes wfile when handle() throws", "[handler]") {
  std::vector<std::string> seen;
  events = &seen;
  RecordingErrorsServer server;
  auto client = test::Client::connect(server.server_address());
  server.handle_request();
  CHECK(client.recv_all() == "partial reply\n");
  CHECK(seen == std::vector<std::string>{"handle", "finish", "handle_error: handler failed"});
}

TEST_CASE("a large write interrupted by signals still delivers every byte in order", "[handler][signal]") {
  // CPython's SocketWriterTest.test_write, with SIGUSR1 sent to the writing thread while the
  // client drains the connection, so the write keeps blocking and being interrupted.
  const std::string payload = test::counting_bytes(signalled_write_size);
  signalled_payload = &payload;
  std::promise<pthread_t> writer;
  writer_thread = &writer;
  test::signals_caught = 0;
  const test::ScopedSignal handler(SIGUSR1, test::count_signal);
  socketserver::TCPServer<BigWrite> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  auto writer_id = writer.get_future();
  REQUIRE(writer_id.wait_for(10s) == std::future_status::ready);
  const pthread_t target = writer_id.get();

  std::size_t received = 0;
  bool in_order = true;
  for (int i = 0; i < 1'000'000 && received < payload.size(); ++i) {
    ::pthread_kill(target, SIGUSR1);
    const std::string part = client.recv(std::size_t{64} * 1024);
    if (part.empty()) break;
    if (std::string_view(payload).substr(received, part.size()) != part) {
      in_order = false;
      break;
    }
    received += part.size();
  }
  CHECK(in_order);
  CHECK(received == payload.size());
  CHECK(client.recv_all().empty());  // nothing after the payload, and the request ended
  serving.stop();                    // no signal is sent once the thread is gone
  CHECK(test::signals_caught > 0);
}

TEST_CASE("rfile and wfile settings made in a handler's constructor survive setup()", "[handler]") {
  struct Strict : socketserver::StreamRequestHandler {
    Strict() {
      rfile.max_line = 8;
      wfile.buffer_size = 4;
    }
    void handle() override {
      wfile.write("12345");  // over buffer_size: sent at once
      written_before_read = static_cast<const socketserver::MemoryStream&>(request->stream()).output();
      (void)rfile.readline();
    }
    std::string written_before_read;
  };
  socketserver::StreamRequest request(std::make_unique<socketserver::MemoryStream>("a line longer than eight bytes\n"));
  Strict handler;
  handler.request = &request;
  handler.setup();
  try {
    handler.handle();
    FAIL("the long line was accepted");
  } catch (const std::system_error& e) {
    CHECK(e.code() == socketserver::errc::line_too_long);
  }
  CHECK(handler.written_before_read == "12345");
}
