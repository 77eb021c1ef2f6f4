// get_time: answers the request line "get_time" with the local time, YYYY-MM-DD HH:MM:SS.
//   build/examples/get_time &   printf get_time | nc -N 127.0.0.1 8000
// --udp serves the same protocol over UDP, one datagram per request, the reply to its source:
//   build/examples/get_time --udp &   printf get_time | nc -u -w1 127.0.0.1 8000
#include <socketserver/socketserver.hpp>

#include <cstdio>
#include <ctime>
#include <exception>
#include <string>
#include <string_view>

#include <fmt/chrono.h>

#include "example_support.hpp"

// A request without its line end.
std::string_view stripped(std::string_view request) {
  while (!request.empty() && (request.back() == '\n' || request.back() == '\r')) request.remove_suffix(1);
  return request;
}

bool is_get_time(std::string_view request) { return stripped(request) == "get_time"; }

std::string now() { return fmt::format("{:%Y-%m-%d %H:%M:%S}\n", fmt::localtime(std::time(nullptr))); }

struct GetTime : socketserver::StreamRequestHandler {
  void handle() override {
    // A last request without "\n" counts too: readline() returns it at end of stream.
    while (auto line = rfile.readline()) {
      if (is_get_time(*line))
        wfile.write(now());
      else
        wfile.write(fmt::format("error: invalid request '{}', expected 'get_time'\n", stripped(*line)));
    }
  }
};

// Over UDP any datagram may come from a forged source, so only a valid request is answered:
// the reply (20 bytes) is barely bigger than it, and an error message would give a forger
// bytes to aim at someone else (docs/limits.md, amplification).
struct GetTimeDatagram : socketserver::DatagramRequestHandler {
  void handle() override {
    if (is_get_time(packet)) wfile.write(now());
  }
};

int main(int argc, char** argv) try {
  const auto options =
      examples::parse_options(argc, argv, "Answers 'get_time' with the local time.", 8000, examples::with_udp);
  const socketserver::Address address(options.host, options.port);
  if (options.udp) {
    socketserver::ThreadingUDPServer<GetTimeDatagram> server(address);
    if (options.threads > 0) server.max_threads = options.threads;
    return examples::serve(server, options, "get_time");
  }
  socketserver::ThreadingTCPServer<GetTime> server(address);
  return examples::serve(server, options, "get_time");
} catch (const std::exception& e) {
  fmt::print(stderr, "get_time: {}\n", e.what());
  return 1;
}
