#ifndef SOCKETSERVER_IO_BUFFERED_WRITER_HPP
#define SOCKETSERVER_IO_BUFFERED_WRITER_HPP

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <socketserver/detail/config.hpp>
#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/detail/outbox.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/detail/io_access.hpp>

namespace socketserver {

namespace detail {
class WriterThreadOutbox;
}

/// The buffered writer behind a handler's `wfile`.
///
/// write() collects bytes; flush() sends them with as few writes as the stream takes. Python's
/// StreamRequestHandler defaults to an unbuffered wfile (wbufsize = 0, one send per write);
/// this one buffers, and its handler flushes it before waiting for input and when the handler
/// returns, so pipelined requests are answered in one write per batch.
///
/// Backpressure: the buffer never holds more than buffer_size (the high-water mark); a write
/// that would pass it sends first, and sending blocks while the peer does not read. Over a
/// server's connection, one write() or flush() gives up after the server's
/// limits.write_timeout with std::system_error(errc::write_timeout).
///
/// Thread safety: write() and flush() may be called from a second thread while the handler's
/// thread reads rfile (a full-duplex protocol: a push server, a chat, a proxy): they take a
/// lock. Once a thread other than the handler's has written, rfile stops flushing wfile before
/// it waits for input, so the reader is never held up behind a peer that does not read: from
/// then on whoever writes calls flush() to send. Without a second thread the lock is never
/// contended.
class BufferedWriter {
 public:
  /// The default for buffer_size.
  static constexpr std::size_t default_buffer_size = std::size_t{64} * 1024;

  /// An unattached writer: write() buffers, and the first write or flush() that has to send
  /// throws std::logic_error.
  BufferedWriter() = default;
  explicit BufferedWriter(ByteStream& stream) : stream_(&stream) {}
  BufferedWriter(const BufferedWriter&) = delete;
  BufferedWriter& operator=(const BufferedWriter&) = delete;
  ~BufferedWriter() = default;

  /// write() flushes first once this many bytes would be buffered, so a handler that writes
  /// a lot sends as it goes instead of growing the buffer. 0 sends every write at once
  /// (Python's wbufsize = 0).
  std::size_t buffer_size = default_buffer_size;

  /// Writes of at least this many bytes that find the buffer empty go straight to the stream:
  /// copying them would cost more than the system call it might save.
  static constexpr std::size_t direct_write_size = std::size_t{8} * 1024;

  /// Buffers `data`; sends when the buffer is full. Writes larger than buffer_size go straight
  /// to the stream after what is already buffered, and so do writes of direct_write_size or
  /// more when nothing is buffered.
  void write(std::string_view data);

  /// Sends everything buffered; returns when all of it is written.
  void flush();

  /// Bytes written but not yet sent.
  std::size_t buffered() const;

 private:
  friend class BufferedReader;
  friend struct detail::IoAccess;
  friend class detail::WriterThreadOutbox;

  // Writes to `stream` from now on, dropping anything buffered; buffer_size is kept. `record`
  // is the server's record of the connection, whose limits the writes are held to.
  void attach(ByteStream& stream, detail::ConnectionRecord* record = nullptr) noexcept;

  // rfile, before it waits for input: flushes, unless another thread writes too (it sends what
  // it writes, and the reader must not queue behind a slow peer for it).
  void flush_before_wait();

  // Under mutex_: a write from a thread other than the one that attached the writer makes it
  // shared.
  void note_thread() noexcept;

  // Under mutex_: writes what the connection's handle queued, before what comes next, so a
  // message queued before a write() goes out before it.
  void take_outbox_locked();

  // The handle's writer thread: the queue, then a flush, without making the writer shared
  // (rfile still flushes before it waits, as it did before the handle).
  void drain_outbox_and_flush();

  // A thread sending through the handle of a plain socket (`fd`), when no one holds the writer
  // and nothing is buffered: one send() that does not wait (MSG_DONTWAIT). The bytes written,
  // 0 when it could not try or the socket was full.
  std::size_t send_if_idle(std::string_view data, int fd) noexcept;

  void write_locked(std::string_view data);

  void flush_locked();

  void send(std::string_view data, std::string_view* rest = nullptr);

  static std::size_t checked(std::size_t n);

