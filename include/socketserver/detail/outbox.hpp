#ifndef SOCKETSERVER_DETAIL_OUTBOX_HPP
#define SOCKETSERVER_DETAIL_OUTBOX_HPP

#include <sys/socket.h>

#include <algorithm>
#include <any>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <socketserver/address.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/limits.hpp>

namespace socketserver {

/// Bytes shared by every connection they are sent to: a broadcast to a thousand connections
/// holds one copy of its message, not a thousand.
using SharedBytes = std::shared_ptr<const std::string>;

}  // namespace socketserver

namespace socketserver::detail {

class GroupMembers;

// The shared half of a connection handle: the messages other threads (or event loops) queue for
// the connection, what the application keeps with it, and the groups it is in.
//
// The connection's own side drains it (a writer thread beside a blocking handler, the event loop
// under a coroutine one; each is a subclass, woken by wake()) and calls close() before its
// descriptor closes. After that every call is a harmless no-op: a handle may outlive its
// connection and its server.
//
// Threads: push(), request_close() and the accessors from any thread; pop() and close() on the
// connection's side. One mutex guards the queue; a group's lock is taken before it, never after.
class Outbox : public std::enable_shared_from_this<Outbox> {
 public:
  // `record`: the server's record of the connection (its limits, stats and logs; it outlives
  // the queue's open life), or null for a handler run without a server. `fd`: the socket, for
  // request_close(), or -1.
  Outbox(ConnectionRecord* record, Address client, int fd)
      : record_(record),
        client_(std::move(client)),
        fd_(fd),
        max_bytes_(record != nullptr ? record->limits().max_queued_bytes : Limits{}.max_queued_bytes),
        overflow_(record != nullptr ? record->limits().queue_overflow : Limits{}.queue_overflow) {}
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  virtual ~Outbox() = default;

  // Queues `bytes` for the connection. False when it is closed, or when the queue is full and
  // the overflow policy dropped the message or cut the connection.
  bool push(SharedBytes bytes);

  // Shuts the socket down both ways, from any thread: the handler's next read sees the end of
  // the stream and its writes fail, so the connection ends on its own thread, as usual.
  void request_close() noexcept {
    const std::lock_guard lock(mutex_);
    shut_down_locked();
  }

  bool closed() const noexcept {
    const std::lock_guard lock(mutex_);
    return closed_;
  }
  std::size_t queued() const noexcept {
    const std::lock_guard lock(mutex_);
    return queued_;
  }
  const Address& client() const noexcept { return client_; }
  std::any& data() noexcept { return data_; }

  // The connection's side: moves every queued message to `batch`; they count as queued until
  // written() says they have been written.
  void take_all(std::vector<SharedBytes>& batch) {
    const std::lock_guard lock(mutex_);
    take_all_locked(batch);
  }
  void written(const std::vector<SharedBytes>& batch) noexcept {
    const std::lock_guard lock(mutex_);
    written_locked(batch);
  }

  // The connection's side: takes the next message (none left, or closed: null). With
  // `at_most`, only one of at most that many bytes.
  SharedBytes pop(std::size_t at_most = static_cast<std::size_t>(-1));
  bool empty() const noexcept {
    const std::lock_guard lock(mutex_);
    return queue_.empty();
  }

  // The connection's side, before its descriptor closes: later pushes are refused, what is
  // queued is dropped, and the groups forget the connection.
  void close() noexcept;

  // A group's, under its own lock: records the membership. False when the connection is closed.
  bool joined(const std::shared_ptr<GroupMembers>& group);
  void left(const GroupMembers* group) noexcept;

 protected:
  // Called, under the lock, by the push that made the queue non-empty: the connection's side
  // should drain it. It must not take the lock, nor run the drain itself.
  virtual void wake() noexcept = 0;

  // Called, under the lock, by a push that finds the queue empty: the connection's side may
  // write `bytes` at once, without blocking, and return how many it wrote (all of them: nothing
  // is queued and no one is woken). 0 by default: the push queues and wakes.
  virtual std::size_t write_at_once(const std::string& bytes) noexcept {
    (void)bytes;
    return 0;
  }

  void take_all_locked(std::vector<SharedBytes>& batch) {
    for (SharedBytes& message : queue_) batch.push_back(std::move(message));
    queue_.clear();
  }
  void written_locked(const std::vector<SharedBytes>& batch) noexcept {
    for (const SharedBytes& message : batch) queued_ -= std::min(queued_, message->size());
  }
  bool empty_locked() const noexcept { return queue_.empty(); }
  // Under mutex_: from now on push() refuses (the connection is ending; what is queued stays).
  void refuse_locked() noexcept { refusing_ = true; }

  mutable std::mutex mutex_;
  bool closed_ = false;

 private:
  void shut_down_locked() noexcept {
    if (closed_ || fd_ < 0 || shut_down_) return;
    shut_down_ = true;
    ::shutdown(fd_, SHUT_RDWR);
  }

