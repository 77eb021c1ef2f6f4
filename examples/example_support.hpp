// What the examples share: the command line (--host, --port, --concurrency, --threads, the
// limits, the PROXY protocol, the access list, TLS, the log level, --help), serving until a
// signal (and reloading the TLS certificate on SIGHUP), and upper-casing.
#ifndef SOCKETSERVER_EXAMPLES_EXAMPLE_SUPPORT_HPP
#define SOCKETSERVER_EXAMPLES_EXAMPLE_SUPPORT_HPP

#include <array>
#include <charconv>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <asio/signal_set.hpp>
#include <socketserver/access_list.hpp>
#include <socketserver/base_server.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/shutdown_on_signals.hpp>
#include <socketserver/tls_context.hpp>

namespace examples {

// The server kinds an example can run as (--concurrency).
enum class Concurrency { plain, threading, forking, pool, async };
inline constexpr std::array<std::string_view, 5> concurrency_names{"plain", "threading", "forking", "pool", "async"};

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  Concurrency concurrency = Concurrency::threading;
  std::size_t threads = 0;  // 0: the library's default
  // The limits the flags set; absent: the library's defaults.
  std::optional<double> idle_timeout;
  std::optional<std::size_t> max_connections;
  std::optional<std::size_t> max_line;
  std::optional<std::size_t> max_queued_bytes;
  // Trusted PROXY protocol senders, and the access list (CIDR each).
  std::vector<std::string> proxies;
  std::vector<std::string> allow;
  std::vector<std::string> deny;
  std::optional<socketserver::LogLevel> log_level;
  // TLS: on when a certificate is given.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  socketserver::ClientAuth tls_client_auth = socketserver::ClientAuth::none;
  std::optional<double> handshake_timeout;
  bool udp = false;  // --udp: the datagram form of the protocol
  // http_server's: the directory served, and the Cache-Control of its files (empty: none).
  std::string directory = ".";
  std::string cache_control = "no-cache";
};

// The level a --log-level name stands for.
inline std::optional<socketserver::LogLevel> log_level_named(std::string_view name) {
  for (const auto level : {socketserver::LogLevel::debug, socketserver::LogLevel::info, socketserver::LogLevel::warning,
                           socketserver::LogLevel::error, socketserver::LogLevel::off}) {
    if (socketserver::to_string(level) == name) return level;
  }
  return std::nullopt;
}

// Pass to parse_options() to accept --concurrency and --threads, --udp, or --directory and
// --cache-control (several: |).
inline constexpr unsigned with_concurrency = 1;
inline constexpr unsigned with_udp = 2;
inline constexpr unsigned with_directory = 4;

