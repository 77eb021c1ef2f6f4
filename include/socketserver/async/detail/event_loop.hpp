#ifndef SOCKETSERVER_ASYNC_DETAIL_EVENT_LOOP_HPP
#define SOCKETSERVER_ASYNC_DETAIL_EVENT_LOOP_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <asio/basic_waitable_timer.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/basic_stream_descriptor.hpp>

#include <socketserver/async/detail/awaitable_thread.hpp>
#include <socketserver/async/detail/completion.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/detail/deadline.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/detail/readiness.hpp>

namespace socketserver::detail {

class Connection;

// The readiness half of an async server's event loop: an edge-triggered epoll set holding the
// loop's connections, driven from an asio io_context.
//
// Why not asio's own socket operations: every asio readiness wait re-arms the descriptor with
// epoll_ctl(), and every asio read that finds the socket drained costs a read() that returns
// EAGAIN, so a request-reply exchange takes three system calls. Here each connection is added
// once, edge-triggered, and a read shorter than its buffer marks the connection drained (the
// kernel reports the next arrival as a new edge), so an exchange takes two: one read, one write.
// The set itself is one descriptor in the io_context, so timers, posted work and the user's own
// asio I/O share the thread as usual.
//
// It also lends out 64 KiB buffers: connections read into and write from a buffer only while
// they have bytes in flight, so an idle connection holds none.
//
// Deadlines: a wait may carry one (a Limits timeout). No timer per connection: one sweep timer
// per loop ends the waits whose deadline has passed, so a deadline costs a connection sixteen
// bytes and is met within one sweep interval.
//
// Threads: everything, construction excepted, runs on the thread that runs the io_context.
class EventLoop {
 public:
  static constexpr std::size_t buffer_size = std::size_t{64} * 1024;

  explicit EventLoop(asio::io_context& io);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  asio::io_context& context() noexcept { return io_; }

  // Starts waiting for events, and sweeping for deadlines every `sweep_interval` (zero: no
  // sweeps). Call once, before or on the loop's thread.
  void start(Clock::duration sweep_interval = {});

  // Completes every wait with operation_aborted, and fails every later one the same way.
  void abort_all();
  bool aborting() const noexcept { return aborting_; }

  char* acquire_buffer();

  void release_buffer(char* buffer) noexcept;

 private:
  friend class Connection;
  static constexpr std::size_t max_free_buffers = 8;

  struct Entry {
    Connection* connection = nullptr;
    std::uint32_t generation = 0;
  };

  // Events carry index and generation, so an event for a connection that has gone is dropped.
  std::uint64_t add(int fd, Connection& connection);

  // The descriptor leaves the set when it is closed; this only forgets the connection.
  void remove(std::uint64_t key) noexcept;

  Connection* find(std::uint64_t key) const noexcept {
    const auto index = static_cast<std::uint32_t>(key);
    if (index >= entries_.size()) return nullptr;
    const Entry& entry = entries_[index];
    return entry.generation == static_cast<std::uint32_t>(key >> 32) ? entry.connection : nullptr;
  }

  void arm();

  void schedule_sweep();

  // Ends the waits whose deadline has passed.
  void sweep();

  // Takes what is ready without blocking, round after round while events keep coming; parks in
  // the io_context (arm()) once they stop.
  void run_ready();
  static constexpr int max_rounds = 8;

  // Both on the io_context's own executor (as BaseServer's timer), not any_io_executor.
  using Descriptor = asio::posix::basic_stream_descriptor<asio::io_context::executor_type>;
  using Timer = asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>,
                                           asio::io_context::executor_type>;

  asio::io_context& io_;
  Descriptor epoll_;
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> free_entries_;
  std::vector<char*> free_buffers_;
  std::array<epoll_event, 256> events_{};
  bool aborting_ = false;
  Timer sweep_timer_;
  Clock::duration sweep_interval_{};
};

// One connection's place in an EventLoop: what its socket is known to allow (shared with the
// connection's non-blocking SocketStream), the stream its reader and writer use (the top of its
// layers), and one wait for each of them. The reader and the writer wait apart, each for
// whatever its stream needs (input, or room to send: a TLS read may have to write), so a reader
// coroutine and a writer coroutine can both be suspended at once. Lives in the connection's
// coroutine frame; owns neither the descriptor nor the stream.
class Connection {
 public:
  // Who waits: the connection's reader (rfile) or its writer (wfile).
  enum class Side : unsigned char { reader, writer };

