#ifndef SOCKETSERVER_ASYNC_BUFFERED_WRITER_HPP
#define SOCKETSERVER_ASYNC_BUFFERED_WRITER_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include <asio/awaitable.hpp>

#include <socketserver/async/detail/event_loop.hpp>
#include <socketserver/async/detail/spill_buffer.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/detail/deadline.hpp>
#include <socketserver/detail/outbox.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/detail/io_access.hpp>

namespace socketserver {

namespace detail {
class LoopOutbox;
}

/// The buffered writer behind an async handler's `wfile`: BufferedWriter for coroutines.
///
/// `co_await wfile.write(data)` copies into the buffer and returns without suspending unless
/// the buffer is full; `co_await wfile.flush()` sends. The handler flushes before rfile waits
/// for input and after handle() returns, so pipelined requests are answered with one send().
/// When the peer does not read and the socket is full, write() and flush() suspend until it
/// drains: a handler's output never grows past buffer_size (the high-water mark), and over a
/// server's connection one write() or flush() gives up after limits.write_timeout.
///
/// Memory: the buffer is borrowed from the event loop while bytes are waiting to be sent and
/// given back once they are; an idle connection holds none. Only bytes that wait for a full
/// socket are copied to a buffer of the writer's own.
///
/// Thread safety: the connection's event-loop thread only.
class AsyncBufferedWriter {
 public:
  /// write() flushes first once this many bytes would be buffered; writes at least this long
  /// go straight to the socket. At most 64 KiB (the loop's buffer size); 0 sends every write.
  std::size_t buffer_size = detail::EventLoop::buffer_size;

  /// Writes of at least this many bytes that find nothing buffered go straight to the socket:
  /// copying them would cost more than the system call it might save.
  static constexpr std::size_t direct_write_size = std::size_t{8} * 1024;

  AsyncBufferedWriter() = default;
  AsyncBufferedWriter(const AsyncBufferedWriter&) = delete;
  AsyncBufferedWriter& operator=(const AsyncBufferedWriter&) = delete;
  ~AsyncBufferedWriter() { give_back(); }

  /// Buffers `data`; sends first when it would not fit. Writes of buffer_size or more, and of
  /// direct_write_size or more when nothing is buffered, go straight to the socket.
  asio::awaitable<void> write(std::string_view data) {
    if (data.empty()) co_return;
    // What the connection's handle queued before this write goes out before it.
    if (outbox_ != nullptr && !outbox_->empty()) co_await flush();
    const std::size_t limit = capacity();
    const bool direct = data.size() >= limit || limit == 0 || (data.size() >= direct_write_size && buffered() == 0);
    if (direct || size_ + data.size() > limit) co_await flush();  // what is buffered goes first
    if (direct) {
      co_await send_all(data.data(), data.size());
      if (outbox_ != nullptr) drain_in_background();  // what came while it waited
      co_return;
    }
    if (buffer_ == nullptr) buffer_ = loop().acquire_buffer();
    std::memcpy(buffer_ + size_, data.data(), data.size());
    size_ += data.size();
  }

  /// Sends everything buffered; completes when the kernel has taken all of it. Over a server's
  /// connection, gives up after limits.write_timeout (errc::write_timeout).
  asio::awaitable<void> flush() {
    if (try_flush()) co_return;
    const detail::Deadline deadline = write_deadline();
    do {
      co_await wait(deadline);
    } while (!try_flush());
  }

  /// Sends what the socket takes without waiting, then what the connection's handle queued.
  /// True when nothing is left to send; otherwise the rest waits for flush().
  bool try_flush();

  /// Bytes written and not yet sent.
  std::size_t buffered() const noexcept { return size_ + pending_.size(); }

 private:
  friend struct detail::IoAccess;
  friend class detail::LoopOutbox;

  // Writes the messages of the connection's handle while the socket takes them; the rest of one
  // it took in part waits in pending_. True when none is left.
  bool drain_outbox();

  // A handle's messages, with no coroutine writing: writes what the socket takes now, and the
  // rest on the connection's next edge. Nothing while a coroutine waits to write (its flush()
  // writes them; a direct write() drains them when it is done).
  void drain_in_background() noexcept;
  static void on_edge(void* writer) noexcept { static_cast<AsyncBufferedWriter*>(writer)->drain_in_background(); }

  // Writes to `connection`'s stream from now on, dropping anything buffered.
  void attach(detail::Connection& connection) noexcept;

  // Writes what the stream takes now; the byte count. When it takes less than all, the
  // connection notes what the stream waits for, for the next wait().
  std::size_t write_now(const char* data, std::size_t size);

  // co_await: until the stream can take more.
  detail::Wait wait(const detail::Deadline& deadline) {
    return connection().wait(detail::Connection::Side::writer, deadline);
  }

