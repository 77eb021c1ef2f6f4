#ifndef SOCKETSERVER_DETAIL_CONNECTION_TRACKER_HPP
#define SOCKETSERVER_DETAIL_CONNECTION_TRACKER_HPP

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>

#include <socketserver/address.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/detail/deadline.hpp>
#include <socketserver/error.hpp>
#include <socketserver/limits.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/proxy_header.hpp>
#include <socketserver/seconds.hpp>
#include <socketserver/server_stats.hpp>
#include <socketserver/tls_context.hpp>

namespace socketserver::detail {

class ConnectionTracker;

// What became of a PROXY protocol connection, for stats().proxy.
enum class ProxyOutcome { v1, v2, local, invalid, timed_out, untrusted_refused, untrusted_direct };

// One open connection as the server tracks it: its peer, age, bytes, deadlines and close
// reason. Made at accept, carried by the Request wherever a mixin moves it, and destroyed
// when the Request is closed, before the descriptor is (the tracker may shut the descriptor
// down from another thread while the record is registered).
//
// Threads: the thread running the handler uses it; the tracker touches only idle_ and fd_,
// under its mutex.
class ConnectionRecord {
 public:
  ConnectionRecord(ConnectionTracker& tracker, Address peer, int fd)
      : tracker_(tracker), peer_(std::move(peer)), accepted_(Clock::now()), fd_(fd) {}
  ConnectionRecord(const ConnectionRecord&) = delete;
  ConnectionRecord& operator=(const ConnectionRecord&) = delete;
  ~ConnectionRecord();

  const Limits& limits() const noexcept;
  // The client: the connection's peer, or the client a PROXY header named.
  const Address& peer() const noexcept { return peer_; }

  // When the connection was accepted.
  Clock::time_point accepted() const noexcept { return accepted_; }

  // The PROXY header the connection began with, if any.
  const ProxyHeader* proxy_header() const noexcept { return proxy_.get(); }

  // The handler's own per-wait limit (StreamRequestHandler::timeout): its expiry is
  // std::errc::timed_out, as in Python.
  std::optional<Seconds> user_timeout() const noexcept {
    if (user_timeout_ < 0) return std::nullopt;
    return Seconds(user_timeout_);
  }
  void set_user_timeout(std::optional<Seconds> limit) noexcept {
    user_timeout_ = limit ? static_cast<float>(std::max(limit->count(), 0.0)) : -1.0F;
  }

  // The longest a blocking socket may wait at once (SO_RCVTIMEO, SO_SNDTIMEO): the shortest
  // limit. Waits that end early come round again until their own deadline.
  std::optional<Seconds> wait_cap() const;

  // The deadline of a wait for input; `partial`: part of a line or frame is buffered already.
  Deadline read_deadline(Clock::time_point now, bool partial);
  // A line or frame was handed out: the next one's read_timeout starts with its first byte.
  void read_done() noexcept {
    if (!in_request_) request_started_ = Clock::time_point::max();
  }

  // The handler's request boundaries (rfile.begin_request(), end_request()): inside a request
  // every wait for input is part of it (read_timeout from its first byte; not idle, so the
  // drain lets it finish), and each end counts a request for the access line and stats().
  void begin_request() noexcept {
    in_request_ = true;
    if (request_started_ == Clock::time_point::max()) request_started_ = Clock::now();
  }
  void end_request() noexcept {
    if (!in_request_) return;
    in_request_ = false;
    request_started_ = Clock::time_point::max();
    ++requests_;
  }
  bool in_request() const noexcept { return in_request_; }

  // The deadline of a write (or flush) that started at `start`.
  Deadline write_deadline(Clock::time_point start) const;

  void count_in(std::size_t n) noexcept {
    bytes_in_ += n;
    if (n != 0 && !got_first_byte_.load(std::memory_order_relaxed))
      got_first_byte_.store(true, std::memory_order_relaxed);
  }
  void count_out(std::size_t n) noexcept { bytes_out_ += n; }

  // Before a wait for input with nothing buffered: a connection that has sent something counts
  // as idle (between requests), and a draining server closes its read side. False when the
  // server is draining already: the caller then treats the wait as the end of the stream.
  bool enter_idle() noexcept;
  void leave_idle() noexcept { idle_.store(false); }

