#ifndef SOCKETSERVER_ASYNC_DETAIL_LOOP_OUTBOX_HPP
#define SOCKETSERVER_ASYNC_DETAIL_LOOP_OUTBOX_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <memory>
#include <utility>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <socketserver/address.hpp>
#include <socketserver/async/buffered_writer.hpp>
#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/detail/outbox.hpp>

namespace socketserver::detail {

// A connection handle's queue under a coroutine handler: a push from another thread (or loop)
// posts one drain to the connection's event loop, which writes the queue through the handler's
// wfile between the handler's own writes, and on later edges while the socket is full.
//
// Threads: drain() and close() on the connection's loop; wake() from the pushing thread.
class LoopOutbox final : public Outbox {
 public:
  LoopOutbox(ConnectionRecord* record, Address client, int fd, asio::io_context& io, AsyncBufferedWriter& wfile)
      : Outbox(record, std::move(client), fd), io_(io), wfile_(wfile) {}

 private:
  void wake() noexcept override {
    try {
      asio::post(io_, [self = shared_from_this()] { static_cast<LoopOutbox&>(*self).drain(); });
    } catch (...) {  // no memory to post: the next write or flush of the handler sends the queue
    }
  }

  // On the loop: the writer is the handler's for as long as the queue is open, and the queue
  // closes on this thread.
  void drain() noexcept {
    if (!closed()) wfile_.drain_in_background();
  }

  asio::io_context& io_;
  AsyncBufferedWriter& wfile_;
};

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_ASYNC_DETAIL_LOOP_OUTBOX_HPP
