// Full duplex: one coroutine (or thread) writes to a peer that does not read while another reads
// what the peer sends. Both are blocked at once, and neither stops the other.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/threading_servers.hpp>
#include <socketserver/tls_context.hpp>

#include "test_support.hpp"
#include "tls_support.hpp"

using namespace std::chrono_literals;

namespace {

// Small writes, so that wfile's buffer fills and a flush is left waiting with bytes pending.
constexpr std::size_t pushes = 200'000;
const std::string push = "push 0123456789abcdefghijklmnopqrstuvwxyz\n";

std::atomic<bool> writer_done{false};
std::atomic<bool> line_while_writer_blocked{false};
std::promise<std::string>* line_seen = nullptr;

void shrink_send_buffer(int fd) {
  const int small = 4096;  // so that the writer surely waits for the peer
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
}

// A reader coroutine and a writer coroutine on one connection.
struct AsyncDuplex : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    shrink_send_buffer(request->fileno());
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer writer_finished(executor, asio::steady_timer::time_point::max());
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
          for (std::size_t i = 0; i < pushes; ++i) co_await wfile.write(push);
          co_await wfile.flush();
          writer_done = true;
          writer_finished.cancel();
        },
        asio::detached);
    // Let the writer fill the socket and wait with bytes pending, as the old reader's flush
    // before its wait would have too.
    for (int round = 0; round < 100'000 && wfile.buffered() == 0; ++round)
      co_await asio::post(executor, asio::use_awaitable);
    if (auto line = co_await rfile.readline()) {
      line_while_writer_blocked = !writer_done;
      line_seen->set_value(std::string(*line));
    }
    std::error_code ignored;
    if (!writer_done) co_await writer_finished.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
};

// The same with threads: the handler's thread reads rfile while a second thread writes wfile.
struct ThreadDuplex : socketserver::StreamRequestHandler {
  void handle() override {
    shrink_send_buffer(request->fileno());
    std::atomic<bool> wrote{false};
    std::thread writer([this, &wrote] {
      try {
        for (std::size_t i = 0; i < pushes; ++i) {
          wfile.write(push);
          wrote = true;
        }
        wfile.flush();
        writer_done = true;
      } catch (const std::system_error&) {  // the test failed and the client went away
      }
    });
    // The writer has written (and soon waits on the full socket) before the reader waits.
    (void)test::eventually([&] { return wrote.load(); });
    if (auto line = rfile.readline()) {
      line_while_writer_blocked = !writer_done;
      line_seen->set_value(*line);
    }
    writer.join();
  }
};

// Sends a line without reading, expects the handler to read it while its writer is blocked on
// this unread socket, then reads everything the writer wrote; over TLS with `tls`.
template <class Server>
void check_duplex(bool tls = false) {
  writer_done = false;
  line_while_writer_blocked = false;
  std::promise<std::string> seen;
  line_seen = &seen;
  Server server({"127.0.0.1", 0});
  if constexpr (requires { server.threads; }) server.threads = 1;
  if (tls) server.tls = std::make_shared<socketserver::TlsContext>(test::certificates().settings());
  test::ServerThread serving(server);
  std::optional<test::Client> client;
  std::optional<test::TlsClient> tls_client;
  if (tls) {
    tls_client.emplace(server.server_address(), test::certificates(), false);
    tls_client->send("hello while you write\n");
  } else {
    client.emplace(test::Client::connect(server.server_address()));
    client->send("hello while you write\n");
  }
  auto future = seen.get_future();
  REQUIRE(test::ready(future));  // not held up by the writer
  CHECK(future.get() == "hello while you write\n");
  CHECK(line_while_writer_blocked);
  std::size_t received = 0;
  if (tls) {
    received = tls_client->read_to_end();
  } else {
    for (std::string part = client->recv(); !part.empty(); part = client->recv()) received += part.size();
  }
  CHECK(received == pushes * push.size());
  CHECK(writer_done);
}

}  // namespace

TEST_CASE("async full duplex: a reader coroutine reads while a writer coroutine waits on a slow peer",
          "[full_duplex][async]") {
  check_duplex<socketserver::AsyncTCPServer<AsyncDuplex>>();
}

TEST_CASE("blocking full duplex: the handler reads while a second thread writes to a slow peer",
          "[full_duplex][threading]") {
  check_duplex<socketserver::ThreadingTCPServer<ThreadDuplex>>();
}

TEST_CASE("async full duplex over TLS: the reader coroutine reads while the writer waits on a slow peer",
          "[full_duplex][async][tls]") {
  check_duplex<socketserver::AsyncTCPServer<AsyncDuplex>>(true);
}

TEST_CASE("blocking full duplex over TLS: the handler reads while a second thread writes to a slow peer",
          "[full_duplex][threading][tls]") {
  check_duplex<socketserver::ThreadingTCPServer<ThreadDuplex>>(true);
}
