#ifndef SOCKETSERVER_THREAD_POOL_MIXIN_HPP
#define SOCKETSERVER_THREAD_POOL_MIXIN_HPP

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <socketserver/address.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/request.hpp>

namespace socketserver {

/// Runs requests on a bounded pool of threads with a bounded queue: ThreadingMixIn without its
/// thread per request, so a flood of connections cannot create unbounded threads.
///
/// ```
/// socketserver::ThreadPoolMixIn<socketserver::TCPServer<MyHandler>> server({"0.0.0.0", 8080});
/// server.max_workers = 16;
/// ```
/// Threads: the serving thread accepts and queues each Request (moved into the queue); up to
/// max_workers threads, started as needed and kept, take requests in order and run the
/// handler, shutdown_request() and, on error, handle_error(). At most max_queue requests wait
/// beyond the idle workers. When both are full, `overload` decides: `wait` (the default) holds
/// the serving thread until a worker frees up, so new connections wait in the listen backlog;
/// `refuse` shuts the new request down unanswered and logs a security line (server.logger).
///
/// A worker is held for the whole of its request: a long-lived connection occupies one until it
/// ends. server_close() serves what is queued, then stops and joins the workers; after it, new
/// requests are refused.
template <class Server>
class ThreadPoolMixIn : public Server {  // NOLINT(cppcoreguidelines-virtual-class-destructor)
 public:
  using Server::Server;

  ~ThreadPoolMixIn() override { close_pool(); }

  /// What process_request() does when every worker is busy and the queue is full.
  enum class Overload {
    wait,    ///< block the serving thread until there is room (backpressure)
    refuse,  ///< shut the request down unanswered and log it
  };

  /// The most request threads; default min(32, hardware threads + 4), like Python's
  /// ThreadPoolExecutor.
  std::size_t max_workers = std::min<std::size_t>(32, std::thread::hardware_concurrency() + 4);
  /// The most requests waiting beyond the idle workers (default 128).
  std::size_t max_queue = 128;
  /// The policy when workers and queue are full (default: wait).
  Overload overload = Overload::wait;

  /// Queues the request for a worker, starting one if none is idle and fewer than max_workers
  /// run. May be overridden.
  void process_request(Request& request, const Address& client_address) override {
    std::unique_lock lock(mutex_);
    const auto has_room = [this] { return queue_.size() < idle_ + max_queue; };
    if (!closed_ && queue_.size() >= idle_ && workers_.size() < max_workers) start_worker();
    if (!closed_ && !has_room() && overload == Overload::wait) room_.wait(lock, [&] { return has_room() || closed_; });
    if (closed_ || !has_room()) {
      const char* why = closed_ ? "pool closed" : "pool full";
      const std::size_t busy = workers_.size() - idle_, queued = queue_.size();
      ++refused_;
      lock.unlock();
      if (auto record = detail::RequestAccess::take_record(request)) {
        this->tracker().withdraw(*record);
      } else {
        this->tracker().count_refused();
      }
      this->logger.log(LogLevel::warning, LogCategory::security,
                       "{}, refusing request from {}: {} workers busy, {} requests queued", why, client_address, busy,
                       queued);
      this->shutdown_request(request);
      return;
    }
    queue_.push_back({std::move(static_cast<typename Server::request_type&>(request)), client_address});
    work_.notify_one();
  }

  /// Closes the server socket, drains the connections (drain(): queued ones are served, and
  /// whatever is still open after limits.drain_timeout is cut), then stops and joins the
  /// workers. A datagram server's workers reply through its socket, so there they are joined
  /// first.
  void server_close() override { close_pool(); }

  /// Worker threads started (they are kept until server_close()).
  std::size_t worker_count() const {
    std::lock_guard lock(mutex_);
    return workers_.size();
  }

  /// Requests waiting for a worker.
  std::size_t queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }

  /// Requests refused because workers and queue were full or the pool was closed.
  std::size_t refused() const {
    std::lock_guard lock(mutex_);
    return refused_;
  }

 protected:
  /// Runs one request on a worker: Python's process_request_thread(). May be overridden.
  virtual void process_request_thread(Request& request, const Address& client_address) {
    this->run_request(request, client_address);
  }

 private:
  struct Task {
    typename Server::request_type request;
    Address client_address;
  };

  // Under mutex_. The new worker counts as idle from now, so a request queued for it is not
  // refused while the thread starts.
  void start_worker() {
    ++idle_;
    try {
      workers_.emplace_back([this] { work(); });
    } catch (...) {
      --idle_;
      throw;
    }
  }

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      work_.wait(lock, [this] { return !queue_.empty() || closed_; });
      --idle_;
      if (queue_.empty()) return;  // closed, and nothing left to serve
      Task task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      process_request_thread(task.request, task.client_address);
      task = Task{};  // the connection is released before the worker waits again
      lock.lock();
      ++idle_;
      room_.notify_one();
    }
  }

  void close_pool() {
    if constexpr (!Server::handlers_share_server_socket) {
      Server::server_close();
      this->drain();
    }
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      workers.swap(workers_);
    }
    work_.notify_all();
    room_.notify_all();
    for (std::thread& worker : workers) worker.join();
    if constexpr (Server::handlers_share_server_socket) Server::server_close();
  }

  mutable std::mutex mutex_;
  std::condition_variable work_;  // a task was queued, or the pool closed
  std::condition_variable room_;  // a worker became idle, or the pool closed
  std::deque<Task> queue_;
  std::vector<std::thread> workers_;
  std::size_t idle_ = 0;  // workers not running a request, starting ones included
  std::size_t refused_ = 0;
  bool closed_ = false;  // no new requests; workers leave once the queue is empty
};

}  // namespace socketserver

#endif  // SOCKETSERVER_THREAD_POOL_MIXIN_HPP
