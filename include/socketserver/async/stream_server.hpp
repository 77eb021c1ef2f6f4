#ifndef SOCKETSERVER_ASYNC_STREAM_SERVER_HPP
#define SOCKETSERVER_ASYNC_STREAM_SERVER_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <socketserver/address.hpp>
#include <socketserver/async/detail/awaitable_thread.hpp>
#include <socketserver/async/detail/event_loop.hpp>
#include <socketserver/async/stream_request.hpp>
#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/detail/exception.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/proxy_stream.hpp>
#include <socketserver/io/socket_stream.hpp>
#include <socketserver/limits.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/request.hpp>
#include <socketserver/stream_request.hpp>
#include <socketserver/stream_socket_server.hpp>

namespace socketserver {

/// A handler an async stream server can run: a default-constructible
/// AsyncStreamRequestHandler.
template <class H>
concept AsyncStreamHandler = std::derived_from<H, AsyncStreamRequestHandler> && std::default_initializable<H>;

namespace detail {
struct AsyncHandlerAccess {
  static void attach(AsyncStreamRequestHandler& handler, Connection& connection) noexcept {
    handler.connection_ = &connection;
  }
  // When the handler is done: its handle's queue closes before the layers' closing exchange.
  static void close_handle(AsyncStreamRequestHandler& handler) noexcept {
    if (handler.outbox_) handler.outbox_->close();
  }
};
}  // namespace detail

/// A stream server whose handlers are coroutines, many connections per thread: what
/// AsyncTCPServer and AsyncUnixStreamServer are made of.
///
/// The serve loop is BaseServer's: serve_forever() accepts, verify_request() filters, and
/// process_request() calls finish_request(), which starts a `Handler` coroutine on an event
/// loop and returns at once. The connection is shut down (shutdown_request()) when the
/// coroutine ends.
///
/// Threads: `threads` event loops. The first runs on the serving thread, inside
/// serve_forever() (and handle_request(), and server_close() while it waits); the others
/// each have a thread and an io_context of their own, started with the first request. New
/// connections go to the loops in turn, and a connection stays on its loop. So with
/// threads > 1, handle_error(), shutdown_request() and close_request() run on several threads
/// at once, as with ThreadingMixIn.
///
/// Ownership: the server owns the listening socket and the loops. Each connection's Request
/// lives in its coroutine, which closes it at the end.
template <AsyncStreamHandler Handler, class Protocol>
// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor): it is virtual, through BaseServer
class BasicAsyncStreamServer : public StreamSocketServer<Protocol, AsyncStreamRequest> {
 public:
  using handler_type = Handler;

  /// See StreamSocketServer: binds and listens unless `bind_and_activate` is false.
  explicit BasicAsyncStreamServer(Address server_address, bool bind_and_activate = true)
      : StreamSocketServer<Protocol, AsyncStreamRequest>(std::move(server_address), bind_and_activate) {}

  /// Aborts the connections still open (their pending co_awaits on rfile and wfile throw
  /// operation_aborted) and waits for their coroutines to end.
  ~BasicAsyncStreamServer() override {
    try {
      end_connections(/*abort=*/true);
    } catch (...) {
      this->logger.log(LogLevel::error, LogCategory::server, "error while closing connections: {}",
                       detail::current_exception_message());
    }
  }

  /// The number of event loops, each on its own thread, the serving thread included. The
  /// default is one per hardware thread. Set it before the first request.
  std::size_t threads = std::max(1U, std::thread::hardware_concurrency());

  /// What server_close() does with open connections: true (the default, as for
  /// ThreadingMixIn) waits until their handlers return; false aborts them.
  bool block_on_close = true;

  /// Connections whose handler has not finished yet.
  std::size_t active_connections() const noexcept { return active_.load(); }

  /// Calls finish_request(); the connection is shut down when its handler ends.
  void process_request(Request& request, const Address& client_address) override {
    finish_request(request, client_address);
  }

