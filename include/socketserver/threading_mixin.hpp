#ifndef SOCKETSERVER_THREADING_MIXIN_HPP
#define SOCKETSERVER_THREADING_MIXIN_HPP

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <list>
#include <mutex>
#include <thread>
#include <utility>

#include <socketserver/address.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/request.hpp>

namespace socketserver {

/// Runs each request on a thread of its own (Python's ThreadingMixIn).
///
/// ```
/// using MyServer = socketserver::ThreadingMixIn<socketserver::TCPServer<MyHandler>>;
/// ```
/// Threads: the serving thread accepts and starts one std::thread per request; that thread
/// owns the Request (moved into it) and runs the handler, shutdown_request() and, on error,
/// handle_error(). Finished threads are joined when the next request starts, so a long-running
/// server holds no dead threads.
///
/// Difference from Python: a C++ thread cannot outlive the server it uses, so the destructor
/// always waits for every thread, daemon_threads or not. Call shutdown() and server_close()
/// before the server goes out of scope while handlers may still run: the destructor is a last
/// resort that cannot call your server subclass's overrides any more.
// The destructor is virtual through BaseServer; clang-tidy cannot see through the dependent base.
template <class Server>
class ThreadingMixIn : public Server {  // NOLINT(cppcoreguidelines-virtual-class-destructor)
 public:
  using Server::Server;

  ~ThreadingMixIn() override { close_and_join(true, true); }

  /// When true, a stream server's server_close() does not wait for request threads (Python's
  /// daemon_threads). A datagram server waits for them all the same: they use its socket.
  bool daemon_threads = false;
  /// When true (the default), server_close() waits for the non-daemon request threads.
  bool block_on_close = true;

  /// A datagram server's bound (ThreadingUDPServer, ThreadingUnixDatagramServer): the most
  /// request threads at once. A datagram that comes while that many run is dropped, as the
  /// network may drop any datagram: counted in stats().datagrams.dropped and logged (at most a
  /// line a second). The default is ThreadPoolMixIn's max_workers; 0: no bound (Python's
  /// behaviour: a thread per datagram, however many). Stream servers are bounded by
  /// limits.max_connections instead.
  std::size_t max_threads = std::min<std::size_t>(32, std::thread::hardware_concurrency() + 4);

  /// Starts a thread that runs the request; a datagram server drops it at max_threads. May be
  /// overridden.
  void process_request(Request& request, const Address& client_address) override {
    std::lock_guard lock(mutex_);
    reap_finished();
    if constexpr (Server::handlers_share_server_socket) {
      if (max_threads != 0 && workers_.size() >= max_threads) {
        if (this->tracker().count_datagram_dropped())
          this->logger.log(LogLevel::warning, LogCategory::security,
                           "dropped a datagram from {}: {} request threads busy (max_threads); drops are "
                           "counted in stats().datagrams.dropped, logged at most once a second",
                           client_address, workers_.size());
        return;
      }
    }
    Worker& worker = workers_.emplace_back();
    worker.daemon = daemon_threads;
    try {
      auto& owned = static_cast<typename Server::request_type&>(request);
      worker.thread = std::thread([this, &worker, request = std::move(owned), client_address]() mutable {
        struct MarkDone {  // also when the thread is cancelled
          std::atomic<bool>& done;
          ~MarkDone() { done.store(true, std::memory_order_release); }
        } mark{worker.done};
        process_request_thread(request, client_address);
      });
    } catch (...) {
      workers_.pop_back();
      throw;
    }
  }

  /// Closes the server socket, then, when block_on_close is set, drains the connections
  /// (drain(): limits.drain_timeout, then they are cut; not with daemon_threads) and waits for
  /// the request threads (daemon threads excepted). A datagram server's handlers reply through the server's own
  /// socket, so there the order is reversed: every thread, daemon or not, is joined first.
  void server_close() override { close_and_join(block_on_close, false); }

  /// Request threads started and not yet joined (finished ones are joined at the next request).
  std::size_t thread_count() const {
    std::lock_guard lock(mutex_);
    return workers_.size();
  }

 protected:
  /// The body of a request thread: Python's process_request_thread(). May be overridden.
  virtual void process_request_thread(Request& request, const Address& client_address) {
    this->run_request(request, client_address);
  }

 private:
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
    bool daemon = false;
  };

  // Joins threads that have finished; they are exiting, so join() returns at once.
  void reap_finished() {
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->done.load(std::memory_order_acquire)) {
        it->thread.join();
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Closes the server socket and waits for the request threads (when `wait`; daemon ones only
  // when `all`). A datagram server's threads reply through its socket: all of them are joined
  // first, whatever `wait` and `all` say.
  void close_and_join(bool wait, bool all) {
    if constexpr (Server::handlers_share_server_socket) {
      join(true);
      Server::server_close();
    } else {
      Server::server_close();
      if (wait && !all && !daemon_threads) this->drain();  // daemon threads are not waited for
      if (wait) join(all);
    }
  }

  // Waits for the request threads (daemon ones only when `all`), outside the lock so that a
  // handler may still reach the server.
  void join(bool all) {
    std::list<Worker> joining;
    {
      std::lock_guard lock(mutex_);
      for (auto it = workers_.begin(); it != workers_.end();) {
        auto next = std::next(it);
        if (all || !it->daemon) joining.splice(joining.end(), workers_, it);
        it = next;
      }
    }
    for (Worker& worker : joining) worker.thread.join();
  }

  mutable std::mutex mutex_;
  std::list<Worker> workers_;  // a list: each thread holds a reference to its own entry
};

}  // namespace socketserver

#endif  // SOCKETSERVER_THREADING_MIXIN_HPP