// Parses argv; prints usage and exits on --help (status 0) or on a bad argument (status 2).
inline Options parse_options(int argc, char** argv, std::string_view what, std::uint16_t default_port,
                             unsigned extra_options = 0) {
  const bool concurrency_options = (extra_options & with_concurrency) != 0;
  const bool udp_option = (extra_options & with_udp) != 0;
  const bool directory_options = (extra_options & with_directory) != 0;
  Options options;
  options.port = default_port;
  const std::string_view name = argc > 0 ? argv[0] : "example";
  const auto usage = [&](std::FILE* out, int status) {
    fmt::print(
        out,
        "usage: {} [--host HOST] [--port PORT]{} [--idle-timeout SECONDS] [--max-connections N]\n"
        "       [--max-line BYTES] [--max-queued-bytes BYTES] [--proxy-protocol CIDR]... [--allow CIDR]... [--deny "
        "CIDR]...\n"
        "       [--tls-cert FILE --tls-key FILE [--tls-ca FILE] [--tls-client-auth MODE]\n"
        "       [--handshake-timeout SECONDS]] [--log-level LEVEL]\n\n{}\n\n",
        name,
        std::string(concurrency_options ? " [--concurrency MODE] [--threads N]" : "") + (udp_option ? " [--udp]" : "") +
            (directory_options ? " [--directory DIR] [--cache-control VALUE]" : ""),
        what);
    fmt::print(out, "  --host HOST         address to listen on (default 127.0.0.1; :: for IPv6)\n");
    fmt::print(out, "  --port PORT         port to listen on (default {}; 0 picks a free one)\n", default_port);
    if (concurrency_options) {
      fmt::print(out, "  --concurrency MODE  threading (default): a thread per connection; plain: one\n");
      fmt::print(out, "                      connection at a time; forking: a process per connection;\n");
      fmt::print(out, "                      pool: a bounded thread pool; async: coroutines on event loops\n");
      fmt::print(out, "  --threads N         async: event-loop threads; pool: worker threads; forking:\n");
      fmt::print(out, "                      most children at once (default: the library's)\n");
    }
    if (udp_option) {
      fmt::print(out, "  --udp               serve UDP: one datagram per request, the reply to its\n");
      fmt::print(out, "                      source, at most --threads handled at once (the rest dropped)\n");
      fmt::print(out, "  --threads N         --udp: most requests handled at once (default: the library's)\n");
    }
    if (directory_options) {
      fmt::print(out, "  --directory DIR     the directory to serve (default: the current one)\n");
      fmt::print(out, "  --cache-control VALUE  the Cache-Control header of files (default no-cache:\n");
      fmt::print(out, "                      caches ask again, and get 304 while the file is the same;\n");
      fmt::print(out, "                      an empty VALUE sends none)\n");
    }
    const socketserver::Limits defaults;
    fmt::print(out, "  --idle-timeout SECONDS  close a connection that sends nothing for this long\n");
    fmt::print(out, "                      between requests (default {} s)\n", defaults.idle_timeout->count());
    fmt::print(out, "  --max-connections N  most connections at once; more wait (default {})\n",
               defaults.max_connections);
    fmt::print(out, "  --max-line BYTES    longest line accepted (default {})\n", defaults.max_line);
    fmt::print(out, "  --max-queued-bytes BYTES  most bytes queued for a client that reads too slowly;\n");
    fmt::print(out, "                      past it the client is cut (default {})\n", defaults.max_queued_bytes);
    fmt::print(out, "  --proxy-protocol CIDR  a proxy whose connections begin with a PROXY protocol\n");
    fmt::print(out, "                      header (v1 or v2), then required; repeatable (default: none)\n");
    fmt::print(out, "  --allow CIDR        serve only peers in these networks; repeatable\n");
    fmt::print(out, "  --deny CIDR         refuse peers in these networks; repeatable (the longest\n");
    fmt::print(out, "                      matching prefix of --allow and --deny decides)\n");
    const socketserver::TlsSettings tls;
    fmt::print(out, "  --tls-cert FILE     serve TLS with this certificate chain (PEM); SIGHUP reloads it\n");
    fmt::print(out, "  --tls-key FILE      the certificate's private key (PEM)\n");
    fmt::print(out, "  --tls-ca FILE       CA certificates (PEM) that client certificates must verify against\n");
    fmt::print(out, "  --tls-client-auth MODE  none (default), optional or required: ask clients for a\n");
    fmt::print(out, "                      certificate (mutual TLS; needs --tls-ca)\n");
    fmt::print(out, "  --handshake-timeout SECONDS  longest TLS handshake, from accept (default {} s)\n",
               tls.handshake_timeout.count());
    fmt::print(out, "  --log-level LEVEL   debug, info (an access line per connection), warning\n");
    fmt::print(out, "                      (the default), error or off; lines go to stderr\n");
    fmt::print(out, "  --help              show this help\n");
    std::exit(status);
  };
  const auto bad = [&](std::string_view message, std::string_view value) {
    fmt::print(stderr, "{}: {} '{}'\n", name, message, value);
    usage(stderr, 2);
  };
  const auto number = [&](std::string_view value, auto& out) {
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
    if (ec != std::errc() || end != value.data() + value.size()) bad("invalid number", value);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(stdout, 0);
    if (udp_option && arg == "--udp") {
      options.udp = true;
      continue;
    }
    const bool known = arg == "--host" || arg == "--port" || arg == "--idle-timeout" || arg == "--max-connections" ||
                       arg == "--max-line" || arg == "--max-queued-bytes" || arg == "--proxy-protocol" ||
                       arg == "--allow" || arg == "--deny" || arg == "--log-level" || arg == "--tls-cert" ||
                       arg == "--tls-key" || arg == "--tls-ca" || arg == "--tls-client-auth" ||
                       arg == "--handshake-timeout" || ((concurrency_options || udp_option) && arg == "--threads") ||
                       (concurrency_options && arg == "--concurrency") ||
                       (directory_options && (arg == "--directory" || arg == "--cache-control"));
    if (i + 1 >= argc || !known) bad("unknown or incomplete option", arg);
    const std::string_view value = argv[++i];
    if (arg == "--host") {
      options.host = value;
    } else if (arg == "--port") {
      number(value, options.port);
    } else if (arg == "--directory") {
      options.directory = value;
    } else if (arg == "--cache-control") {
      options.cache_control = value;
    } else if (arg == "--threads") {
      number(value, options.threads);
    } else if (arg == "--idle-timeout") {
      number(value, options.idle_timeout.emplace());
    } else if (arg == "--max-connections") {
      number(value, options.max_connections.emplace());
    } else if (arg == "--max-line") {
      number(value, options.max_line.emplace());
    } else if (arg == "--max-queued-bytes") {
      number(value, options.max_queued_bytes.emplace());
    } else if (arg == "--proxy-protocol") {
      options.proxies.emplace_back(value);
    } else if (arg == "--allow") {
      options.allow.emplace_back(value);
    } else if (arg == "--deny") {
      options.deny.emplace_back(value);
    } else if (arg == "--tls-cert") {
      options.tls_cert = value;
    } else if (arg == "--tls-key") {
      options.tls_key = value;
    } else if (arg == "--tls-ca") {
      options.tls_ca = value;
    } else if (arg == "--tls-client-auth") {
      if (value == "none") {
        options.tls_client_auth = socketserver::ClientAuth::none;
      } else if (value == "optional") {
        options.tls_client_auth = socketserver::ClientAuth::optional;
      } else if (value == "required") {
        options.tls_client_auth = socketserver::ClientAuth::required;
      } else {
        bad("unknown client auth mode", value);
      }
    } else if (arg == "--handshake-timeout") {
      number(value, options.handshake_timeout.emplace());
    } else if (arg == "--log-level") {
      options.log_level = log_level_named(value);
      if (!options.log_level) bad("unknown log level", value);
    } else {
      std::size_t mode = 0;
      while (mode < concurrency_names.size() && concurrency_names[mode] != value) ++mode;
      if (mode == concurrency_names.size()) bad("unknown concurrency", value);
      options.concurrency = static_cast<Concurrency>(mode);
    }
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) bad("--tls-cert and --tls-key go together", name);
  if (options.udp && !options.tls_cert.empty()) bad("TLS is for streams: --udp does not take", "--tls-cert");
  return options;
}