  /// Starts a `Handler` coroutine for the request on the next event loop and returns. May be
  /// overridden.
  void finish_request(Request& request, const Address& client_address) override {
    if (closed_) throw std::logic_error("finish_request() after server_close()");
    start_loops();
    Loop& loop = *loops_[next_loop_];
    next_loop_ = (next_loop_ + 1) % loops_.size();
    ++active_;
    auto& connection = static_cast<AsyncStreamRequest&>(request);
    if (detail::launch_runs_at_once && &loop.io() == &this->context()) {  // this is the loop's thread
      start(loop, std::move(connection), client_address);
    } else {
      asio::post(loop.io(), [this, &loop, request = std::move(connection), client_address]() mutable {
        start(loop, std::move(request), client_address);
      });
    }
  }

  /// Closes the listening socket, then drains the open connections (block_on_close: drain(),
  /// limits.drain_timeout, then they are cut) or aborts them, and stops the loop threads.
  /// Idempotent. Call it on the serving thread after serve_forever() has returned, not from a
  /// handler.
  void server_close() override {
    StreamSocketServer<Protocol, AsyncStreamRequest>::server_close();
    if (block_on_close && !closed_ && !loops_.empty()) this->drain();
    end_connections(!block_on_close);
  }

 protected:
  // The serving thread runs loop 0: it keeps running it while it waits, and closes the silent
  // connections as they come of age (limits.silent_grace).
  bool wait_for_connections(detail::Clock::time_point deadline) override {
    if (loops_.empty()) return true;
    closing_.store(true);  // the last connection to end wakes this thread
    asio::io_context& io = this->context();
    while (active_.load() > 0) {
      const auto now = detail::Clock::now();
      if (now >= deadline) return false;
      const auto wake = std::min(deadline, this->tracker().shut_silent(now));
      // At most a second at a time: a wake-up far ahead need not be exact.
      const auto wait = std::min<detail::Clock::duration>(wake - now, std::chrono::seconds(1));
      if (io.run_one_for(wait) == 0 && io.stopped()) io.restart();
    }
    return true;
  }

  // Shuts the sockets down, and aborts the waits that are not on them (a handler's own timer).
  std::size_t cut_connections() override {
    const std::size_t cut = StreamSocketServer<Protocol, AsyncStreamRequest>::cut_connections();
    aborting_.store(true);
    for (auto& loop : loops_) {
      asio::post(loop->io(), [&events = loop->events] { events.abort_all(); });
    }
    return cut;
  }

 private:
  struct Loop {
    // Loop 0 runs on the server's own io_context; the others own theirs.
    explicit Loop(asio::io_context& shared) : events(shared) {}
    explicit Loop(std::unique_ptr<asio::io_context> own) : own_io(std::move(own)), events(*own_io) {}

    asio::io_context& io() noexcept { return events.context(); }

    std::unique_ptr<asio::io_context> own_io;
    detail::EventLoop events;
    std::thread thread;
  };

  // How often each loop looks for waits past their deadline: a quarter of the shortest timeout,
  // between 5 ms and 1 s.
  detail::Clock::duration sweep_interval() const {
    const std::optional<Seconds> shortest = this->limits.shortest_timeout();
    if (!shortest) return {};
    return std::clamp<detail::Clock::duration>(detail::to_duration(*shortest / 4), std::chrono::milliseconds(5),
                                               std::chrono::seconds(1));
  }

  void start_loops() {
    if (!loops_.empty()) return;
    const std::size_t count = std::max<std::size_t>(1, threads);
    const detail::Clock::duration sweep = sweep_interval();
    loops_.push_back(std::make_unique<Loop>(this->context()));
    loops_.back()->events.start(sweep);
    for (std::size_t i = 1; i < count; ++i) {
      loops_.push_back(std::make_unique<Loop>(std::make_unique<asio::io_context>(1)));
      Loop& loop = *loops_.back();
      loop.events.start(sweep);  // pending work: run() returns only when stopped
      loop.thread = std::thread([this, &loop] {
        for (;;) {
          try {
            loop.io().run();
            return;
          } catch (...) {
            this->logger.log(LogLevel::error, LogCategory::server, "event loop: {}",
                             detail::current_exception_message());
          }
        }
      });
    }
  }

