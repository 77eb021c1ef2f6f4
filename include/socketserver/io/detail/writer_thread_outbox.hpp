#ifndef SOCKETSERVER_IO_DETAIL_WRITER_THREAD_OUTBOX_HPP
#define SOCKETSERVER_IO_DETAIL_WRITER_THREAD_OUTBOX_HPP

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include <socketserver/address.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/detail/outbox.hpp>
#include <socketserver/io/buffered_writer.hpp>

namespace socketserver::detail {

// A connection handle's queue beside a blocking handler. The handler's thread waits in its own
// reads, so a thread of the connection's own writes what other threads queue: through the
// handler's wfile, so that it goes out in order with the handler's writes (which write what is
// queued first), is held to write_timeout and is counted; a batch at a time, with one flush
// after each.
//
// Threads: the writer thread is started by start() and joined by stop(), both on the handler's
// thread, which owns this object's last reference but for the handles' copies.
class WriterThreadOutbox final : public Outbox {
 public:
  // `plain`: the connection is the bare socket (no TLS, no layers), which a sender may write to
  // itself when the queue is empty and wfile is idle, sparing a thread's wake-up.
  WriterThreadOutbox(ConnectionRecord* record, Address client, int fd, BufferedWriter& wfile, bool plain)
      : Outbox(record, std::move(client), fd), wfile_(wfile), direct_fd_(plain ? fd : -1) {}
  ~WriterThreadOutbox() override { stop(false); }

  void start() {
    thread_ = std::thread([this] { run(); });
  }

  // When the handler is done: with `drain`, what is queued is written first; then the thread
  // ends and the queue closes, before the connection does.
  void stop(bool drain) noexcept;

 private:
  void wake() noexcept override { ready_.notify_one(); }
  std::size_t write_at_once(const std::string& bytes) noexcept override {
    return direct_fd_ >= 0 && !stopping_ ? wfile_.send_if_idle(bytes, direct_fd_) : 0;
  }
  void run() noexcept;

  BufferedWriter& wfile_;
  const int direct_fd_;  // -1: always through the writer thread
  std::condition_variable ready_;
  bool stopping_ = false;  // under mutex_
  std::thread thread_;
};

}  // namespace socketserver::detail

#if SOCKETSERVER_DEFINITIONS
namespace socketserver::detail {

SOCKETSERVER_DECL void WriterThreadOutbox::stop(bool drain) noexcept {
  {
    const std::lock_guard lock(mutex_);
    refuse_locked();
    stopping_ = true;
  }
  if (!drain) close();  // what is queued is dropped; the thread ends after its batch
  ready_.notify_one();
  if (thread_.joinable()) thread_.join();
  close();
}

SOCKETSERVER_DECL void WriterThreadOutbox::run() noexcept {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || closed_ || !empty_locked(); });
      if (empty_locked()) return;  // stopping, with nothing left
    }
    try {
      // Under wfile's lock, which the handler's own writes take too: whichever of them takes
      // the queue writes it before anything that comes after.
      wfile_.drain_outbox_and_flush();
    } catch (...) {
      // The peer has gone, or stopped reading past write_timeout: end the connection, whose
      // handler sees it on its next read.
      request_close();
      return;
    }
  }
}

}  // namespace socketserver::detail
#endif

#endif  // SOCKETSERVER_IO_DETAIL_WRITER_THREAD_OUTBOX_HPP
