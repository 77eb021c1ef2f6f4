#ifndef SOCKETSERVER_STREAM_REQUEST_HANDLER_HPP
#define SOCKETSERVER_STREAM_REQUEST_HANDLER_HPP

#include <memory>
#include <optional>

#include <socketserver/base_request_handler.hpp>
#include <socketserver/connection_handle.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/buffered_writer.hpp>
#include <socketserver/io/detail/writer_thread_outbox.hpp>
#include <socketserver/io/socket_stream.hpp>
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

  /// A handle to this connection, for other threads to send to it, close it, or find it in a
  /// ConnectionGroup (ConnectionHandle). The first call, on the handler's thread after setup(),
  /// starts a writer thread of the connection's own, which writes what the handle queues
  /// through wfile; finish() writes what is left and stops it.
  ConnectionHandle connection_handle();

  /// Flushes wfile. As in Python, a socket error on this last flush is ignored (a limit, such as write_timeout, is
  /// not): the peer has gone and there is no one left to tell. An override must call it, or buffered replies are lost.
  void finish() override;

  StreamRequestHandler() = default;
  StreamRequestHandler(const StreamRequestHandler&) = delete;
  StreamRequestHandler& operator=(const StreamRequestHandler&) = delete;
  // Stops the handle's writer thread, if finish() has not, before wfile goes.
  ~StreamRequestHandler() override {
    if (outbox_) outbox_->stop(false);  // handles may still hold it: its thread must end now
  }

 private:
  std::shared_ptr<detail::WriterThreadOutbox> outbox_;  // after wfile: it goes first
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <stdexcept>
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

SOCKETSERVER_DECL ConnectionHandle StreamRequestHandler::connection_handle() {
  if (!outbox_) {
    if (request == nullptr) throw std::logic_error("connection_handle() before the handler's setup()");
    const bool plain = dynamic_cast<SocketStream*>(&request->stream()) != nullptr;  // no TLS, no layers
    auto outbox = std::make_shared<detail::WriterThreadOutbox>(detail::RequestAccess::record(*request), client_address,
                                                               request->fileno(), wfile, plain);
    detail::IoAccess::attach_outbox(wfile, *outbox);
    outbox->start();
    outbox_ = std::move(outbox);
  }
  return ConnectionHandle(outbox_);
}

SOCKETSERVER_DECL void StreamRequestHandler::finish() {
  if (outbox_) outbox_->stop(true);  // what other threads queued goes out before the last flush
  try {
    wfile.flush();
  } catch (const std::system_error& e) {
    if (e.code().category() == error_category()) throw;  // a limit (write_timeout) is reported
  }
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_STREAM_REQUEST_HANDLER_HPP
