#ifndef SOCKETSERVER_STREAM_REQUEST_HANDLER_HPP
#define SOCKETSERVER_STREAM_REQUEST_HANDLER_HPP

#include <optional>

#include <socketserver/base_request_handler.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/buffered_writer.hpp>
#include <socketserver/seconds.hpp>
#include <socketserver/stream_request.hpp>

namespace socketserver {

/// A handler for stream servers (TCP, Unix stream) that reads `rfile` and writes `wfile`.
///
/// ```
/// struct Upper : socketserver::StreamRequestHandler {
///   void handle() override {
///     while (auto line = rfile.readline()) wfile.write(to_upper(*line));
///   }
/// };
/// ```
/// wfile is buffered and flushed before rfile waits for input and after handle() returns, so
/// a reply never waits behind a request that has not arrived. Differences from Python: Nagle's
/// algorithm is off by default, wfile is buffered, and readline() without a size is capped by
/// rfile.max_line (docs/python-mapping.md).
class StreamRequestHandler : public BaseRequestHandler {
 public:
  /// Limit on each wait for the peer (Python's `timeout`): past it, std::errc::timed_out.
  /// std::nullopt (the default) leaves each wait to the server's limits.
  /// Set it, like disable_nagle_algorithm, rfile.max_line or wfile.buffer_size, in your
  /// handler's constructor or in setup() before calling StreamRequestHandler::setup().
  std::optional<Seconds> timeout;

  /// Sets TCP_NODELAY, so small replies leave at once. Python's default is false; ours is true.
  bool disable_nagle_algorithm = true;

  /// The buffered reader over the connection.
  BufferedReader rfile;
  /// The buffered writer over the connection.
  BufferedWriter wfile;

  /// Applies timeout and disable_nagle_algorithm and attaches rfile and wfile, which hold the
  /// connection to the server's limits. An override must call it.
  void setup() override;

  /// Flushes wfile. As in Python, a socket error on this last flush is ignored (a limit, such as write_timeout, is
  /// not): the peer has gone and there is no one left to tell. An override must call it, or buffered replies are lost.
  void finish() override;
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <system_error>

#include <socketserver/error.hpp>
#include <socketserver/io/detail/io_access.hpp>

namespace socketserver {

SOCKETSERVER_DECL void StreamRequestHandler::setup() {
  ByteStream& stream = request->stream();
  detail::ConnectionRecord* record = detail::RequestAccess::record(*request);
  if (record != nullptr) {
    record->set_user_timeout(timeout);
    stream.set_timeout(record->wait_cap());
  } else {
    stream.set_timeout(timeout);
  }
  if (disable_nagle_algorithm) stream.set_no_delay(true);
  detail::IoAccess::attach(wfile, stream, record);
  detail::IoAccess::attach(rfile, stream, &wfile, record);
}

SOCKETSERVER_DECL void StreamRequestHandler::finish() {
  try {
    wfile.flush();
  } catch (const std::system_error& e) {
    if (e.code().category() == error_category()) throw;  // a limit (write_timeout) is reported
  }
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_STREAM_REQUEST_HANDLER_HPP
