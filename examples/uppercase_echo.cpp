// uppercase_echo: every line a client sends comes back in upper case.
//   build/examples/uppercase_echo --port 9999 &   printf 'hello\n' | nc -N 127.0.0.1 9999
// --concurrency picks the server: a thread per connection (the default), one connection at a
// time, a process per connection, a bounded thread pool, or coroutines on event loops.
#include <socketserver/async.hpp>
#include <socketserver/socketserver.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include "example_support.hpp"

struct Upper : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) {
      examples::to_upper(*line);
      wfile.write(*line);
    }
  }
};

struct AsyncUpper : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    std::string upper;  // reused: no allocation per line once it has grown
    while (auto line = co_await rfile.readline()) {
      upper.assign(*line);
      examples::to_upper(upper);
      co_await wfile.write(upper);
    }
  }
};

int main(int argc, char** argv) try {
  const auto options =
      examples::parse_options(argc, argv, "Echoes every line back in upper case.", 9999, examples::with_concurrency);
  const socketserver::Address address(options.host, options.port);
  switch (options.concurrency) {
    case examples::Concurrency::plain: {
      socketserver::TCPServer<Upper> server(address);
      return examples::serve(server, options, "uppercase_echo");
    }
    case examples::Concurrency::threading: {
      socketserver::ThreadingTCPServer<Upper> server(address);
      return examples::serve(server, options, "uppercase_echo");
    }
    case examples::Concurrency::forking: {
      socketserver::ForkingTCPServer<Upper> server(address);
      if (options.threads > 0) server.max_children = options.threads;
      return examples::serve(server, options, "uppercase_echo");
    }
    case examples::Concurrency::pool: {
      socketserver::ThreadPoolMixIn<socketserver::TCPServer<Upper>> server(address);
      if (options.threads > 0) server.max_workers = options.threads;
      return examples::serve(server, options, "uppercase_echo");
    }
    case examples::Concurrency::async: {
      socketserver::AsyncTCPServer<AsyncUpper> server(address);
      if (options.threads > 0) server.threads = options.threads;
      return examples::serve(server, options, "uppercase_echo");
    }
  }
} catch (const std::exception& e) {
  fmt::print(stderr, "uppercase_echo: {}\n", e.what());
  return 1;
}
