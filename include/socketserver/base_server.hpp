#ifndef SOCKETSERVER_BASE_SERVER_HPP
#define SOCKETSERVER_BASE_SERVER_HPP

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

#include <asio/basic_waitable_timer.hpp>
#include <asio/io_context.hpp>

#include <socketserver/access_list.hpp>
#include <socketserver/address.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/detail/deadline.hpp>
#include <socketserver/error.hpp>
#include <socketserver/limits.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/proxy_protocol.hpp>
#include <socketserver/request.hpp>
#include <socketserver/seconds.hpp>
#include <socketserver/server_stats.hpp>

namespace socketserver {

class DatagramRequest;

/// The server lifecycle shared by every server: the serve loop, shutdown, and the hooks a
/// request passes through, in Python's order.
///
/// A request goes get_request() -> verify_request() -> process_request() -> finish_request()
/// (runs the handler) -> shutdown_request() -> close_request(). An exception from
/// verify_request(), process_request() or the handler goes to handle_error(), and the server
/// keeps serving; a std::system_error from get_request() is ignored, as in Python. Overrides of
/// shutdown_request(), close_request() and service_actions() should not throw: on the serving
/// thread their exceptions end serve_forever().
///
/// Threads: serve_forever(), handle_request() and server_close() belong to one thread, which
/// also runs the handler unless a mixin (ThreadingMixIn, ForkingMixIn) moves it elsewhere; with
/// ThreadingMixIn the request hooks and handlers run on many threads at once. Waiting for
/// requests happens on an asio io_context owned by the server; work posted to get_executor()
/// runs on the serving thread between requests. shutdown() may be called from any thread, but
/// not from a signal handler (it locks a mutex): use an asio::signal_set on get_executor().
///
/// Python declares the request hooks here too; in C++ they are declared here as well, taking
/// the Request base: each server makes requests of its own kind (StreamRequest, DatagramRequest,
/// AsyncStreamRequest), and its handlers see that kind.
///
/// Beyond Python: a stream server holds every connection to `limits` (timeouts, connection
/// counts, line length, the drain at server_close()), reads the PROXY protocol from the proxies
/// `proxy_protocol` trusts, counts its connections in stats(), and reports through `logger`.
/// Every server refuses what its access list denies (set_access_list()). When accept() fails
/// for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), the loop stops
/// accepting for 10 ms, doubling up to 1 s while it keeps failing, instead of spinning on a
/// listening socket it cannot empty.
class BaseServer {
 public:
  explicit BaseServer(Address server_address);
  BaseServer(const BaseServer&) = delete;
  BaseServer& operator=(const BaseServer&) = delete;

  /// Destroying a server while serve_forever() runs is a bug: call shutdown() first.
  virtual ~BaseServer();

  /// Handles requests until shutdown() is called.
  ///
  /// Unlike Python's, the loop does not poll for shutdown: shutdown() wakes it at once while it
  /// waits for requests (a handler running on the serving thread finishes first).
  /// poll_interval only paces service_actions(), which also runs after every request.
  /// Throws std::logic_error if the loop is already running.
  void serve_forever(Seconds poll_interval = Seconds(0.5));

  /// Stops the serve_forever() loop and waits until it has returned.
  ///
  /// Thread safety: any thread. Called from the serving thread itself (a handler of a server
  /// without a threading mixin) it returns at once and the loop stops after that request,
  /// where Python deadlocks. Called while no loop runs, it makes the next serve_forever()
  /// return at once, as Python's flag does.
  void shutdown();

  /// Handles one request, waiting at most `timeout` for it; calls handle_timeout() when none
  /// came in time. No timeout (the default) waits for ever.
  void handle_request();

  /// The limit handle_request() waits (Python's `timeout`); std::nullopt waits for ever.
  std::optional<Seconds> timeout;

  /// What each connection may do, and how many at once (stream servers). Set before serving.
  Limits limits;