  // Runs the connection's coroutine until it first waits; on the loop's thread.
  void start(Loop& loop, AsyncStreamRequest request, const Address& client_address) {
    detail::launch(serve(loop.events, std::move(request), client_address), loop.io().get_executor());
  }

  // What a connection's coroutine holds while its handler runs. The socket at the bottom of the
  // connection's streams becomes non-blocking, reading the loop entry's readiness.
  struct Session {
    Session(detail::EventLoop& loop, AsyncStreamRequest& request, const Address& client_address, BaseServer& server)
        : connection(loop, request.fileno(), detail::RequestAccess::record(request)) {
      ByteStream* socket = detail::StreamRequestAccess::top(request);
      detail::SocketStreamAccess::make_nonblocking(static_cast<SocketStream&>(*socket), connection.readiness());
      connection.set_stream(*socket);
      AsyncStreamRequestHandler& base = handler;
      base.request = &request;
      base.client_address = client_address;
      base.server = &server;
      detail::AsyncHandlerAccess::attach(base, connection);
    }

    AsyncStreamRequestHandler& base() noexcept { return handler; }

    detail::Connection connection;
    Handler handler;
  };

  // The coroutine of one connection: Python's BaseRequestHandler.__init__ plus the
  // shutdown_request() that process_request() does for a synchronous server. `client_address`
  // must live until the coroutine first waits; the handler keeps a copy. The work that does not
  // wait is in plain functions: whatever a coroutine touches may take room in its frame, for as
  // long as the connection lives.
  detail::ThreadEntry serve(detail::EventLoop& loop, AsyncStreamRequest request, const Address& client_address) {
    std::optional<Session> session;
    std::exception_ptr error = start_session(session, loop, request, client_address);
    bool opened = !error;
    if (opened && this->opens_layers(request)) {
      try {
        opened = co_await open_connection(*session, request);
      } catch (...) {
        error = std::current_exception();
        opened = false;
      }
    }
    if (opened) error = setup(*session);
    if (opened && !error) {
      try {
        co_await session->base().handle();
      } catch (...) {
        error = std::current_exception();
      }
      try {
        co_await session->base().finish();
      } catch (...) {
        if (!error) error = std::current_exception();
      }
      detail::AsyncHandlerAccess::close_handle(session->base());
      if (!error && this->closes_layers(request)) co_await close_connection(*session, request);
    }
    end_session(session, request, client_address, error);
  }

  // Makes the session and the handler; the error, if any.
  std::exception_ptr start_session(std::optional<Session>& session, detail::EventLoop& loop,
                                   AsyncStreamRequest& request, const Address& client_address) {
    try {
      session.emplace(loop, request, client_address, *this);
      return nullptr;
    } catch (...) {
      return std::current_exception();
    }
  }

  // The handler's setup(); the error, if any (as in Python, a failed setup() skips finish()).
  static std::exception_ptr setup(Session& session) {
    try {
      session.base().setup();
      return nullptr;
    } catch (...) {
      return std::current_exception();
    }
  }

