// What the examples share: the command line (--host, --port, --help) and stopping on a signal.
#ifndef SOCKETSERVER_EXAMPLES_EXAMPLE_SUPPORT_HPP
#define SOCKETSERVER_EXAMPLES_EXAMPLE_SUPPORT_HPP

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <asio/signal_set.hpp>
#include <csignal>
#include <system_error>

#include <fmt/format.h>
#include <socketserver/base_server.hpp>

namespace examples {

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
};

// Parses argv; prints usage and exits on --help (status 0) or on a bad argument (status 2).
inline Options parse_options(int argc, char** argv, std::string_view what, std::uint16_t default_port) {
  Options options;
  options.port = default_port;
  const std::string_view name = argc > 0 ? argv[0] : "example";
  const auto usage = [&](std::FILE* out, int status) {
    fmt::print(out, "usage: {} [--host HOST] [--port PORT]\n\n{}\n\n", name, what);
    fmt::print(out, "  --host HOST  address to listen on (default 127.0.0.1; :: for IPv6)\n");
    fmt::print(out, "  --port PORT  port to listen on (default {}; 0 picks a free one)\n", default_port);
    fmt::print(out, "  --help       show this help\n");
    std::exit(status);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(stdout, 0);
    if (i + 1 >= argc || (arg != "--host" && arg != "--port")) {
      fmt::print(stderr, "{}: unknown or incomplete option '{}'\n", name, arg);
      usage(stderr, 2);
    }
    const std::string_view value = argv[++i];
    if (arg == "--host") {
      options.host = value;
    } else {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), options.port);
      if (ec != std::errc() || end != value.data() + value.size()) {
        fmt::print(stderr, "{}: invalid port '{}'\n", name, value);
        usage(stderr, 2);
      }
    }
  }
  return options;
}

// While alive, SIGINT and SIGTERM stop `server`'s serve_forever() (the handler runs on the
// serving thread), after which server_close() waits for connected clients. The handler removes
// itself, so a second signal ends the process at once.
class StopOnSignals {
 public:
  StopOnSignals(socketserver::BaseServer& server, std::string_view name)
      : signals_(server.get_executor(), SIGINT, SIGTERM) {
    signals_.async_wait([this, &server, name](std::error_code, int) {
      signals_.clear();  // before the message below, which tells a script it may signal again
      server.shutdown();
      fmt::print("{}: shutting down; a second signal stops at once\n", name);
      std::fflush(stdout);
    });
  }

 private:
  asio::signal_set signals_;
};

}  // namespace examples

#endif  // SOCKETSERVER_EXAMPLES_EXAMPLE_SUPPORT_HPP
