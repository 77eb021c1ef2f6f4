#ifndef SOCKETSERVER_ASYNC_STREAM_REQUEST_HANDLER_HPP
#define SOCKETSERVER_ASYNC_STREAM_REQUEST_HANDLER_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <memory>
#include <stdexcept>
#include <system_error>

#include <asio/awaitable.hpp>

#include <socketserver/address.hpp>
#include <socketserver/async/buffered_reader.hpp>
#include <socketserver/async/buffered_writer.hpp>
#include <socketserver/async/detail/event_loop.hpp>
#include <socketserver/async/detail/loop_outbox.hpp>
#include <socketserver/async/stream_request.hpp>
#include <socketserver/base_request_handler.hpp>
#include <socketserver/connection_handle.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/detail/io_access.hpp>

namespace socketserver {

class BaseServer;

namespace detail {
struct AsyncHandlerAccess;
}

/// A handler for async stream servers (AsyncTCPServer, AsyncUnixStreamServer) whose handle()
/// is a C++20 coroutine: StreamRequestHandler with `co_await`.
///
/// ```
/// struct Echo : socketserver::AsyncStreamRequestHandler {
///   asio::awaitable<void> handle() override {
///     while (auto line = co_await rfile.readline()) co_await wfile.write(*line);
///   }
/// };
/// ```
/// The server default-constructs the handler, fills in request, client_address and server,
/// then calls setup(), co_awaits handle() and then finish(); finish() runs also when handle()
/// throws, and the exception then goes to the server's handle_error(). An exception from
/// setup() skips finish(), as in Python.
///
/// Threads: the handler runs on one event-loop thread, shared with many other connections:
/// never block in it (no blocking I/O, no long computation); co_await
/// instead. It may co_await any asio operation on its executor (timers, other sockets).
class AsyncStreamRequestHandler {
 public:
  AsyncStreamRequestHandler() = default;
  AsyncStreamRequestHandler(const AsyncStreamRequestHandler&) = delete;
  AsyncStreamRequestHandler& operator=(const AsyncStreamRequestHandler&) = delete;
  virtual ~AsyncStreamRequestHandler() = default;

  /// Sets TCP_NODELAY, so small replies leave at once. Python's default is false; ours is true.
  bool disable_nagle_algorithm = true;

  /// The buffered reader over the connection; its results are views valid until the next call.
  AsyncBufferedReader rfile;
  /// The buffered writer over the connection.
  AsyncBufferedWriter wfile;

  /// Applies disable_nagle_algorithm and attaches rfile and wfile. An override must call it.
  virtual void setup() {
    if (disable_nagle_algorithm) connection_->stream().set_no_delay(true);
    detail::IoAccess::attach(wfile, *connection_);
    detail::IoAccess::attach(rfile, *connection_, &wfile);
  }

  /// Serves the request. Override it; the default does nothing.
  virtual asio::awaitable<void> handle() { co_return; }

  /// Flushes wfile; a socket error on this last flush is ignored (a limit, such as write_timeout, is not), as in
  /// StreamRequestHandler. An override must co_await it, or buffered replies are lost.
  virtual asio::awaitable<void> finish() {
    try {
      co_await wfile.flush();
    } catch (const std::system_error& e) {
      if (e.code().category() == error_category()) throw;  // a limit (write_timeout) is reported
    }
  }

  /// A handle to this connection, for other threads and loops to send to it, close it, or find
  /// it in a ConnectionGroup (ConnectionHandle). What it queues is written by this connection's
  /// event loop, through wfile, between the handler's own writes; finish() writes what is left.
  /// Call it after setup().
  ConnectionHandle connection_handle() {
    if (!outbox_) {
      if (connection_ == nullptr || request == nullptr)
        throw std::logic_error("connection_handle() before the handler's setup()");
      outbox_ = std::make_shared<detail::LoopOutbox>(connection_->record(), client_address, request->fileno(),
                                                     connection_->loop().context(), wfile);
      detail::IoAccess::attach_outbox(wfile, *outbox_);
    }
    return ConnectionHandle(outbox_);
  }

  /// The server as its own type (Python's self.server, which is the real object): checked.
  template <class Server>
  Server& server_as() const {
    return socketserver::server_as<Server>(server);
  }

  /// The request: it owns the connection (Python's `self.request`). It has no blocking
  /// recv()/sendall(): read and write through rfile and wfile.
  AsyncStreamRequest* request = nullptr;
  /// The peer's address; behind a trusted proxy (PROXY protocol), the client's.
  Address client_address;
  /// The server that accepted the request (server_as() gives it as its own type).
  BaseServer* server = nullptr;

 private:
  friend struct detail::AsyncHandlerAccess;
  detail::Connection* connection_ = nullptr;
  std::shared_ptr<detail::LoopOutbox> outbox_;  // once connection_handle() made it
};

}  // namespace socketserver

#endif  // SOCKETSERVER_ASYNC_STREAM_REQUEST_HANDLER_HPP
