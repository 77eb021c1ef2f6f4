// Tutorial, chapter 2: lines in, lines out, through rfile and wfile; Ctrl-C stops it cleanly.
//   build/examples/tutorial/02_lines &   printf 'one\ntwo\n' | nc -N 127.0.0.1 9000
#include <socketserver/socketserver.hpp>

#include <fmt/core.h>

struct Numbered : socketserver::StreamRequestHandler {
  void handle() override {
    int n = 0;
    while (auto line = rfile.readline()) wfile.write(fmt::format("{}: {}", ++n, *line));
  }
};

int main() {
  socketserver::TCPServer<Numbered> server({"127.0.0.1", 9000});
  socketserver::ShutdownOnSignals stop(server);  // SIGINT, SIGTERM: serve_forever() returns
  fmt::print("serving on {}\n", server.server_address());
  server.serve_forever();
  server.server_close();
}