// The TLS context the flags describe, or null without --tls-cert. Throws what TlsContext does.
inline std::shared_ptr<socketserver::TlsContext> tls_context(const Options& options) {
  if (options.tls_cert.empty()) return nullptr;
  socketserver::TlsSettings tls;
  tls.cert_file = options.tls_cert;
  tls.key_file = options.tls_key;
  tls.ca_file = options.tls_ca;
  tls.client_auth = options.tls_client_auth;
  if (options.handshake_timeout) tls.handshake_timeout = socketserver::Seconds(*options.handshake_timeout);
  return std::make_shared<socketserver::TlsContext>(std::move(tls));
}

// ASCII upper-casing, written so that the compiler vectorises it.
template <class Text>
void to_upper(Text& text) {
  for (char& c : text) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c);
}

// Serves until SIGINT or SIGTERM, then closes the server, which lets connected clients finish
// (for the limits' drain_timeout). A second signal ends the process at once. SIGHUP reloads
// the TLS certificate and key (the old ones stay on failure).
template <class Server>
int serve(Server& server, const Options& options, std::string_view name) {
  if (options.idle_timeout) server.limits.idle_timeout = socketserver::Seconds(*options.idle_timeout);
  if (options.max_connections) server.limits.max_connections = *options.max_connections;
  if (options.max_line) server.limits.max_line = *options.max_line;
  if (options.max_queued_bytes) server.limits.max_queued_bytes = *options.max_queued_bytes;
  if (options.log_level) server.logger.level = *options.log_level;
  // A malformed CIDR throws std::invalid_argument naming it: main() prints it and exits 1.
  if (!options.proxies.empty()) server.proxy_protocol.trusted = socketserver::AccessList(options.proxies);
  if (!options.allow.empty() || !options.deny.empty())
    server.set_access_list(socketserver::AccessList(options.allow, options.deny));
  if constexpr (requires { server.tls; }) server.tls = tls_context(options);
  asio::signal_set hangup(server.get_executor(), SIGHUP);
  const std::function<void()> reload_on_hangup = [&] {
    hangup.async_wait([&](std::error_code ec, int) {
      if (ec) return;
      if constexpr (requires { server.tls; }) {
        if (server.tls) {
          try {
            server.tls->reload();
            server.logger.log(socketserver::LogLevel::info, socketserver::LogCategory::security,
                              "SIGHUP: TLS certificate reloaded from {}", options.tls_cert);
          } catch (const std::exception& e) {
            server.logger.log(socketserver::LogLevel::error, socketserver::LogCategory::security,
                              "SIGHUP: TLS reload failed, the old certificate stays: {}", e.what());
          }
        }
      }
      reload_on_hangup();
    });
  };
  reload_on_hangup();
  socketserver::ShutdownOnSignals stop(server);
  stop.on_signal = [name](int) {
    fmt::print("{}: shutting down; a second signal stops at once\n", name);
    std::fflush(stdout);
  };
  fmt::print("{} listening on {}{}\n", name, server.server_address(), options.tls_cert.empty() ? "" : " (TLS)");
  std::fflush(stdout);
  server.serve_forever();
  server.server_close();
  return 0;
}

}  // namespace examples

#endif  // SOCKETSERVER_EXAMPLES_EXAMPLE_SUPPORT_HPP
