// fanout_server: socketserver's side of the broadcast benchmark (bench/fanout.py). Every line a
// client sends goes to every other client, through one ConnectionGroup.
//   fanout_server --port P [--concurrency async|threading] [--threads N]
#include <socketserver/async.hpp>
#include <socketserver/socketserver.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include <fmt/format.h>

namespace {

socketserver::ConnectionGroup members;

struct Fanout : socketserver::StreamRequestHandler {
  void handle() override {
    const socketserver::ConnectionHandle me = connection_handle();
    members.add(me);
    while (auto line = rfile.readline()) members.broadcast(*line, me);
  }
};

struct AsyncFanout : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    const socketserver::ConnectionHandle me = connection_handle();
    members.add(me);
    while (auto line = co_await rfile.readline()) members.broadcast(*line, me);
  }
};

template <class Server>
int serve(Server& server) {
  server.logger.level = socketserver::LogLevel::error;
  fmt::print("fanout_server listening on {}\n", server.server_address());
  std::fflush(stdout);
  socketserver::ShutdownOnSignals stop(server);
  server.serve_forever();
  server.server_close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  std::uint16_t port = 0;
  std::size_t threads = 1;
  std::string_view concurrency = "async";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view arg = argv[i];
    const std::string_view value = argv[i + 1];
    if (arg == "--port") {
      std::from_chars(value.data(), value.data() + value.size(), port);
    } else if (arg == "--threads") {
      std::from_chars(value.data(), value.data() + value.size(), threads);
    } else if (arg == "--concurrency" && (value == "async" || value == "threading")) {
      concurrency = value;
    } else {
      fmt::print(stderr, "usage: fanout_server --port P [--concurrency async|threading] [--threads N]\n");
      return 2;
    }
  }
  if (concurrency == "threading") {
    socketserver::ThreadingTCPServer<Fanout> server({"127.0.0.1", port});
    return serve(server);
  }
  socketserver::AsyncTCPServer<AsyncFanout> server({"127.0.0.1", port});
  server.threads = threads;
  return serve(server);
} catch (const std::exception& e) {
  fmt::print(stderr, "fanout_server: {}\n", e.what());
  return 1;
}
