#ifndef SOCKETSERVER_CONNECTION_GROUP_HPP
#define SOCKETSERVER_CONNECTION_GROUP_HPP

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <socketserver/connection_handle.hpp>
#include <socketserver/detail/outbox.hpp>

namespace socketserver {

/// A set of live connections to send to at once (Netty's ChannelGroup): a chat room, the
/// subscribers of a feed.
///
/// ```
/// socketserver::ConnectionGroup room;     // shared by the handlers, e.g. a member of the server
/// room.add(connection_handle());          // in setup() or handle()
/// room.broadcast(name + ": " + text, connection_handle());   // to everyone else
/// ```
/// A connection leaves by itself when it ends, so a group never holds dead members. A broadcast
/// makes one copy of its message, shared by every member's queue, and never blocks: each
/// member's queue is bounded by its limits.max_queued_bytes (ConnectionHandle), so one slow
/// consumer is cut (or misses the message) while the others get it.
///
/// Iteration: members() and for_each() work on a snapshot taken under the group's lock and
/// called outside it, in no particular order, so the callback may send, close, add or remove
/// (members that joined or left meanwhile are not seen).
///
/// Threads: every member from any thread. A copy shares the group. broadcast() holds the
/// group's lock while it queues to each member, so a broadcast, an add() and a leaving
/// connection take turns; a log sink must not send through handles (an overflow is logged
/// under that lock).
class ConnectionGroup {
 public:
  ConnectionGroup() : members_(std::make_shared<detail::GroupMembers>()) {}

  /// Adds the connection; false when it has ended (or the handle is empty). Adding a member
  /// again changes nothing.
  bool add(const ConnectionHandle& connection) const { return connection.outbox_ && members_->add(connection.outbox_); }

  /// Takes the connection out; false when it was not in the group.
  bool remove(const ConnectionHandle& connection) const noexcept {
    return connection.outbox_ && members_->remove(connection.outbox_.get());
  }

  bool contains(const ConnectionHandle& connection) const noexcept {
    return connection.outbox_ && members_->contains(connection.outbox_.get());
  }

  /// The connections in the group now.
  std::size_t size() const noexcept { return members_->size(); }

  /// Queues `bytes` for every member except `except` (e.g. the sender); returns how many took
  /// it (a member whose queue was full did not).
  std::size_t broadcast(std::string_view bytes, const ConnectionHandle& except = {}) const {
    return broadcast(std::make_shared<const std::string>(bytes), except);
  }
  std::size_t broadcast(const SharedBytes& bytes, const ConnectionHandle& except = {}) const {
    return members_->broadcast(bytes, except.outbox_.get());
  }

  /// A snapshot of the members, in no particular order.
  std::vector<ConnectionHandle> members() const {
    std::vector<ConnectionHandle> handles;
    for (auto& outbox : members_->snapshot()) handles.emplace_back(std::move(outbox));
    return handles;
  }

  /// Calls `function(const ConnectionHandle&)` for each member of a snapshot, outside the lock.
  template <class Function>
  void for_each(Function&& function) const {
    for (const ConnectionHandle& member : members()) function(member);
  }

 private:
  std::shared_ptr<detail::GroupMembers> members_;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_CONNECTION_GROUP_HPP