  // `record`: the server's record of the connection, which counts its bytes; may be null.
  Connection(EventLoop& loop, int fd, ConnectionRecord* record = nullptr)
      : loop_(loop), key_(loop.add(fd, *this)), record_(record), aborted_(loop.aborting()) {
    slots_[1].direction = Direction::write;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { loop_.remove(key_); }

  EventLoop& loop() noexcept { return loop_; }
  ConnectionRecord* record() const noexcept { return record_; }
  Readiness& readiness() noexcept { return readiness_; }

  // The stream the reader and writer use: the top of the connection's streams.
  ByteStream& stream() const noexcept { return *stream_; }
  void set_stream(ByteStream& stream) noexcept { stream_ = &stream; }

  // co_await: suspends `side` until the socket is ready for `direction`, unless it is already
  // known to be. Past `deadline` the wait ends and check() throws the deadline's errc; once the
  // server aborts its connections, operation_aborted. One coroutine at a time may wait on each
  // side: std::logic_error for a second.
  Wait wait(Side side, Direction direction, const Deadline& deadline = {}) {
    blocked(side, direction);
    return wait(side, deadline);
  }
  // co_await: the same, for the direction blocked() last noted.
  Wait wait(Side side, const Deadline& deadline = {}) {
    Slot& slot = slots_[index(side)];
    check(side);
    if (slot.waiter) {
      throw std::logic_error(side == Side::reader ? "two coroutines read from one connection at once"
                                                  : "two coroutines write to one connection at once");
    }
    slot.deadline = deadline.at;
    slot.why = static_cast<std::uint8_t>(deadline.why);
    return wait_for(slot.waiter, slot.direction == Direction::read ? readiness_.readable : readiness_.writable);
  }

  // Notes what `side`'s stream waits for, after it returned would_block.
  void blocked(Side side, Direction direction) noexcept { slots_[index(side)].direction = direction; }
  // co_await: goes on at once (for a caller that must return a Wait but has nothing to wait for).
  Wait proceed() {
    static constexpr bool ready = true;
    return wait_for(slots_[0].waiter, ready);
  }

  // Whether a coroutine is suspended on `side`.
  bool waiting(Side side) const noexcept { return static_cast<bool>(slots_[index(side)].waiter); }

  // Throws what ended `side`'s last wait early: operation_aborted, or a deadline's errc.
  void check(Side side) const {
    if (aborted_) throw std::system_error(asio::error::operation_aborted);
    if (const std::uint8_t failure = slots_[index(side)].failure; failure != 0)
      throw std::system_error(static_cast<errc>(failure));
  }

  // Resumes both waits, whose next check() throws operation_aborted, now and from now on.
  void abort();

  // For a writer with bytes left and no coroutine to wait for it (what a connection handle
  // queued): `callback(context)` runs once, on the connection's next edge, after the waits.
  void on_next_edge(void (*callback)(void*), void* context) noexcept {
    background_ = callback;
    background_context_ = context;
  }

 private:
  friend class EventLoop;

  // One side's wait; packed, as every connection has two.
  struct Slot {
    Completion waiter;
    Clock::time_point deadline = Clock::time_point::max();  // of the wait in `waiter`
    std::uint8_t why = 0;                                   // the deadline's errc
    std::uint8_t failure = 0;                               // an errc once a deadline has passed
    Direction direction = Direction::read;
  };

  static constexpr std::size_t index(Side side) noexcept { return side == Side::reader ? 0 : 1; }

  // An edge for `direction`: the waits for it go on.
  void ready(Direction direction, std::uint64_t key);

  EventLoop& loop_;
  std::uint64_t key_;
  ConnectionRecord* record_;
  ByteStream* stream_ = nullptr;
  Readiness readiness_;
  bool aborted_;
  Slot slots_[2];  // reader, writer
  void (*background_)(void*) = nullptr;
  void* background_context_ = nullptr;
};

}  // namespace socketserver::detail

#if SOCKETSERVER_DEFINITIONS
#include <cerrno>

#include <asio/post.hpp>

#include <socketserver/detail/system_error.hpp>

namespace socketserver::detail {

SOCKETSERVER_DECL EventLoop::EventLoop(asio::io_context& io) : io_(io), epoll_(io), sweep_timer_(io) {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw_errno("epoll_create1");
  epoll_.assign(fd);
}

SOCKETSERVER_DECL EventLoop::~EventLoop() {
  for (char* buffer : free_buffers_) delete[] buffer;
}

SOCKETSERVER_DECL void EventLoop::start(Clock::duration sweep_interval) {
  arm();
  sweep_interval_ = sweep_interval;
  if (sweep_interval_ > Clock::duration::zero()) schedule_sweep();
}

SOCKETSERVER_DECL char* EventLoop::acquire_buffer() {
  if (free_buffers_.empty()) return new char[buffer_size];
  char* buffer = free_buffers_.back();
  free_buffers_.pop_back();
  return buffer;
}

SOCKETSERVER_DECL void EventLoop::release_buffer(char* buffer) noexcept {
  if (buffer == nullptr) return;
  // A few stay for reuse; more only appear when many handlers hold one across a wait.
  if (free_buffers_.size() < max_free_buffers) {
    free_buffers_.push_back(buffer);
  } else {
    delete[] buffer;
  }
}

SOCKETSERVER_DECL std::uint64_t EventLoop::add(int fd, Connection& connection) {
  std::uint32_t index;
  if (free_entries_.empty()) {
    index = static_cast<std::uint32_t>(entries_.size());
    entries_.emplace_back();
  } else {
    index = free_entries_.back();
    free_entries_.pop_back();
  }
  Entry& entry = entries_[index];
  entry.connection = &connection;
  const std::uint64_t key = (std::uint64_t{entry.generation} << 32) | index;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = key;
  if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, fd, &event) < 0) {
    const int error = errno;
    remove(key);
    throw_errno("epoll_ctl", error);
  }
  return key;
}

