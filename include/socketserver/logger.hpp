#ifndef SOCKETSERVER_LOGGER_HPP
#define SOCKETSERVER_LOGGER_HPP

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include <socketserver/detail/config.hpp>

namespace socketserver {

/// How much a log line matters; Logger::level drops the lines below it.
enum class LogLevel { debug, info, warning, error, off };

/// What a log line is about, so that a sink can send each kind to its own place.
enum class LogCategory {
  server,    ///< the server itself: handler errors, accept failures, shutdown
  access,    ///< one line per closed connection: peer, duration, bytes, close reason
  security,  ///< refusals, limits hit, timeouts: what a peer did that the server stopped
};

/// The name of a level or category as it appears in a log line.
constexpr std::string_view to_string(LogLevel level) noexcept {
  constexpr std::string_view names[] = {"debug", "info", "warning", "error", "off"};
  return names[static_cast<int>(level)];
}
constexpr std::string_view to_string(LogCategory category) noexcept {
  constexpr std::string_view names[] = {"server", "access", "security"};
  return names[static_cast<int>(category)];
}

/// A server's log: fmt-formatted lines with a level and a category, handed to a sink.
///
/// ```
/// server.logger.level = socketserver::LogLevel::info;  // access lines too
/// server.logger.sink = [](LogLevel level, LogCategory category, std::string_view line) { ... };
/// ```
/// The default level is `warning`: errors and security events are written, access lines
/// (info) are not. Without a sink, lines go to stderr as
/// `socketserver: [security] warning: closed connection from 127.0.0.1:4242: read: read
/// timeout: the peer sends too slowly`, one write each.
///
/// Threads: the sink is called from every thread that serves requests, at once: it must be
/// thread-safe. Set level and sink before serve_forever(), not while the server runs.
class Logger {
 public:
  using Sink = std::function<void(LogLevel, LogCategory, std::string_view)>;

  /// Lines below this level are dropped before they are formatted.
  LogLevel level = LogLevel::warning;
  /// Where lines go; empty: stderr.
  Sink sink;

  /// Whether a line of `line_level` would be written.
  bool enabled(LogLevel line_level) const noexcept { return level != LogLevel::off && line_level >= level; }

  /// Formats and writes one line, if its level is enabled. Never throws: a failing sink loses
  /// the line, not the connection.
  template <class... Args>
  void log(LogLevel line_level, LogCategory category, fmt::format_string<Args...> format,
           Args&&... args) const noexcept {
    if (!enabled(line_level)) return;
    try {
      write(line_level, category, fmt::vformat(format, fmt::make_format_args(args...)));
    } catch (...) {
    }
  }

 private:
  void write(LogLevel line_level, LogCategory category, std::string_view message) const;
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <cstdio>

namespace socketserver {

SOCKETSERVER_DECL void Logger::write(LogLevel line_level, LogCategory category, std::string_view message) const {
  if (sink) {
    sink(line_level, category, message);
    return;
  }
  const std::string line =
      fmt::format("socketserver: [{}] {}: {}\n", to_string(category), to_string(line_level), message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_LOGGER_HPP