  /// Where the server's log lines go: errors, access lines, security events.
  Logger logger;

  /// Which peers' connections begin with a PROXY protocol header (stream servers). Off by
  /// default. Set before serving.
  ProxyProtocol proxy_protocol;

  /// Replaces the access list: the networks whose connections (or datagrams) the server takes.
  /// Each is checked against the peer's real address right after accept() (or recvfrom()),
  /// before any byte of it is read or any layer runs; a refused one is closed unread (dropped),
  /// counted in stats().refused and stats().denied, and logged as a security event. The match
  /// rule is AccessList's: the longest matching prefix decides. Peers of Unix sockets are not
  /// checked. Thread safety: any thread, while the server runs; the next connection sees it.
  void set_access_list(AccessList list);

  /// The access list in force; empty when none is (every peer is admitted).
  AccessList access_list() const;

  /// The server's counters now. Thread safety: any thread.
  ServerStats stats() const { return tracker_.stats(); }

  /// Lets open connections finish, for at most limits.drain_timeout, then cuts those still
  /// open (their reads see the end of the stream, their writes fail) and returns how many it
  /// cut. Connections waiting for their next request are closed at once, and those that have
  /// sent nothing once they are limits.silent_grace old (not under ForkingMixIn, whose parent
  /// cannot see a child's bytes). New connections are not accepted meanwhile only if
  /// serve_forever() has returned. server_close() of the threading, pool, forking and async
  /// servers calls it when it waits for connections (block_on_close). Call it on the serving
  /// thread, after serve_forever() has returned.
  std::size_t drain();

  /// The address the server is bound to; after binding to port 0, the port it got.
  const Address& server_address() const noexcept { return server_address_; }

  /// The executor of the server's io_context. Work posted here runs on the thread in
  /// serve_forever() or handle_request(), between requests.
  asio::io_context::executor_type get_executor() noexcept { return io_.get_executor(); }

  /// The listening or datagram socket's descriptor; -1 once closed.
  virtual int fileno() const noexcept = 0;

  /// Closes the server socket. Mixins then wait for their threads or children. Idempotent.
  /// May be overridden.
  virtual void server_close() {}

  /// Called once per serve_forever() loop iteration. May be overridden.
  virtual void service_actions() {}

  /// Called when handle_request() times out. May be overridden.
  virtual void handle_timeout() {}

  /// Returns false to refuse a request: it is then shut down without an answer. May be
  /// overridden; the default accepts every request.
  virtual bool verify_request(Request& /*request*/, const Address& /*client_address*/) { return true; }

  /// Runs the request: finish_request() then shutdown_request(). Mixins override it to run the
  /// request on a thread or in a child process. May be overridden.
  virtual void process_request(Request& request, const Address& client_address) {
    finish_request(request, client_address);
    shutdown_request(request);
  }

  /// Constructs the handler and runs it. May be overridden.
  virtual void finish_request(Request& request, const Address& client_address) = 0;

  /// Ends a request: TCP sends its FIN first; then close_request(). May be overridden.
  virtual void shutdown_request(Request& request) { close_request(request); }

  /// Releases the request's connection. May be overridden.
  virtual void close_request(Request& /*request*/) {}

  /// Called, inside the catch block, when a request's processing throws; `client_address` is
  /// the handler's (the client a PROXY header named, once it has been read). The default logs
  /// one line with it and the exception's message: a limit (a socketserver::errc: a timeout, a
  /// line too long, a bad PROXY header) as a security event, at info level for the routine ones
  /// (idle, first byte, connection age), warning for the others; anything else as a server
  /// error. A connection cut by drain() is not logged again.
  /// The server keeps serving. May be overridden; std::current_exception() is the error.
  virtual void handle_error(Request& request, const Address& client_address);

 protected:
  // For the library's servers and mixins; not part of Python's API.