SOCKETSERVER_DECL void EventLoop::remove(std::uint64_t key) noexcept {
  const auto index = static_cast<std::uint32_t>(key);
  Entry& entry = entries_[index];
  entry.connection = nullptr;
  ++entry.generation;
  free_entries_.push_back(index);
}

SOCKETSERVER_DECL void EventLoop::arm() {
  epoll_.async_wait(Descriptor::wait_read, [this](std::error_code ec) {
    if (!ec) run_ready();
  });
}

SOCKETSERVER_DECL void EventLoop::schedule_sweep() {
  sweep_timer_.expires_after(sweep_interval_);
  sweep_timer_.async_wait([this](std::error_code ec) {
    if (ec) return;
    sweep();
    schedule_sweep();
  });
}

SOCKETSERVER_DECL void Connection::abort() {
  aborted_ = true;
  EventLoop& loop = loop_;
  const std::uint64_t key = key_;
  slots_[0].waiter.complete();
  if (loop.find(key) != nullptr) slots_[1].waiter.complete();  // if still there
}

SOCKETSERVER_DECL void Connection::ready(Direction direction, std::uint64_t key) {
  EventLoop& loop = loop_;
  for (Slot& slot : slots_) {
    if (slot.waiter && slot.direction == direction) {
      slot.waiter.complete();  // may end the connection
      if (loop.find(key) != this) return;
    }
  }
  if (background_ != nullptr) {
    void (*callback)(void*) = background_;
    background_ = nullptr;
    callback(background_context_);  // writes, and may ask again; never ends the connection
  }
}

SOCKETSERVER_DECL void EventLoop::run_ready() {
  for (int round = 0; round < max_rounds; ++round) {
    const int n = ::epoll_wait(epoll_.native_handle(), events_.data(), static_cast<int>(events_.size()), 0);
    for (int i = 0; i < n; ++i) {
      const std::uint64_t key = events_[i].data.u64;
      const std::uint32_t happened = events_[i].events;
      // Look the connection up again after each resumption: the handler may have finished.
      if ((happened & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        if (Connection* connection = find(key)) {
          connection->readiness_.readable = true;
          if ((happened & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) connection->readiness_.hangup = true;
          connection->ready(Direction::read, key);
        }
      }
      if ((happened & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
        if (Connection* connection = find(key)) {
          connection->readiness_.writable = true;
          connection->ready(Direction::write, key);
        }
      }
    }
    // A batch of one or none means a quiet set: park. A bigger one means events keep coming, and
    // more have come in while this batch ran: take them now rather than first park, which costs
    // the io_context's wait and an epoll_ctl() as well.
    if (n < 2) {
      arm();
      return;
    }
  }
  // Rounds are bounded: let other queued work run, then poll again (no epoll_ctl() needed).
  asio::post(io_, [this] { run_ready(); });
}

SOCKETSERVER_DECL void EventLoop::sweep() {
  const Clock::time_point now = Clock::now();
  // By index, looking each connection up again: a resumed handler may end its connection or
  // start others.
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    Connection* connection = entries_[i].connection;
    if (connection == nullptr) continue;
    const std::uint64_t key = (std::uint64_t{entries_[i].generation} << 32) | i;
    for (Connection::Slot& slot : connection->slots_) {
      if (slot.waiter && now >= slot.deadline) {
        slot.failure = slot.why;
        slot.waiter.complete();
        connection = find(key);
        if (connection == nullptr) break;
      }
    }
  }
}

SOCKETSERVER_DECL void EventLoop::abort_all() {
  aborting_ = true;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (Connection* connection = entries_[i].connection) connection->abort();
  }
}

}  // namespace socketserver::detail
#endif

#endif  // SOCKETSERVER_ASYNC_DETAIL_EVENT_LOOP_HPP
