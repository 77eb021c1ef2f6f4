#ifndef SOCKETSERVER_ASYNC_STREAM_REQUEST_HANDLER_HPP
#define SOCKETSERVER_ASYNC_STREAM_REQUEST_HANDLER_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <system_error>

#include <asio/awaitable.hpp>

#include <socketserver/address.hpp>
#include <socketserver/async/buffered_reader.hpp>
#include <socketserver/async/buffered_writer.hpp>
#include <socketserver/async/detail/event_loop.hpp>
#include <socketserver/error.hpp>
#include <socketserver/request.hpp>

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
/// never block in it (no blocking I/O, no long computation, no request->recv()); co_await
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
    if (disable_nagle_algorithm) {
      const int on = 1;
      // Unix sockets have no Nagle algorithm: the error there is expected and ignored.
      ::setsockopt(connection_->fd(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    wfile.attach(*connection_);
    rfile.attach(*connection_, &wfile);
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

  /// The request: it owns the connection (Python's `self.request`). Read and write through
  /// rfile and wfile, never through its blocking recv()/sendall().
  Request* request = nullptr;
  /// The peer's address.
  Address client_address;
  /// The server that accepted the request; cast it to your server type to reach its members.
  BaseServer* server = nullptr;

 private:
  friend struct detail::AsyncHandlerAccess;
  detail::Connection* connection_ = nullptr;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_ASYNC_STREAM_REQUEST_HANDLER_HPP