  ConnectionRecord* record_;  // while open
  const Address client_;
  const int fd_;
  const std::size_t max_bytes_;
  const Limits::QueueOverflow overflow_;
  bool shut_down_ = false;
  bool refusing_ = false;
  std::deque<SharedBytes> queue_;
  std::size_t queued_ = 0;  // bytes in queue_ (and in a batch being written)
  std::vector<std::weak_ptr<GroupMembers>> groups_;
  std::any data_;
};

// A ConnectionGroup's members. Threads: any; one mutex.
class GroupMembers : public std::enable_shared_from_this<GroupMembers> {
 public:
  bool add(const std::shared_ptr<Outbox>& member) {
    const std::lock_guard lock(mutex_);
    if (std::find(members_.begin(), members_.end(), member) != members_.end()) return true;
    if (!member->joined(shared_from_this())) return false;
    members_.push_back(member);
    return true;
  }

  bool remove(const Outbox* member) noexcept {
    const std::lock_guard lock(mutex_);
    const auto it = std::find_if(members_.begin(), members_.end(), [&](const auto& m) { return m.get() == member; });
    if (it == members_.end()) return false;
    (*it)->left(this);
    *it = std::move(members_.back());
    members_.pop_back();
    return true;
  }

  // A closing member, which has forgotten the group already.
  void forget(const Outbox* member) noexcept {
    const std::lock_guard lock(mutex_);
    const auto it = std::find_if(members_.begin(), members_.end(), [&](const auto& m) { return m.get() == member; });
    if (it == members_.end()) return;
    *it = std::move(members_.back());
    members_.pop_back();
  }

  bool contains(const Outbox* member) const noexcept {
    const std::lock_guard lock(mutex_);
    return std::any_of(members_.begin(), members_.end(), [&](const auto& m) { return m.get() == member; });
  }

  std::size_t size() const noexcept {
    const std::lock_guard lock(mutex_);
    return members_.size();
  }

  // Queues `bytes` for every member but `except`; how many took it. Under the group's lock,
  // which each push holds while it queues (or, on a plain socket, writes without waiting).
  std::size_t broadcast(const SharedBytes& bytes, const Outbox* except) {
    const std::lock_guard lock(mutex_);
    std::size_t sent = 0;
    for (const auto& member : members_) {
      if (member.get() != except && member->push(bytes)) ++sent;
    }
    return sent;
  }

  std::vector<std::shared_ptr<Outbox>> snapshot() const {
    const std::lock_guard lock(mutex_);
    return members_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Outbox>> members_;  // in no particular order
};

}  // namespace socketserver::detail

#if SOCKETSERVER_DEFINITIONS
namespace socketserver::detail {

SOCKETSERVER_DECL bool Outbox::push(SharedBytes bytes) {
  if (!bytes) return false;
  {
    const std::lock_guard lock(mutex_);
    if (closed_ || shut_down_ || refusing_) return false;
    if (max_bytes_ != 0 && queued_ + bytes->size() > max_bytes_) {
      const bool disconnect = overflow_ == Limits::QueueOverflow::disconnect;
      if (record_ != nullptr) record_->queue_overflowed(disconnect, queued_);
      if (disconnect) shut_down_locked();
      return false;
    }
    if (queue_.empty()) {
      const std::size_t written = write_at_once(*bytes);
      if (written == bytes->size()) return true;
      if (written != 0) bytes = std::make_shared<const std::string>(*bytes, written);  // the rest waits
    }
    queued_ += bytes->size();
    const bool wake_up = queue_.empty();
    queue_.push_back(std::move(bytes));
    // Under the lock: once the connection closes (under it too) its loop or thread may be gone.
    if (wake_up) wake();
  }
  return true;
}

SOCKETSERVER_DECL SharedBytes Outbox::pop(std::size_t at_most) {
  const std::lock_guard lock(mutex_);
  if (queue_.empty() || closed_ || queue_.front()->size() > at_most) return nullptr;
  SharedBytes next = std::move(queue_.front());
  queue_.pop_front();
  queued_ -= next->size();
  return next;
}

SOCKETSERVER_DECL void Outbox::close() noexcept {
  std::vector<std::weak_ptr<GroupMembers>> groups;
  {
    const std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    record_ = nullptr;
    queue_.clear();
    queued_ = 0;
    groups.swap(groups_);
  }
  for (const auto& weak : groups) {
    if (const auto group = weak.lock()) group->forget(this);
  }
}

SOCKETSERVER_DECL bool Outbox::joined(const std::shared_ptr<GroupMembers>& group) {
  const std::lock_guard lock(mutex_);
  if (closed_) return false;
  groups_.push_back(group);
  return true;
}

SOCKETSERVER_DECL void Outbox::left(const GroupMembers* group) noexcept {
  const std::lock_guard lock(mutex_);
  std::erase_if(groups_, [&](const auto& weak) {
    const auto locked = weak.lock();
    return !locked || locked.get() == group;
  });
}

}  // namespace socketserver::detail
#endif

#endif  // SOCKETSERVER_DETAIL_OUTBOX_HPP
