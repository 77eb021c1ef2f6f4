// uppercase_echo: every line a client sends comes back in upper case.
//   build/examples/uppercase_echo --port 9999 &   printf 'hello\n' | nc -N 127.0.0.1 9999
#include <socketserver/socketserver.hpp>

#include <asio/signal_set.hpp>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <exception>

#include "example_options.hpp"

struct Upper : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) {
      for (char& c : *line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      wfile.write(*line);
    }
  }
};

int main(int argc, char** argv) try {
  const auto options = examples::parse_options(argc, argv, "Echoes every line back in upper case.", 9999);
  socketserver::ThreadingTCPServer<Upper> server({options.host, options.port});

  // SIGINT/SIGTERM stop the loop; the handler runs on the serving thread.
  asio::signal_set signals(server.get_executor(), SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) { server.shutdown(); });

  fmt::print("uppercase_echo listening on {}\n", server.server_address());
  std::fflush(stdout);
  server.serve_forever();
  server.server_close();  // waits for connected clients to finish
} catch (const std::exception& e) {
  fmt::print(stderr, "uppercase_echo: {}\n", e.what());
  return 1;
}