  /// Takes one request with `get_request` (a server's own get_request(), returning its kind of
  /// request and the peer) and runs it through the hooks: Python's _handle_request_noblock().
  template <class RequestType, class GetRequest>
  void handle_request_with(GetRequest&& get_request) {
    std::pair<RequestType, Address> next;
    try {
      next = get_request();
    } catch (const std::system_error& e) {
      if (is_resource_error(e.code())) back_off(e);
      return;
    }
    if (!next.first) return;
    backoff_ = {};
    constexpr bool connection = !std::is_same_v<RequestType, DatagramRequest>;
    if (admit(next.first, next.second, connection)) serve_request(next.first, next.second);
  }

  /// The body of a request thread (Python's process_request_thread()): finish_request(),
  /// handle_error() on failure, then always shutdown_request(). Nothing escapes but thread
  /// cancellation, which unwinds after shutdown_request().
  // Defined noinline, no_sanitize("null"): see detail/exception.hpp.
  void run_request(Request& request, const Address& client_address);

  /// handle_error() for the exception being handled, with the handler's client address.
  void report_error(Request& request, const Address& client_address);

  /// Starts an asynchronous wait until a request can be taken; `done` runs on the io_context.
  virtual void async_wait_request(std::function<void(std::error_code)> done) = 0;
  /// Cancels that wait (its handler then runs with operation_aborted).
  virtual void cancel_wait_request() noexcept = 0;
  /// Runs in a forked child before it serves its request: drop what the child must not hold.
  virtual void after_fork_in_child() noexcept {}

  /// drain(): waits until no connection is open or `deadline` passes; true when none is.
  /// Servers whose connections need the serving thread to end (async, forking) override it.
  virtual bool wait_for_connections(detail::Clock::time_point deadline) { return tracker_.wait_until_closed(deadline); }
  /// drain(): shuts every open connection down; returns how many.
  virtual std::size_t cut_connections() { return tracker_.cut_all(); }

  asio::io_context& context() noexcept { return io_; }
  detail::ConnectionTracker& tracker() noexcept { return tracker_; }

  Address server_address_;

 private:
  // Waits for a request, or until `timeout` or a shutdown() wake-up. True when one is ready.
  // While accepting is paused (at max_connections with Overload::pause, or backing off after
  // accept() ran out of descriptors) it waits without watching the socket, until a connection
  // ends, the back-off is over, or the timeout.
  //
  // The timer is not set for every wait: setting it is a system call (timerfd_settime), one per
  // request on a busy server. A timer already set to expire within `timeout` is left as it is;
  // expiring early only makes the caller's loop come round once more.
  bool wait_for_request(std::optional<Seconds> timeout);

  // Whether this wait must not accept; shortens `timeout` to the end of a back-off.
  bool accept_paused(std::optional<Seconds>& timeout);

  // Ends the current wait for a request: a timeout, a wake-up, room for a connection.
  void end_wait() noexcept;

  // accept() failed for want of a resource: stop accepting for a while, longer each time.
  void back_off(const std::system_error& e);

  static bool is_resource_error(const std::error_code& code) noexcept {
    return code == std::errc::too_many_files_open || code == std::errc::too_many_files_open_in_system ||
           code == std::errc::no_buffer_space || code == std::errc::not_enough_memory;
  }

  // A connection over a limit is closed unanswered.
  void refuse(Request& request, const Address& client_address, detail::ConnectionTracker::Admission why);

  void run_one();

  void wake() noexcept;

  // One request, known to be ready: each server takes its own kind (handle_request_with()).
  virtual void handle_request_noblock() = 0;

  // Right after accept(): the access list, the PROXY protocol's trust, and the connection
  // limits. False when the request was refused (and shut down).
  bool admit(Request& request, const Address& peer, bool connection);

  bool access_allows(const Address& peer) const;

  // verify_request(), then process_request(); errors go to handle_error(), and a request that is
  // not processed is shut down. Defined noinline, no_sanitize("null"): see detail/exception.hpp.
  void serve_request(Request& request, const Address& client_address);