  // Whether the connection comes from a trusted proxy: its PROXY header must be read first.
  bool expects_proxy_header() const noexcept { return expects_proxy_header_; }
  void expect_proxy_header(bool expected) noexcept { expects_proxy_header_ = expected; }

  // Whether the drain cut the connection (its errors are then the cut's doing).
  bool cut() const noexcept { return cut_.load(); }

  // Records the exception being handled as the close reason (the first one counts).
  void note_current_exception() noexcept;

  // A send through the connection's handle found its queue full, holding `queued` bytes: counted
  // and logged. With `disconnect`, errc::send_queue_full becomes the close reason. From any
  // thread, while the connection is open.
  void queue_overflowed(bool disconnect, std::size_t queued) noexcept;

 private:
  friend class ConnectionTracker;

  ConnectionTracker& tracker_;
  Address peer_;
  std::unique_ptr<ProxyHeader> proxy_;
  Clock::time_point accepted_;
  Clock::time_point request_started_ = Clock::time_point::max();
  int fd_;                                   // -1 once the process no longer holds it (a forking server's parent)
  float user_timeout_ = -1.0F;               // seconds; negative: none (a float: it fits beside fd_)
  std::atomic<bool> got_first_byte_{false};  // the drain reads it from the serving thread
  bool failed_ = false;
  std::atomic<bool> drained_{false};     // ended by the drain while it waited for a request
  std::atomic<bool> cut_{false};         // the tracker shut it down when the drain ran out of time
  std::atomic<bool> overflowed_{false};  // cut as a slow consumer (its handle's queue was full)
  std::atomic<bool> dropped_{false};     // a message to it was dropped already (logged once)
  bool handed_off_ = false;              // served by a forked child, which logs it
  bool withdrawn_ = false;               // refused after admission (withdraw()): not counted as accepted
  bool per_ip_counted_ = false;          // counted against max_connections_per_ip under peer_'s host
  bool expects_proxy_header_ = false;
  bool in_request_ = false;
  std::uint32_t requests_ = 0;  // ended by end_request()
  std::atomic<bool> idle_{false};
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  std::error_code reason_;
  std::unique_ptr<std::string> message_;  // the reason of an exception that was not a std::system_error
  ConnectionRecord* prev_ = nullptr;      // the tracker's list of open connections
  ConnectionRecord* next_ = nullptr;
};

// A server's connection accounting: admission against the limits, the list of open
// connections, counters for stats(), the access log, and the drain at server_close().
//
// Threads: admit() on the serving thread; records close on whichever thread runs their
// handler; stats() and the drain from any thread. One mutex guards the list and the counts.
class ConnectionTracker {
 public:
  ConnectionTracker(const Limits& limits, const Logger& logger) : limits_(limits), logger_(logger) {}
  ConnectionTracker(const ConnectionTracker&) = delete;
  ConnectionTracker& operator=(const ConnectionTracker&) = delete;

  const Limits& limits() const noexcept { return limits_; }

  enum class Admission { admitted, full, ip_full };

  // A record for a new connection, or nullptr (and why in `result`) when a limit refuses it.
  // `count_ip`: hold the peer to max_connections_per_ip now; false for a trusted proxy, whose
  // client is known only once its PROXY header is read (admit_client()).
  std::unique_ptr<ConnectionRecord> admit(const Address& peer, int fd, Admission& result, bool count_ip = true);

  // After a PROXY header: `client` becomes the record's peer, for the per-IP limit, the logs and
  // stats. False when the client has max_connections_per_ip connections open already.
  bool admit_client(ConnectionRecord& record, Address client, std::unique_ptr<ProxyHeader> header);

  // At max_connections: the serving loop stops accepting (Overload::pause).
  bool full() const;

  // Called, on the closing connection's thread, when a connection closes while full() was
  // true: the serving loop may accept again.
  void on_room(std::function<void()> callback);

