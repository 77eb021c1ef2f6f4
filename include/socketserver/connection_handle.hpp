#ifndef SOCKETSERVER_CONNECTION_HANDLE_HPP
#define SOCKETSERVER_CONNECTION_HANDLE_HPP

#include <any>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <socketserver/address.hpp>
#include <socketserver/detail/outbox.hpp>

namespace socketserver {

class ConnectionGroup;

/// A handle to a live connection that any thread (or event loop) may use: send it bytes, close
/// it, read its client's address, keep the application's data with it. A handler gets its own
/// connection's from connection_handle(), and passes it to whoever needs to reach the client: a
/// ConnectionGroup, another connection's handler, a timer.
///
/// ```
/// auto me = connection_handle();          // in a handler
/// std::thread([me] { me.send("tick\n"); }).detach();
/// ```
/// send() never blocks: it queues, and the connection's own side writes (a writer thread of
/// the connection's under a blocking handler; its event loop under a coroutine one), in the
/// order sent, each message whole, between the handler's own writes to wfile: a message queued
/// before the handler's next write goes out before it. On a plain socket (no TLS, no layers)
/// whose queue is empty and whose wfile is idle, the sending thread writes the message itself,
/// without waiting (MSG_DONTWAIT), and wakes no one. The bytes count in stats() and the access
/// line as wfile's do.
///
/// A connection's queue holds at most limits.max_queued_bytes (plus the unwritten rest of the
/// message being written); a send past it cuts the connection (a slow consumer, closed with
/// errc::send_queue_full) or, with limits.queue_overflow = drop, drops that message; either is
/// counted in stats().queues and logged. A single message larger than max_queued_bytes never
/// fits. send() returning true means queued (or written to the socket), not delivered.
///
/// Lifetime: a copy shares the connection. Once the connection has ended, every call is a
/// harmless no-op: send() returns false, close() does nothing; a handle may outlive its
/// connection and its server. What was queued when the handler returned is written before the
/// connection closes (the blocking handler's finish(), within limits.write_timeout; the async
/// one's last flush); what comes after that is dropped. closed() turns true when the connection
/// has ended, not when close() or a cut has only begun to end it (send() refuses from then on).
///
/// Threads: every member from any thread. user_data() is the application's: set it before the
/// handle is shared (before add() to a group), or guard it yourself.
///
/// ForkingMixIn: each connection lives in a process of its own, so a handle reaches only the
/// connections of its process, and a group across connections does not work there.
class ConnectionHandle {
 public:
  /// An empty handle: send() returns false, close() does nothing.
  ConnectionHandle() = default;

  /// Queues a copy of `bytes` for the connection. False when the connection has ended, or when
  /// its queue was full (the message was dropped, or the connection cut).
  bool send(std::string_view bytes) const {
    return outbox_ && outbox_->push(std::make_shared<const std::string>(bytes));
  }
  /// Queues shared bytes: no copy is made, however many connections they go to.
  bool send(SharedBytes bytes) const { return outbox_ && outbox_->push(std::move(bytes)); }

  /// Ends the connection from any thread: its socket is shut down both ways, so the handler's
  /// next read sees the end of the stream and the connection closes on its own thread. Bytes
  /// still queued are dropped.
  void close() const noexcept {
    if (outbox_) outbox_->request_close();
  }

  /// Whether the connection has ended (or the handle is empty).
  bool closed() const noexcept { return !outbox_ || outbox_->closed(); }

  /// Bytes queued and not yet written.
  std::size_t queued() const noexcept { return outbox_ ? outbox_->queued() : 0; }

  /// The client's address (behind a trusted proxy, the one its PROXY header named); empty for
  /// an empty handle.
  Address client_address() const { return outbox_ ? outbox_->client() : Address(); }

  /// The application's own data about the connection (a nickname, a session).
  std::any& user_data() const {
    if (!outbox_) throw std::logic_error("user_data() of an empty ConnectionHandle");
    return outbox_->data();
  }

  /// False for an empty handle.
  explicit operator bool() const noexcept { return outbox_ != nullptr; }

  /// Whether both are handles to the same connection.
  friend bool operator==(const ConnectionHandle& a, const ConnectionHandle& b) noexcept {
    return a.outbox_ == b.outbox_;
  }

  /// For the servers' handlers, which make a connection's handle.
  explicit ConnectionHandle(std::shared_ptr<detail::Outbox> outbox) noexcept : outbox_(std::move(outbox)) {}

 private:
  friend class ConnectionGroup;
  std::shared_ptr<detail::Outbox> outbox_;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_CONNECTION_HANDLE_HPP