  ByteStream* stream_ = nullptr;
  detail::ConnectionRecord* record_ = nullptr;
  std::string buf_;
  mutable std::mutex mutex_;
  std::thread::id owner_ = std::this_thread::get_id();  // the handler's thread
  std::atomic<bool> shared_{false};                     // another thread has written
  detail::Outbox* outbox_ = nullptr;                    // the connection's handle's queue, once it has one
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <sys/socket.h>

#include <stdexcept>
#include <vector>

#include <socketserver/detail/deadline.hpp>
#include <socketserver/io/detail/limited_io.hpp>

namespace socketserver {

SOCKETSERVER_DECL void BufferedWriter::write(std::string_view data) {
  const std::lock_guard lock(mutex_);
  note_thread();
  if (outbox_ != nullptr) take_outbox_locked();  // tested here: the path without a handle stays a load
  write_locked(data);
}

SOCKETSERVER_DECL void BufferedWriter::write_locked(std::string_view data) {
  if (buf_.size() + data.size() > buffer_size) {
    flush_locked();
    if (data.size() >= buffer_size) {
      send(data);
      return;
    }
  }
  if (buf_.empty() && data.size() >= direct_write_size) {
    send(data);
    return;
  }
  buf_.append(data);
}

SOCKETSERVER_DECL void BufferedWriter::take_outbox_locked() {
  if (outbox_ == nullptr || outbox_->empty()) return;
  std::vector<SharedBytes> batch;
  outbox_->take_all(batch);
  struct Written {  // also when a write throws: the connection is ending then
    detail::Outbox& outbox;
    const std::vector<SharedBytes>& batch;
    ~Written() { outbox.written(batch); }
  } written{*outbox_, batch};
  for (const SharedBytes& message : batch) write_locked(*message);
}

SOCKETSERVER_DECL std::size_t BufferedWriter::send_if_idle(std::string_view data, int fd) noexcept {
  const std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || !buf_.empty() || stream_ == nullptr) return 0;
  const ssize_t n = ::send(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n <= 0) return 0;  // full, or failed: the writer thread meets the error and ends the connection
  if (record_ != nullptr) record_->count_out(static_cast<std::size_t>(n));
  return static_cast<std::size_t>(n);
}

SOCKETSERVER_DECL void BufferedWriter::drain_outbox_and_flush() {
  const std::lock_guard lock(mutex_);
  if (outbox_ != nullptr) take_outbox_locked();
  flush_locked();
}

SOCKETSERVER_DECL void BufferedWriter::flush() {
  const std::lock_guard lock(mutex_);
  note_thread();
  if (outbox_ != nullptr) take_outbox_locked();
  flush_locked();
}

SOCKETSERVER_DECL std::size_t BufferedWriter::buffered() const {
  const std::lock_guard lock(mutex_);
  return buf_.size();
}

SOCKETSERVER_DECL void BufferedWriter::attach(ByteStream& stream, detail::ConnectionRecord* record) noexcept {
  stream_ = &stream;
  record_ = record;
  buf_.clear();
  owner_ = std::this_thread::get_id();
  shared_.store(false, std::memory_order_relaxed);
}

SOCKETSERVER_DECL void BufferedWriter::flush_before_wait() {
  if (shared_.load(std::memory_order_relaxed)) return;
  const std::lock_guard lock(mutex_);
  if (outbox_ != nullptr) take_outbox_locked();
  flush_locked();
}

SOCKETSERVER_DECL void BufferedWriter::note_thread() noexcept {
  if (std::this_thread::get_id() != owner_) shared_.store(true, std::memory_order_relaxed);
}

SOCKETSERVER_DECL void BufferedWriter::flush_locked() {
  if (buf_.empty()) return;
  std::string_view rest = buf_;
  try {
    send(rest, &rest);
  } catch (...) {
    buf_.erase(0, buf_.size() - rest.size());  // keep only what was not sent
    throw;
  }
  buf_.clear();
}

SOCKETSERVER_DECL void BufferedWriter::send(std::string_view data, std::string_view* rest) {
  if (stream_ == nullptr) throw std::logic_error("wfile used before the handler's setup()");
  if (record_ == nullptr) {
    while (!data.empty()) {
      data.remove_prefix(checked(stream_->write_some(data)));
      if (rest) *rest = data;
    }
    return;
  }
  const auto start = detail::Clock::now();
  const detail::Deadline deadline = record_->write_deadline(start);
  auto now = start;
  while (!data.empty()) {
    const std::size_t n = checked(detail::limited_call(*stream_, Direction::write, *record_, deadline, now, "write",
                                                       [&] { return stream_->write_some(data); }));
    record_->count_out(n);
    data.remove_prefix(n);
    if (rest) *rest = data;
    if (!data.empty()) now = detail::Clock::now();  // a slow reader: the deadline is checked again
  }
}

SOCKETSERVER_DECL std::size_t BufferedWriter::checked(std::size_t n) {
  if (n == ByteStream::would_block) throw std::logic_error("wfile over a non-blocking stream");
  return n;
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_IO_BUFFERED_WRITER_HPP
