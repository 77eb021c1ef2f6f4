#ifndef SOCKETSERVER_TESTING_MEMORY_PIPE_HPP
#define SOCKETSERVER_TESTING_MEMORY_PIPE_HPP

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include <socketserver/detail/config.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver {

/// Two connected in-memory ByteStreams: what one end writes, the other end reads (Python's
/// socket.socketpair(), without sockets).
///
/// ```
/// socketserver::MemoryPipe pipe;
/// socketserver::StreamRequest request(std::move(pipe.server));  // what a handler reads and writes
/// pipe.client->sendall("hello\n");
/// ```
/// Each direction holds at most `capacity` bytes. read_some() waits until data arrives, the
/// other end ends the stream (shutdown_write(), close() or destruction: then 0), or the end's
/// timeout() passes (std::system_error(std::errc::timed_out), as SocketStream). write_some()
/// waits while the direction is full, so a writer whose peer does not read blocks, as on a
/// socket, and times out the same way: a test can check a handler's backpressure. Writing to an
/// end whose peer has closed throws EPIPE; reading or writing an end after its own close()
/// throws EBADF. native_handle() is -1 and set_no_delay() does nothing.
///
/// Ownership: each end owns its half of a shared state and may outlive the MemoryPipe and the
/// other end; destroying an end closes it. Move `server` into a StreamRequest to serve it.
///
/// Thread safety: the two ends may be used from two threads at once (a handler on one, the test
/// on the other). One end is used by one thread at a time, as any ByteStream; its close() may
/// come from another thread, and wakes a read or write waiting on it.
class MemoryPipe {
 public:
  /// The default capacity of each direction.
  static constexpr std::size_t default_capacity = std::size_t{64} * 1024;

  class End;

  /// Two connected ends, each direction holding at most `capacity` bytes. Throws
  /// std::invalid_argument for a capacity of 0.
  explicit MemoryPipe(std::size_t capacity = default_capacity);

  /// The end a test client uses.
  std::unique_ptr<End> client;
  /// The end a handler serves: move it into a StreamRequest.
  std::unique_ptr<End> server;
};

namespace detail {

// The state both ends of a MemoryPipe share: one buffer per direction, under one mutex.
struct MemoryPipeState {
  struct Direction {
    std::string buffer;                // bytes written and not yet read
    bool ended = false;                // the writer shut down or closed: after `buffer`, end of stream
    bool dropped = false;              // the reader closed: writes fail with EPIPE
    std::condition_variable readable;  // data, end of stream, or the reader's own close()
    std::condition_variable writable;  // room, the reader's close, or the writer's own close()
  };

  explicit MemoryPipeState(std::size_t limit) : capacity(limit) {}

  const std::size_t capacity;
  std::mutex mutex;
  Direction directions[2];  // [0]: client to server, [1]: server to client
  bool closed[2] = {false, false};
};

}  // namespace detail

/// One end of a MemoryPipe: a ByteStream whose peer is the pipe's other end.
class MemoryPipe::End final : public ByteStream {
 public:
  End(const End&) = delete;
  End& operator=(const End&) = delete;

  /// Closes the end.
  ~End() override;

  std::size_t read_some(std::span<char> buffer) override;

  std::size_t write_some(std::span<const char> data) override;

  /// Ends this end's sending direction: the peer reads what is buffered, then end of stream.
  void shutdown_write() noexcept override;

  /// Ends both directions: the peer reads what is buffered, then end of stream; its writes
  /// fail with EPIPE. Unread input is dropped. Idempotent.
  void close() noexcept override;

  int native_handle() const noexcept override { return -1; }

  std::optional<Seconds> timeout(Direction direction) const noexcept override {
    return timeouts_[direction == Direction::read ? 0 : 1];
  }
  void set_timeout(Direction direction, std::optional<Seconds> limit) noexcept override {
    timeouts_[direction == Direction::read ? 0 : 1] = limit;
  }
  using ByteStream::set_timeout;

  /// Bytes the peer wrote that this end has not read yet.
  std::size_t available() const;

 private:
  friend class MemoryPipe;

  End(std::shared_ptr<detail::MemoryPipeState> state, int side) noexcept : state_(std::move(state)), side_(side) {}

  detail::MemoryPipeState::Direction& outgoing() const noexcept { return state_->directions[side_]; }
  detail::MemoryPipeState::Direction& incoming() const noexcept { return state_->directions[1 - side_]; }
  bool closed() const noexcept { return state_->closed[side_]; }

  void end_output() noexcept;

  // Waits for `done` at most the timeout of `direction`; a zero timeout does not wait. False on
  // a timeout.
  template <class Predicate>
  bool wait(std::unique_lock<std::mutex>& lock, Direction direction, std::condition_variable& cv, Predicate done);

  std::shared_ptr<detail::MemoryPipeState> state_;
  int side_;                            // which direction this end writes to
  std::optional<Seconds> timeouts_[2];  // read, write: each wait's limit
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace socketserver {

SOCKETSERVER_DECL MemoryPipe::MemoryPipe(std::size_t capacity) {
  if (capacity == 0) throw std::invalid_argument("MemoryPipe: capacity must be at least 1");
  auto state = std::make_shared<detail::MemoryPipeState>(capacity);
  client.reset(new End(state, 0));
  server.reset(new End(std::move(state), 1));
}

SOCKETSERVER_DECL MemoryPipe::End::~End() { close(); }

SOCKETSERVER_DECL std::size_t MemoryPipe::End::read_some(std::span<char> buffer) {
  if (buffer.empty()) return 0;
  std::unique_lock lock(state_->mutex);
  auto& in = incoming();
  const bool ready =
      wait(lock, Direction::read, in.readable, [&] { return !in.buffer.empty() || in.ended || closed(); });
  if (closed()) throw std::system_error(EBADF, std::system_category(), "recv");
  if (!ready) throw std::system_error(std::make_error_code(std::errc::timed_out), "recv");
  const std::size_t n = std::min(buffer.size(), in.buffer.size());
  std::memcpy(buffer.data(), in.buffer.data(), n);
  in.buffer.erase(0, n);
  if (n != 0) in.writable.notify_all();
  return n;
}

SOCKETSERVER_DECL std::size_t MemoryPipe::End::write_some(std::span<const char> data) {
  if (data.empty()) return 0;
  std::unique_lock lock(state_->mutex);
  auto& out = outgoing();
  const std::size_t capacity = state_->capacity;
  const bool ready = wait(lock, Direction::write, out.writable,
                          [&] { return out.buffer.size() < capacity || out.dropped || out.ended || closed(); });
  if (closed()) throw std::system_error(EBADF, std::system_category(), "send");
  // After shutdown_write() a socket's send() fails with EPIPE too.
  if (out.dropped || out.ended) throw std::system_error(EPIPE, std::system_category(), "send");
  if (!ready) throw std::system_error(std::make_error_code(std::errc::timed_out), "send");
  const std::size_t n = std::min(data.size(), capacity - out.buffer.size());
  out.buffer.append(data.data(), n);
  out.readable.notify_all();
  return n;
}

SOCKETSERVER_DECL void MemoryPipe::End::shutdown_write() noexcept {
  const std::lock_guard lock(state_->mutex);
  end_output();
}

SOCKETSERVER_DECL void MemoryPipe::End::close() noexcept {
  const std::lock_guard lock(state_->mutex);
  if (closed()) return;
  state_->closed[side_] = true;
  end_output();
  auto& in = incoming();
  in.dropped = true;
  in.buffer.clear();
  in.readable.notify_all();          // a read waiting on this end
  in.writable.notify_all();          // the peer's writes
  outgoing().writable.notify_all();  // a write waiting on this end
}

SOCKETSERVER_DECL std::size_t MemoryPipe::End::available() const {
  const std::lock_guard lock(state_->mutex);
  return incoming().buffer.size();
}

SOCKETSERVER_DECL void MemoryPipe::End::end_output() noexcept {
  auto& out = outgoing();
  out.ended = true;
  out.readable.notify_all();
}

template <class Predicate>
bool MemoryPipe::End::wait(std::unique_lock<std::mutex>& lock, Direction direction, std::condition_variable& cv,
                           Predicate done) {
  const std::optional<Seconds> limit = timeout(direction);
  if (!limit) {
    cv.wait(lock, done);
    return true;
  }
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::ceil<clock::duration>(std::max(*limit, Seconds(0)));
  return cv.wait_until(lock, deadline, done);
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_TESTING_MEMORY_PIPE_HPP
