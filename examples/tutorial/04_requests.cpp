// Tutorial, chapter 4: a request of several lines. "SUM" then numbers, one a line, then "END"
// is answered with their sum; setup() and finish() bracket each connection.
//   build/examples/tutorial/04_requests &   printf 'SUM\n1\n2\nEND\n' | nc -N 127.0.0.1 9000
#include <socketserver/socketserver.hpp>

#include <charconv>
#include <string>
#include <string_view>

#include <fmt/core.h>

struct Summer : socketserver::StreamRequestHandler {
  void setup() override {
    StreamRequestHandler::setup();  // attaches rfile and wfile: call it first
    wfile.write("ready\n");
  }

  void handle() override {
    while (auto line = rfile.readline()) {
      if (strip(*line) != "SUM") {
        wfile.write("error: expected SUM\n");
        continue;
      }
      // From here to end_request(), each line must come within limits.read_timeout, and a
      // server that is shutting down lets the request finish.
      rfile.begin_request();
      long total = 0;
      while (auto number = rfile.readline()) {
        const std::string_view text = strip(*number);
        if (text == "END") break;
        long value = 0;
        std::from_chars(text.data(), text.data() + text.size(), value);
        total += value;
      }
      wfile.write(fmt::format("{}\n", total));
      rfile.end_request();  // counted in stats().requests and the access line
    }
  }

  void finish() override {
    wfile.write("bye\n");
    StreamRequestHandler::finish();  // flushes wfile: call it last
  }

  static std::string_view strip(std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    return line;
  }
};

int main() {
  socketserver::ThreadingTCPServer<Summer> server({"127.0.0.1", 9000});
  server.limits.read_timeout = socketserver::Seconds(10);
  socketserver::ShutdownOnSignals stop(server);
  server.serve_forever();
  server.server_close();
}