  // The connection's layers and their handshakes (the PROXY header first), each wait held to
  // its deadline; the reader's side of the connection waits. False when the connection is
  // refused; the handler then never starts.
  asio::awaitable<bool> open_connection(Session& session, AsyncStreamRequest& request) {
    using Side = detail::Connection::Side;
    detail::Connection& connection = session.connection;
    ProxyStream* proxy = this->open_layers(request);
    ByteStream& top = *detail::StreamRequestAccess::top(request);
    connection.set_stream(top);
    if (proxy != nullptr) {
      try {
        const detail::Deadline deadline{this->proxy_deadline(), errc::proxy_header_timeout};
        while (!proxy->handshake(deadline.at)) {
          co_await connection.wait(Side::reader, proxy->blocked_on(), deadline);
          connection.check(Side::reader);
        }
      } catch (const std::system_error&) {
        this->proxy_header_failed();
      }
      if (!this->proxy_header_read(request, *proxy, session.base().client_address)) co_return false;
    }
    if (TlsStream* tls = detail::StreamRequestAccess::tls(request)) {
      bool failed = false;
      try {
        const detail::Deadline deadline{this->tls_deadline(request), errc::handshake_timeout};
        while (!tls->handshake(deadline.at)) {
          co_await connection.wait(Side::reader, tls->blocked_on(), deadline);
          connection.check(Side::reader);
        }
      } catch (const std::system_error&) {
        this->tls_handshake_failed(request, session.base().client_address);
        failed = true;
      }
      if (failed) co_return false;
      this->tls_handshake_done(request, session.base().client_address);
    }
    const detail::Deadline deadline{this->layers_deadline(), errc::first_byte_timeout};
    while (!top.handshake(deadline.at)) {
      co_await connection.wait(Side::reader, top.blocked_on(), deadline);
      connection.check(Side::reader);
    }
    co_return true;
  }

  // The layers' closing exchange after the handler returned (TLS's close_notify, bounded by its
  // close_notify_timeout); its failures do not matter any more.
  asio::awaitable<void> close_connection(Session& session, AsyncStreamRequest& request) {
    using Side = detail::Connection::Side;
    try {
      this->note_truncation(request, session.base().client_address);
      ByteStream& top = *detail::StreamRequestAccess::top(request);
      const detail::Deadline deadline{this->close_deadline(request), errc::write_timeout};
      while (!top.close_handshake(deadline.at))
        co_await session.connection.wait(Side::reader, top.blocked_on(), deadline);
    } catch (...) {
    }
  }

  // handle_error() for what the handler threw, then shutdown_request().
  void end_session(std::optional<Session>& session, AsyncStreamRequest& request, const Address& client_address,
                   const std::exception_ptr& error) {
    if (session) detail::AsyncHandlerAccess::close_handle(session->base());
    if (error && !aborted(error)) {
      // Without a session nothing has waited yet, and client_address is still there.
      const Address& peer = session ? session->base().client_address : client_address;
      try {
        std::rethrow_exception(error);
      } catch (...) {
        detail::RequestAccess::note_current_exception(request);
        this->report_error(request, peer);
      }
    }
    try {
      this->shutdown_request(request);
    } catch (...) {
      this->logger.log(LogLevel::error, LogCategory::server, "shutdown_request() threw: {}",
                       detail::current_exception_message());
    }
    session.reset();  // leaves the event loop before the server may go
    connection_done();
  }

  // An abort by end_connections() is the server's doing, not the handler's error.
  bool aborted(const std::exception_ptr& error) const {
    if (!aborting_.load()) return false;
    try {
      std::rethrow_exception(error);
    } catch (const std::system_error& e) {
      return e.code() == asio::error::operation_aborted;
    } catch (...) {
      return false;
    }
  }

  void connection_done() {
    // The last one wakes end_connections(), which may be waiting on the serving thread.
    if (active_.fetch_sub(1) == 1 && closing_.load()) asio::post(this->context(), [] {});
  }

  void end_connections(bool abort) {
    closed_ = true;
    if (loops_.empty()) return;
    closing_.store(true);
    if (abort) {
      aborting_.store(true);
      for (auto& loop : loops_) {
        asio::post(loop->io(), [&events = loop->events] { events.abort_all(); });
      }
    }
    asio::io_context& io = this->context();
    while (active_.load() > 0) {
      if (io.run_one() == 0) io.restart();
    }
    for (auto& loop : loops_) {
      if (loop->thread.joinable()) {
        loop->io().stop();
        loop->thread.join();
      }
    }
  }

  std::vector<std::unique_ptr<Loop>> loops_;
  std::size_t next_loop_ = 0;
  std::atomic<std::size_t> active_{0};
  std::atomic<bool> closing_{false};
  std::atomic<bool> aborting_{false};
  bool closed_ = false;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_ASYNC_STREAM_SERVER_HPP
