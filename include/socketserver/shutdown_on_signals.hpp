#ifndef SOCKETSERVER_SHUTDOWN_ON_SIGNALS_HPP
#define SOCKETSERVER_SHUTDOWN_ON_SIGNALS_HPP

#include <csignal>
#include <functional>
#include <initializer_list>

#include <asio/basic_signal_set.hpp>
#include <asio/io_context.hpp>

#include <socketserver/base_server.hpp>
#include <socketserver/detail/config.hpp>

namespace socketserver {

/// While alive, SIGINT and SIGTERM (or the signals given) stop `server`'s serve_forever():
/// the graceful shutdown of a daemon.
///
/// ```
/// socketserver::ThreadingTCPServer<Handler> server({"0.0.0.0", 8080});
/// socketserver::ShutdownOnSignals stop(server);
/// server.serve_forever();  // returns after SIGINT or SIGTERM
/// server.server_close();   // drains: limits.drain_timeout, then cuts what is left
/// ```
/// The first signal calls server.shutdown() and logs it; the helper then gives the signals
/// back to their default action, so a second one ends the process at once (an operator's way
/// out of a drain that takes too long).
///
/// Threads: the signal is handled on the serving thread, through the server's executor (a
/// signal handler itself may not lock the mutex shutdown() takes). Construct it before
/// serve_forever(), and keep it alive while serving.
class ShutdownOnSignals {
 public:
  explicit ShutdownOnSignals(BaseServer& server, std::initializer_list<int> signals = {SIGINT, SIGTERM});
  ShutdownOnSignals(const ShutdownOnSignals&) = delete;
  ShutdownOnSignals& operator=(const ShutdownOnSignals&) = delete;
  ~ShutdownOnSignals();

  /// Called on the serving thread after shutdown() has been requested, with the signal.
  std::function<void(int)> on_signal;

  /// The signal that stopped the server; 0 while none has.
  int signal() const noexcept { return signal_; }

 private:
  // On the io_context's own executor (as BaseServer's timer), not any_io_executor.
  asio::basic_signal_set<asio::io_context::executor_type> signals_;
  int signal_ = 0;
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <system_error>

#include <socketserver/logger.hpp>

namespace socketserver {

SOCKETSERVER_DECL ShutdownOnSignals::ShutdownOnSignals(BaseServer& server, std::initializer_list<int> signals)
    : signals_(server.get_executor()) {
  for (const int signal : signals) signals_.add(signal);
  signals_.async_wait([this, &server](std::error_code ec, int signal) {
    if (ec) return;  // the helper is going
    std::error_code ignored;
    signals_.clear(ignored);  // default actions again: a second signal ends the process
    signal_ = signal;
    server.logger.log(LogLevel::warning, LogCategory::server, "signal {} received: shutting down", signal);
    server.shutdown();
    if (on_signal) on_signal(signal);
  });
}

SOCKETSERVER_DECL ShutdownOnSignals::~ShutdownOnSignals() = default;

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_SHUTDOWN_ON_SIGNALS_HPP
