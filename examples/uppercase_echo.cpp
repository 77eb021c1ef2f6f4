// uppercase_echo: every line a client sends comes back in upper case.
//   build/examples/uppercase_echo --port 9999 &   printf 'hello\n' | nc -N 127.0.0.1 9999
#include <socketserver/socketserver.hpp>

#include <cctype>
#include <cstdio>
#include <exception>

#include "example_support.hpp"

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

  const examples::StopOnSignals stop(server, "uppercase_echo");  // then server_close() waits for clients

  fmt::print("uppercase_echo listening on {}\n", server.server_address());
  std::fflush(stdout);
  server.serve_forever();
  server.server_close();
} catch (const std::exception& e) {
  fmt::print(stderr, "uppercase_echo: {}\n", e.what());
  return 1;
}