  void count_refused() noexcept { refused_.fetch_add(1, std::memory_order_relaxed); }
  void count_denied() noexcept {
    denied_.fetch_add(1, std::memory_order_relaxed);
    count_refused();
  }
  void count_proxy(ProxyOutcome outcome) noexcept {
    proxy_[static_cast<std::size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
  }
  // A TLS handshake done (TlsFailure::none) or failed, by its reason.
  void count_tls(TlsFailure outcome) noexcept {
    tls_[static_cast<std::size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
  }
  void count_tls_resumed() noexcept { tls_[tls_failure_count].fetch_add(1, std::memory_order_relaxed); }
  void count_accept_error() noexcept { accept_errors_.fetch_add(1, std::memory_order_relaxed); }
  void count_datagram() noexcept { datagrams_.fetch_add(1, std::memory_order_relaxed); }
  // A datagram dropped at ThreadingMixIn's max_threads: true when it should be logged (the first,
  // then at most one a second, so that a flood cannot flood the log too).
  bool count_datagram_dropped() noexcept;

  bool draining() const noexcept { return draining_.load(); }

  std::size_t active() const;

  // From now on, connections waiting for a new request see the end of their stream: those
  // waiting now, with nothing unread in their socket, have their read side shut down; the
  // others see it at their next such wait.
  void begin_drain();

  // During the drain: ends the read side of the connections that are limits.silent_grace old
  // and have sent nothing (no byte read, none waiting in the socket). Returns when the next
  // silent one comes of age, time_point::max() when none will.
  Clock::time_point shut_silent(Clock::time_point now);

  // Waits until no connection is open or `deadline` passes, closing the silent ones on the way;
  // true when none is left.
  bool wait_until_closed(Clock::time_point deadline);

  // Shuts down every open connection, both ways: a blocked read sees the end of the stream, a
  // write fails with EPIPE. Returns how many there were; each is counted as cut when it closes.
  std::size_t cut_all();

  // Takes back the admission of a connection refused after all (a full pool, a proxied client
  // over max_connections_per_ip): it counts as refused, not accepted, and writes no access line
  // when its record goes.
  void withdraw(ConnectionRecord& record);

  // A forking server's parent hands the connection to a child: it closes its copy of the
  // descriptor, and the child, which knows the bytes and the reason, writes the access line.
  void hand_off(ConnectionRecord& record);

  ServerStats stats() const;

 private:
  friend class ConnectionRecord;

  // Under mutex_: counts a connection from `peer` against max_connections_per_ip; false when
  // its host has that many. `counted`: whether it was counted (the limit is on, the peer is IP).
  bool count_per_ip(const Address& peer, bool& counted);

  void uncount_per_ip(ConnectionRecord& record) noexcept;

  Clock::time_point shut_silent_locked(Clock::time_point now) noexcept;

  void link(ConnectionRecord& record) noexcept;

  void unlink(ConnectionRecord& record) noexcept;

  // The record's connection is closing: count it, log it, free its slot.
  void release(ConnectionRecord& record) noexcept;

  // Adds a closing connection's bytes, duration and reason to the counters (under mutex_).
  void counted(const ConnectionRecord& record, double seconds, std::string& reason) noexcept;

  // Counts the close reason and says it in words.
  std::string close_reason(const ConnectionRecord& record) noexcept;

  const Limits& limits_;
  const Logger& logger_;
  mutable std::mutex mutex_;
  std::condition_variable closed_;  // active_ reached 0
  ConnectionRecord* head_ = nullptr;
  std::size_t active_ = 0;
  std::unordered_map<std::string, std::size_t> per_ip_;
  std::function<void()> room_;
  std::atomic<bool> draining_{false};
  std::atomic<std::uint64_t> accepted_{0}, refused_{0}, timed_out_{0}, limit_exceeded_{0}, errors_{0}, cut_{0},
      accept_errors_{0}, bytes_in_{0}, bytes_out_{0}, denied_{0}, queue_dropped_{0}, queue_disconnected_{0},
      datagrams_{0}, datagrams_dropped_{0}, requests_{0};
  std::atomic<Clock::rep> drop_logged_{0};                               // when a dropped datagram was last logged
  std::array<std::atomic<std::uint64_t>, 7> proxy_{};                    // by ProxyOutcome
  std::array<std::atomic<std::uint64_t>, tls_failure_count + 1> tls_{};  // by TlsFailure, then resumed
  std::array<std::atomic<std::uint64_t>, ServerStats::duration_bounds.size() + 1> durations_{};
};

}  // namespace socketserver::detail

#if SOCKETSERVER_DEFINITIONS
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <exception>

#include <socketserver/detail/exception.hpp>

namespace socketserver::detail {

SOCKETSERVER_DECL ConnectionRecord::~ConnectionRecord() { tracker_.release(*this); }

SOCKETSERVER_DECL const Limits& ConnectionRecord::limits() const noexcept { return tracker_.limits(); }

SOCKETSERVER_DECL std::optional<Seconds> ConnectionRecord::wait_cap() const {
  const std::optional<Seconds> shortest = limits().shortest_timeout();
  const std::optional<Seconds> own = user_timeout();
  if (!own) return shortest;
  return shortest && *shortest < *own ? shortest : own;
}

SOCKETSERVER_DECL Deadline ConnectionRecord::read_deadline(Clock::time_point now, bool partial) {
  const Limits& l = limits();
  Deadline deadline;
  partial = partial || in_request_;
  if (!got_first_byte_.load(std::memory_order_relaxed) && l.first_byte_timeout) {
    deadline.consider(l.first_byte_timeout, accepted_, errc::first_byte_timeout);
  } else if (!partial || !l.read_timeout) {
    deadline.consider(l.idle_timeout, now, errc::idle_timeout);
  }
  if (partial) {
    if (request_started_ == Clock::time_point::max()) request_started_ = now;
    deadline.consider(l.read_timeout, request_started_, errc::read_timeout);
  }
  deadline.consider(l.connection_timeout, accepted_, errc::connection_timeout);
  return deadline;
}

SOCKETSERVER_DECL bool ConnectionRecord::enter_idle() noexcept {
  // A new connection's first request is on its way: let it come (silent_grace bounds the wait).
  if (!got_first_byte_.load(std::memory_order_relaxed)) return true;
  idle_.store(true);
  if (!tracker_.draining()) return true;
  idle_.store(false);
  drained_.store(true);
  return false;
}

SOCKETSERVER_DECL Deadline ConnectionRecord::write_deadline(Clock::time_point start) const {
  Deadline deadline;
  deadline.consider(limits().write_timeout, start, errc::write_timeout);
  deadline.consider(limits().connection_timeout, accepted_, errc::connection_timeout);
  return deadline;
}

SOCKETSERVER_DECL void ConnectionRecord::note_current_exception() noexcept {
  if (failed_) return;
  failed_ = true;
  reason_ = current_error_code();
  if (!reason_) {
    try {
      try {
        throw;
      } catch (const std::exception& e) {
        message_ = std::make_unique<std::string>(e.what());
      } catch (...) {
        message_ = std::make_unique<std::string>("unknown exception");
      }
    } catch (...) {  // no memory for the message: the access line says "error"
    }
  }
}

SOCKETSERVER_DECL void ConnectionRecord::queue_overflowed(bool disconnect, std::size_t queued) noexcept {
  const std::size_t cap = limits().max_queued_bytes;
  if (disconnect) {
    if (overflowed_.exchange(true)) return;
    tracker_.queue_disconnected_.fetch_add(1, std::memory_order_relaxed);
    tracker_.logger_.log(LogLevel::warning, LogCategory::security,
                         "cutting {}: {} bytes queued for it, max_queued_bytes is {} (a slow consumer)", peer_, queued,
                         cap);
    return;
  }
  tracker_.queue_dropped_.fetch_add(1, std::memory_order_relaxed);
  if (!dropped_.exchange(true))  // once per connection: a stalled reader would flood the log
    tracker_.logger_.log(LogLevel::warning, LogCategory::security,
                         "dropping messages to {}: {} bytes queued for it, max_queued_bytes is {}", peer_, queued, cap);
}

SOCKETSERVER_DECL bool ConnectionTracker::count_datagram_dropped() noexcept {
  datagrams_dropped_.fetch_add(1, std::memory_order_relaxed);
  const Clock::rep now = Clock::now().time_since_epoch().count();
  Clock::rep last = drop_logged_.load(std::memory_order_relaxed);
  const Clock::rep second = std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(1)).count();
  return (last == 0 || now - last >= second) && drop_logged_.compare_exchange_strong(last, now);
}

SOCKETSERVER_DECL std::unique_ptr<ConnectionRecord> ConnectionTracker::admit(const Address& peer, int fd,
                                                                             Admission& result, bool count_ip) {
  std::lock_guard lock(mutex_);
  if (limits_.max_connections != 0 && active_ >= limits_.max_connections) {
    result = Admission::full;
    return nullptr;
  }
  bool counted = false;
  if (count_ip && !count_per_ip(peer, counted)) {
    result = Admission::ip_full;
    return nullptr;
  }
  auto record = std::make_unique<ConnectionRecord>(*this, peer, fd);
  record->per_ip_counted_ = counted;
  link(*record);
  ++active_;
  accepted_.fetch_add(1, std::memory_order_relaxed);
  result = Admission::admitted;
  return record;
}

SOCKETSERVER_DECL bool ConnectionTracker::admit_client(ConnectionRecord& record, Address client,
                                                       std::unique_ptr<ProxyHeader> header) {
  std::lock_guard lock(mutex_);
  uncount_per_ip(record);
  record.peer_ = std::move(client);
  record.proxy_ = std::move(header);
  return count_per_ip(record.peer_, record.per_ip_counted_);
}

SOCKETSERVER_DECL bool ConnectionTracker::full() const {
  std::lock_guard lock(mutex_);
  return limits_.max_connections != 0 && active_ >= limits_.max_connections;
}

SOCKETSERVER_DECL void ConnectionTracker::on_room(std::function<void()> callback) { room_ = std::move(callback); }

SOCKETSERVER_DECL std::size_t ConnectionTracker::active() const {
  std::lock_guard lock(mutex_);
  return active_;
}

SOCKETSERVER_DECL void ConnectionTracker::begin_drain() {
  draining_.store(true);
  std::lock_guard lock(mutex_);
  for (ConnectionRecord* r = head_; r != nullptr; r = r->next_) {
    // Bytes waiting in the socket are a request that has arrived: not idle after all.
    int unread = 0;
    if (r->fd_ >= 0 && r->idle_.load() && ::ioctl(r->fd_, FIONREAD, &unread) == 0 && unread == 0) {
      r->drained_.store(true);
      ::shutdown(r->fd_, SHUT_RD);
    }
  }
}

SOCKETSERVER_DECL Clock::time_point ConnectionTracker::shut_silent(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  return shut_silent_locked(now);
}

SOCKETSERVER_DECL bool ConnectionTracker::wait_until_closed(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  for (;;) {
    const auto next_silent = shut_silent_locked(Clock::now());
    if (closed_.wait_until(lock, std::min(deadline, next_silent), [this] { return active_ == 0; })) return true;
    if (Clock::now() >= deadline) return false;
  }
}

SOCKETSERVER_DECL std::size_t ConnectionTracker::cut_all() {
  std::lock_guard lock(mutex_);
  std::size_t count = 0;
  for (ConnectionRecord* r = head_; r != nullptr; r = r->next_) {
    if (r->cut_.load()) continue;
    r->cut_.store(true);
    ++count;
    if (r->fd_ >= 0) ::shutdown(r->fd_, SHUT_RDWR);
  }
  return count;
}

SOCKETSERVER_DECL void ConnectionTracker::withdraw(ConnectionRecord& record) {
  {
    std::lock_guard lock(mutex_);
    record.withdrawn_ = true;
  }
  accepted_.fetch_sub(1, std::memory_order_relaxed);
  count_refused();
}

SOCKETSERVER_DECL void ConnectionTracker::hand_off(ConnectionRecord& record) {
  std::lock_guard lock(mutex_);
  record.fd_ = -1;
  record.handed_off_ = true;
}

SOCKETSERVER_DECL ServerStats ConnectionTracker::stats() const {
  ServerStats s;
  {
    std::lock_guard lock(mutex_);
    s.active = active_;
  }
  s.accepted = accepted_.load(std::memory_order_relaxed);
  s.refused = refused_.load(std::memory_order_relaxed);
  s.timed_out = timed_out_.load(std::memory_order_relaxed);
  s.limit_exceeded = limit_exceeded_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  s.cut = cut_.load(std::memory_order_relaxed);
  s.accept_errors = accept_errors_.load(std::memory_order_relaxed);
  s.bytes_in = bytes_in_.load(std::memory_order_relaxed);
  s.bytes_out = bytes_out_.load(std::memory_order_relaxed);
  s.denied = denied_.load(std::memory_order_relaxed);
  s.requests = requests_.load(std::memory_order_relaxed);
  s.datagrams.received = datagrams_.load(std::memory_order_relaxed);
  s.datagrams.dropped = datagrams_dropped_.load(std::memory_order_relaxed);
  s.queues.dropped = queue_dropped_.load(std::memory_order_relaxed);
  s.queues.disconnected = queue_disconnected_.load(std::memory_order_relaxed);
  const auto proxy = [this](ProxyOutcome outcome) {
    return proxy_[static_cast<std::size_t>(outcome)].load(std::memory_order_relaxed);
  };
  s.proxy = {proxy(ProxyOutcome::v1),
             proxy(ProxyOutcome::v2),
             proxy(ProxyOutcome::local),
             proxy(ProxyOutcome::invalid),
             proxy(ProxyOutcome::timed_out),
             proxy(ProxyOutcome::untrusted_refused),
             proxy(ProxyOutcome::untrusted_direct)};
  const auto tls = [this](TlsFailure outcome) {
    return tls_[static_cast<std::size_t>(outcome)].load(std::memory_order_relaxed);
  };
  s.tls.handshakes = tls(TlsFailure::none);
  s.tls.resumed = tls_[tls_failure_count].load(std::memory_order_relaxed);
  s.tls.eof_before_hello = tls(TlsFailure::eof_before_hello);
  s.tls.not_tls = tls(TlsFailure::not_tls);
  s.tls.protocol_version = tls(TlsFailure::protocol_version);
  s.tls.no_shared_cipher = tls(TlsFailure::no_shared_cipher);
  s.tls.bad_certificate = tls(TlsFailure::bad_certificate);
  s.tls.client_hello_too_large = tls(TlsFailure::client_hello_too_large);
  s.tls.timed_out = tls(TlsFailure::timed_out);
  s.tls.unknown_server_name = tls(TlsFailure::unknown_server_name);
  s.tls.other = tls(TlsFailure::other);
  for (std::size_t i = 0; i < s.durations.size(); ++i) s.durations[i] = durations_[i].load(std::memory_order_relaxed);
  return s;
}

SOCKETSERVER_DECL bool ConnectionTracker::count_per_ip(const Address& peer, bool& counted) {
  counted = false;
  if (limits_.max_connections_per_ip == 0 || !peer.is_ip()) return true;
  std::size_t& count = per_ip_[peer.host()];
  if (count >= limits_.max_connections_per_ip) {
    if (count == 0) per_ip_.erase(peer.host());
    return false;
  }
  ++count;
  counted = true;
  return true;
}

SOCKETSERVER_DECL void ConnectionTracker::uncount_per_ip(ConnectionRecord& record) noexcept {
  if (!record.per_ip_counted_) return;
  record.per_ip_counted_ = false;
  const auto it = per_ip_.find(record.peer_.host());
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

SOCKETSERVER_DECL Clock::time_point ConnectionTracker::shut_silent_locked(Clock::time_point now) noexcept {
  if (!limits_.silent_grace) return Clock::time_point::max();
  const Clock::duration grace = to_duration(*limits_.silent_grace);
  Clock::time_point next = Clock::time_point::max();
  for (ConnectionRecord* r = head_; r != nullptr; r = r->next_) {
    if (r->fd_ < 0 || r->drained_.load() || r->got_first_byte_.load(std::memory_order_relaxed)) continue;
    const Clock::time_point due = r->accepted_ + grace;
    int unread = 0;
    if (now < due) {
      next = std::min(next, due);
    } else if (::ioctl(r->fd_, FIONREAD, &unread) == 0 && unread == 0) {
      r->drained_.store(true);
      ::shutdown(r->fd_, SHUT_RD);
    }
  }
  return next;
}

SOCKETSERVER_DECL void ConnectionTracker::link(ConnectionRecord& record) noexcept {
  record.next_ = head_;
  if (head_ != nullptr) head_->prev_ = &record;
  head_ = &record;
}

SOCKETSERVER_DECL void ConnectionTracker::unlink(ConnectionRecord& record) noexcept {
  if (record.prev_ != nullptr) {
    record.prev_->next_ = record.next_;
  } else {
    head_ = record.next_;
  }
  if (record.next_ != nullptr) record.next_->prev_ = record.prev_;
}

SOCKETSERVER_DECL void ConnectionTracker::release(ConnectionRecord& record) noexcept {
  const double seconds = std::chrono::duration<double>(Clock::now() - record.accepted_).count();
  bool was_full = false;
  std::string reason;
  {
    std::lock_guard lock(mutex_);
    unlink(record);
    // Counted before active_ drops: whoever sees the connection gone sees its counts too.
    if (!record.withdrawn_) counted(record, seconds, reason);
    was_full = limits_.max_connections != 0 && active_ >= limits_.max_connections;
    --active_;
    uncount_per_ip(record);
    if (active_ == 0) closed_.notify_all();
  }
  if (!record.handed_off_ && !record.withdrawn_) {
    if (record.requests_ == 0) {
      logger_.log(LogLevel::info, LogCategory::access, "{} closed after {:.6f} s, {} bytes in, {} bytes out: {}",
                  record.peer_, seconds, record.bytes_in_, record.bytes_out_, reason);
    } else {
      logger_.log(LogLevel::info, LogCategory::access,
                  "{} closed after {:.6f} s, {} request{}, {} bytes in, {} bytes out: {}", record.peer_, seconds,
                  record.requests_, record.requests_ == 1 ? "" : "s", record.bytes_in_, record.bytes_out_, reason);
    }
  }
  if (was_full && room_) room_();
}

SOCKETSERVER_DECL void ConnectionTracker::counted(const ConnectionRecord& record, double seconds,
                                                  std::string& reason) noexcept {
  bytes_in_.fetch_add(record.bytes_in_, std::memory_order_relaxed);
  requests_.fetch_add(record.requests_, std::memory_order_relaxed);
  bytes_out_.fetch_add(record.bytes_out_, std::memory_order_relaxed);
  std::size_t bucket = 0;
  while (bucket < ServerStats::duration_bounds.size() && seconds > ServerStats::duration_bounds[bucket]) ++bucket;
  durations_[bucket].fetch_add(1, std::memory_order_relaxed);
  if (record.cut_) cut_.fetch_add(1, std::memory_order_relaxed);
  if (!record.handed_off_) reason = close_reason(record);
}

SOCKETSERVER_DECL std::string ConnectionTracker::close_reason(const ConnectionRecord& record) noexcept {
  try {
    if (record.cut_) return "cut by server_close() after drain_timeout";
    if (record.overflowed_.load()) {  // whatever the handler saw after its socket was shut down
      limit_exceeded_.fetch_add(1, std::memory_order_relaxed);
      return make_error_code(errc::send_queue_full).message();
    }
    if (!record.failed_) {
      if (!record.drained_.load()) return "closed";
      return record.got_first_byte_.load() ? "closed by server_close() while idle"
                                           : "closed by server_close(): it had sent nothing";
    }
    if (is_timeout(record.reason_)) {
      timed_out_.fetch_add(1, std::memory_order_relaxed);
    } else if (record.reason_ == errc::line_too_long || record.reason_ == errc::frame_too_large ||
               record.reason_ == errc::proxy_header_too_large || record.reason_ == errc::client_hello_too_large ||
               record.reason_ == errc::decompression_limit) {
      limit_exceeded_.fetch_add(1, std::memory_order_relaxed);
    } else {
      errors_.fetch_add(1, std::memory_order_relaxed);
    }
    if (record.reason_) return record.reason_.message();
    return record.message_ ? *record.message_ : "error";
  } catch (...) {
    return "closed";
  }
}

}  // namespace socketserver::detail
#endif

#endif  // SOCKETSERVER_DETAIL_CONNECTION_TRACKER_HPP