  // On the io_context's own executor, not asio's type-erased default (any_io_executor), whose
  // machinery every translation unit that constructs a server would instantiate.
  using Timer = asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>,
                                           asio::io_context::executor_type>;

  asio::io_context io_{1};
  Timer timer_;
  bool timer_set_ = false;                       // timer_ has a wait that has not expired
  std::optional<std::error_code> request_wait_;  // how the current wait for a request ended
  std::mutex mutex_;
  std::condition_variable shut_down_;
  bool serving_ = false;
  std::thread::id serving_thread_;
  std::atomic<bool> shutdown_request_{false};
  bool paused_ = false;                // the current wait does not watch the socket
  detail::Clock::duration backoff_{};  // the last back-off after an accept() failure
  detail::Clock::time_point backoff_until_{};
  detail::ConnectionTracker tracker_{limits, logger};
  mutable std::mutex access_mutex_;
  std::shared_ptr<const AccessList> access_;  // null: every peer is admitted
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <cxxabi.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <asio/error.hpp>
#include <asio/post.hpp>

#include <socketserver/detail/exception.hpp>
#include <socketserver/detail/system_error.hpp>

namespace socketserver {

SOCKETSERVER_DECL BaseServer::BaseServer(Address server_address)
    : server_address_(std::move(server_address)), timer_(io_.get_executor()) {
  tracker_.on_room([this] { asio::post(io_, [this] { end_wait(); }); });
}

SOCKETSERVER_DECL BaseServer::~BaseServer() = default;

SOCKETSERVER_DECL void BaseServer::serve_forever(Seconds poll_interval) {
  {
    std::lock_guard lock(mutex_);
    if (serving_) throw std::logic_error("serve_forever() is already running");
    serving_ = true;
    serving_thread_ = std::this_thread::get_id();
  }
  struct Done {  // runs however the loop ends, exceptions and thread cancellation included
    BaseServer& s;
    ~Done() {
      std::lock_guard lock(s.mutex_);
      s.shutdown_request_.store(false);
      s.serving_ = false;
      s.serving_thread_ = {};
      s.shut_down_.notify_all();
    }
  } done{*this};
  while (!shutdown_request_.load()) {
    const bool ready = wait_for_request(poll_interval);
    if (shutdown_request_.load()) break;
    if (ready) handle_request_noblock();
    service_actions();
  }
}

SOCKETSERVER_DECL void BaseServer::shutdown() {
  shutdown_request_.store(true);
  asio::post(io_, [this] { wake(); });
  std::unique_lock lock(mutex_);
  if (!serving_ || serving_thread_ == std::this_thread::get_id()) return;
  shut_down_.wait(lock, [this] { return !serving_; });
}

SOCKETSERVER_DECL void BaseServer::handle_request() {
  using clock = std::chrono::steady_clock;
  const auto deadline =
      timeout ? clock::now() + std::chrono::ceil<clock::duration>(*timeout) : clock::time_point::max();
  for (;;) {
    std::optional<Seconds> left;
    if (timeout) left = std::max(Seconds(0), Seconds(deadline - clock::now()));
    if (wait_for_request(left)) return handle_request_noblock();
    if (timeout && clock::now() >= deadline) return handle_timeout();
  }
}

SOCKETSERVER_DECL void BaseServer::set_access_list(AccessList list) {
  auto shared = std::make_shared<const AccessList>(std::move(list));
  const std::lock_guard lock(access_mutex_);
  access_ = shared->empty() ? nullptr : std::move(shared);
}

SOCKETSERVER_DECL AccessList BaseServer::access_list() const {
  const std::lock_guard lock(access_mutex_);
  return access_ ? *access_ : AccessList();
}

SOCKETSERVER_DECL std::size_t BaseServer::drain() {
  tracker_.begin_drain();
  const auto deadline = limits.drain_timeout ? detail::Clock::now() + detail::to_duration(*limits.drain_timeout)
                                             : detail::Clock::time_point::max();
  if (wait_for_connections(deadline)) return 0;
  const std::size_t cut = cut_connections();
  if (cut != 0) {
    logger.log(LogLevel::warning, LogCategory::server, "drain_timeout ({} s) ran out: cut {} connection{}",
               limits.drain_timeout->count(), cut, cut == 1 ? "" : "s");
  }
  return cut;
}

SOCKETSERVER_DECL void BaseServer::handle_error(Request& request, const Address& client_address) {
  const detail::ConnectionRecord* record = detail::RequestAccess::record(request);
  if (record != nullptr && record->cut()) return;  // drain() has logged the cut
  const std::error_code code = detail::current_error_code();
  if (code.category() == error_category()) {
    const bool routine =
        code == errc::idle_timeout || code == errc::first_byte_timeout || code == errc::connection_timeout;
    logger.log(routine ? LogLevel::info : LogLevel::warning, LogCategory::security, "closed connection from {}: {}",
               client_address, detail::current_exception_message());
    return;
  }
  logger.log(LogLevel::error, LogCategory::server, "error processing request from {}: {}", client_address,
             detail::current_exception_message());
}

// see detail/exception.hpp
__attribute__((noinline, no_sanitize("null"))) SOCKETSERVER_DECL void BaseServer::run_request(
    Request& request, const Address& client_address) {
  try {
    finish_request(request, client_address);
  } catch (const abi::__forced_unwind&) {
    shutdown_request(request);
    throw;
  } catch (...) {
    detail::RequestAccess::note_current_exception(request);
    report_error(request, client_address);
  }
  try {
    shutdown_request(request);
  } catch (...) {  // on this thread nothing may escape: report it like any other error
    report_error(request, client_address);
  }
}

SOCKETSERVER_DECL void BaseServer::report_error(Request& request, const Address& client_address) {
  detail::call_error_hook(
      [&] { handle_error(request, detail::RequestAccess::client_address(request, client_address)); });
}

SOCKETSERVER_DECL bool BaseServer::wait_for_request(std::optional<Seconds> timeout) {
  if (io_.stopped()) io_.restart();
  request_wait_.reset();
  paused_ = accept_paused(timeout);
  if (!paused_) async_wait_request([this](std::error_code ec) { request_wait_ = ec; });
  if (timeout) {
    const auto deadline = Timer::clock_type::now() + std::chrono::ceil<Timer::duration>(*timeout);
    if (!timer_set_ || timer_.expiry() > deadline) {
      timer_.expires_at(deadline);  // cancels the wait on the old expiry, if any
      timer_set_ = true;
      timer_.async_wait([this](std::error_code ec) {
        if (ec) return;  // replaced by a new expiry, or the server is going
        timer_set_ = false;
        end_wait();
      });
    }
  }
  // run_one(), not run(): other work on the context (a signal_set, user posts) must not
  // keep this wait from returning.
  try {
    while (!request_wait_) run_one();
  } catch (...) {
    // Posted work threw: end our wait first, so that none is left behind.
    end_wait();
    while (!request_wait_) {
      try {
        run_one();
      } catch (...) {
      }
    }
    paused_ = false;
    throw;
  }
  paused_ = false;
  // A cancelled wait is a timeout or a wake-up; anything else (the socket was closed under
  // the loop) would only repeat at once, so it ends the loop.
  const std::error_code result = *request_wait_;
  if (result && result != asio::error::operation_aborted) detail::throw_error(result, "wait for request");
  return !result;
}

SOCKETSERVER_DECL bool BaseServer::accept_paused(std::optional<Seconds>& timeout) {
  if (backoff_until_ != detail::Clock::time_point{}) {
    const auto now = detail::Clock::now();
    if (now < backoff_until_) {
      const Seconds left(backoff_until_ - now);
      if (!timeout || left < *timeout) timeout = left;
      return true;
    }
    backoff_until_ = {};
  }
  return limits.overload == Limits::Overload::pause && tracker_.full();
}

SOCKETSERVER_DECL void BaseServer::end_wait() noexcept {
  if (!paused_) return cancel_wait_request();
  if (!request_wait_) request_wait_ = make_error_code(asio::error::operation_aborted);
}

SOCKETSERVER_DECL void BaseServer::back_off(const std::system_error& e) {
  tracker_.count_accept_error();
  backoff_ = backoff_ == detail::Clock::duration{}
                 ? std::chrono::milliseconds(10)
                 : std::min<detail::Clock::duration>(backoff_ * 2, std::chrono::seconds(1));
  backoff_until_ = detail::Clock::now() + backoff_;
  logger.log(LogLevel::warning, LogCategory::server, "{}; not accepting for {} ms", e.what(),
             std::chrono::duration_cast<std::chrono::milliseconds>(backoff_).count());
}

SOCKETSERVER_DECL void BaseServer::refuse(Request& request, const Address& client_address,
                                          detail::ConnectionTracker::Admission why) {
  tracker_.count_refused();
  if (why == detail::ConnectionTracker::Admission::full) {
    logger.log(LogLevel::warning, LogCategory::security, "refused connection from {}: max_connections ({}) reached",
               client_address, limits.max_connections);
  } else {
    logger.log(LogLevel::warning, LogCategory::security,
               "refused connection from {}: max_connections_per_ip ({}) reached for its address", client_address,
               limits.max_connections_per_ip);
  }
  shutdown_request(request);
}

SOCKETSERVER_DECL void BaseServer::run_one() {
  if (io_.run_one() == 0) io_.restart();
}

SOCKETSERVER_DECL void BaseServer::wake() noexcept { end_wait(); }

SOCKETSERVER_DECL bool BaseServer::admit(Request& request, const Address& peer, bool connection) {
  if (!access_allows(peer)) {
    tracker_.count_denied();
    logger.log(LogLevel::warning, LogCategory::security, "refused {} from {}: denied by the access list",
               connection ? "connection" : "datagram", peer);
    shutdown_request(request);
    return false;
  }
  if (!connection) return true;
  const bool proxied = proxy_protocol.enabled() && proxy_protocol.trusts(peer);
  if (proxy_protocol.enabled() && !proxied) {
    const bool refuse = proxy_protocol.untrusted == ProxyProtocol::Untrusted::refuse;
    tracker_.count_proxy(refuse ? detail::ProxyOutcome::untrusted_refused : detail::ProxyOutcome::untrusted_direct);
    logger.log(refuse ? LogLevel::warning : LogLevel::info, LogCategory::security,
               "{} connection from {}: not a trusted proxy", refuse ? "refused" : "direct", peer);
    if (refuse) {
      tracker_.count_refused();
      shutdown_request(request);
      return false;
    }
  }
  detail::ConnectionTracker::Admission admission{};
  auto record = tracker_.admit(peer, request.fileno(), admission, /*count_ip=*/!proxied);
  if (!record) {
    refuse(request, peer, admission);
    return false;
  }
  record->expect_proxy_header(proxied);
  detail::RequestAccess::set_record(request, std::move(record));
  return true;
}

SOCKETSERVER_DECL bool BaseServer::access_allows(const Address& peer) const {
  const std::lock_guard lock(access_mutex_);
  return access_ == nullptr || access_->allows(peer);
}

// see detail/exception.hpp
__attribute__((noinline, no_sanitize("null"))) SOCKETSERVER_DECL void BaseServer::serve_request(
    Request& request, const Address& client_address) {
  try {
    if (verify_request(request, client_address)) {
      process_request(request, client_address);
      return;
    }
  } catch (const abi::__forced_unwind&) {
    shutdown_request(request);
    throw;
  } catch (...) {
    detail::RequestAccess::note_current_exception(request);
    report_error(request, client_address);
  }
  shutdown_request(request);
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_BASE_SERVER_HPP
