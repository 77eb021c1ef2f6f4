// get_time: answers the request line "get_time" with the local time, YYYY-MM-DD HH:MM:SS.
//   build/examples/get_time &   printf get_time | nc -N 127.0.0.1 8000
#include <socketserver/socketserver.hpp>

#include <cstdio>
#include <ctime>
#include <exception>
#include <string_view>

#include <fmt/chrono.h>

#include "example_support.hpp"

struct GetTime : socketserver::StreamRequestHandler {
  void handle() override {
    // A last request without "\n" counts too: readline() returns it at end of stream.
    while (auto line = rfile.readline()) {
      std::string_view request = *line;
      while (!request.empty() && (request.back() == '\n' || request.back() == '\r')) request.remove_suffix(1);
      if (request == "get_time")
        wfile.write(fmt::format("{:%Y-%m-%d %H:%M:%S}\n", fmt::localtime(std::time(nullptr))));
      else
        wfile.write(fmt::format("error: invalid request '{}', expected 'get_time'\n", request));
    }
  }
};

int main(int argc, char** argv) try {
  const auto options = examples::parse_options(argc, argv, "Answers 'get_time' with the local time.", 8000);
  socketserver::ThreadingTCPServer<GetTime> server({options.host, options.port});
  return examples::serve(server, options, "get_time");
} catch (const std::exception& e) {
  fmt::print(stderr, "get_time: {}\n", e.what());
  return 1;
}