  std::size_t capacity() const noexcept {
    return buffer_size < detail::EventLoop::buffer_size ? buffer_size : detail::EventLoop::buffer_size;
  }

  detail::Deadline write_deadline() const;

  asio::awaitable<void> send_all(const char* data, std::size_t size) {
    const detail::Deadline deadline = write_deadline();
    while (size > 0) {
      const std::size_t n = write_now(data, size);
      data += n;
      size -= n;
      if (n == 0) co_await wait(deadline);
    }
  }

  detail::Connection& connection() const;
  detail::EventLoop& loop() const { return connection().loop(); }

  void give_back() noexcept;

  detail::Connection* connection_ = nullptr;
  char* buffer_ = nullptr;  // borrowed from the loop while size_ > 0
  std::size_t size_ = 0;
  detail::SpillBuffer pending_;       // what waits for a full socket to drain
  detail::Outbox* outbox_ = nullptr;  // the connection's handle's queue, once it has one
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
namespace socketserver {

SOCKETSERVER_DECL bool AsyncBufferedWriter::try_flush() {
  if (!pending_.empty()) {
    pending_.erase_front(write_now(pending_.data(), pending_.size()));
    if (!pending_.empty()) return false;
    pending_.clear();  // drained: keep no large block
  }
  if (size_ == 0) return outbox_ == nullptr || drain_outbox();
  const std::size_t sent = write_now(buffer_, size_);
  if (sent < size_) {
    // The socket is full: keep the rest in a buffer of our own rather than hold the loop's
    // across the wait.
    pending_.assign(buffer_ + sent, size_ - sent);
  }
  size_ = 0;
  give_back();
  if (!pending_.empty()) return false;
  return outbox_ == nullptr || drain_outbox();
}

SOCKETSERVER_DECL bool AsyncBufferedWriter::drain_outbox() {
  if (size_ != 0 || !pending_.empty()) return false;  // ours go first
  const std::size_t limit = capacity();
  for (;;) {
    SharedBytes next = outbox_->pop();
    if (!next) return true;
    if (next->size() >= direct_write_size || limit == 0) {
      const std::size_t sent = write_now(next->data(), next->size());
      if (sent < next->size()) {
        pending_.assign(next->data() + sent, next->size() - sent);
        return false;
      }
      continue;
    }
    // Small messages (chat lines) go out together: one write for a burst.
    if (buffer_ == nullptr) buffer_ = loop().acquire_buffer();
    std::memcpy(buffer_, next->data(), next->size());
    size_ = next->size();
    while (SharedBytes more = outbox_->pop(limit - size_)) {
      std::memcpy(buffer_ + size_, more->data(), more->size());
      size_ += more->size();
    }
    const std::size_t sent = write_now(buffer_, size_);
    if (sent < size_) pending_.assign(buffer_ + sent, size_ - sent);
    size_ = 0;
    give_back();
    if (!pending_.empty()) return false;
  }
}

SOCKETSERVER_DECL void AsyncBufferedWriter::drain_in_background() noexcept {
  if (connection_ == nullptr || connection_->waiting(detail::Connection::Side::writer)) return;
  try {
    if (!try_flush()) connection_->on_next_edge(&AsyncBufferedWriter::on_edge, this);
  } catch (...) {
    outbox_->request_close();  // the peer has gone, or the server aborts: the handler sees it
  }
}

SOCKETSERVER_DECL void AsyncBufferedWriter::attach(detail::Connection& connection) noexcept {
  give_back();
  connection_ = &connection;
}

SOCKETSERVER_DECL std::size_t AsyncBufferedWriter::write_now(const char* data, std::size_t size) {
  using Side = detail::Connection::Side;
  detail::Connection& c = connection();
  c.check(Side::writer);
  std::size_t sent = 0;
  while (sent < size) {
    const std::size_t n = c.stream().write_some({data + sent, size - sent});
    if (n == ByteStream::would_block) {
      c.blocked(Side::writer, c.stream().blocked_on());
      break;
    }
    if (detail::ConnectionRecord* record = c.record()) record->count_out(n);
    sent += n;
  }
  return sent;
}

SOCKETSERVER_DECL detail::Deadline AsyncBufferedWriter::write_deadline() const {
  const detail::ConnectionRecord* record = connection().record();
  return record != nullptr ? record->write_deadline(detail::Clock::now()) : detail::Deadline{};
}

SOCKETSERVER_DECL detail::Connection& AsyncBufferedWriter::connection() const {
  if (connection_ == nullptr) throw std::logic_error("AsyncBufferedWriter is not attached to a connection");
  return *connection_;
}

SOCKETSERVER_DECL void AsyncBufferedWriter::give_back() noexcept {
  if (buffer_ != nullptr) connection_->loop().release_buffer(buffer_);
  buffer_ = nullptr;
  size_ = 0;
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_ASYNC_BUFFERED_WRITER_HPP
