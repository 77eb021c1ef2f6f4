// asio_coro_server: the plain asio baseline for the benchmark. One thread, one C++20 coroutine per
// connection: wait for readiness, read what is there into a buffer shared by all connections,
// upper-case the complete lines and try to write the replies at once; only a full socket makes
// the coroutine wait to write.
#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>

#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <csignal>

#include <fmt/format.h>

#include "reference_support.hpp"

namespace {

using asio::ip::tcp;

// Shared by every connection: a coroutine uses it only between a readiness wake-up and its next
// suspension, and only one coroutine runs at a time on the single thread.
char shared_buffer[64 * 1024];

asio::awaitable<void> serve(tcp::socket socket) {
  std::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  socket.non_blocking(true, ec);
  reference::Lines lines;
  std::string unsent;  // replies the full socket did not take, out of the shared buffer
  for (;;) {
    co_await socket.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    const std::size_t n = socket.read_some(asio::buffer(shared_buffer), ec);
    if (ec == asio::error::would_block) continue;
    if (ec) co_return;  // end of stream or a reset
    char* const data = shared_buffer;
    const std::string_view reply = lines.take(data, n);
    if (reply.empty()) continue;
    std::size_t written = 0;
    while (written < reply.size() && !ec) {
      written += socket.write_some(asio::buffer(reply.substr(written)), ec);
    }
    if (ec && ec != asio::error::would_block) co_return;
    if (written < reply.size()) unsent.assign(reply.substr(written));
    lines.sent();
    if (!unsent.empty()) {
      co_await asio::async_write(socket, asio::buffer(unsent), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      unsent.clear();
    }
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
  asio::steady_timer pause(acceptor.get_executor());
  for (;;) {
    std::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors, most likely: give connections a moment to close rather than spin.
      pause.expires_after(std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  const auto options = reference::parse_options(argc, argv, "asio_coro_server");
  asio::io_context io(1);
  tcp::acceptor acceptor(io, {asio::ip::make_address(options.host), options.port});
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) { io.stop(); });
  asio::co_spawn(io, accept_loop(acceptor), asio::detached);
  const auto local = acceptor.local_endpoint();
  fmt::print("asio_coro_server listening on {}:{}\n", local.address().to_string(), local.port());
  std::fflush(stdout);
  io.run();
} catch (const std::exception& e) {
  fmt::print(stderr, "asio_coro_server: {}\n", e.what());
  return 1;
}
