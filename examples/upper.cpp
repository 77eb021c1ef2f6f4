// upper: every line a client sends comes back in upper case, each client on a thread of its own.
//   build/examples/upper &   printf 'hello\n' | nc -N 127.0.0.1 9999
#include <socketserver/socketserver.hpp>

#include <cctype>

struct Upper : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) {
      for (char& c : *line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      wfile.write(*line);
    }
  }
};

int main() {
  socketserver::ThreadingTCPServer<Upper> server({"127.0.0.1", 9999});
  socketserver::ShutdownOnSignals stop(server);  // Ctrl-C: stop accepting, let clients finish
  server.serve_forever();
  server.server_close();
}
