#ifndef SOCKETSERVER_FORKING_MIXIN_HPP
#define SOCKETSERVER_FORKING_MIXIN_HPP

#include <cxxabi.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include <socketserver/address.hpp>
#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/detail/exception.hpp>
#include <socketserver/detail/file_descriptor.hpp>
#include <socketserver/detail/poll.hpp>
#include <socketserver/detail/system_error.hpp>
#include <socketserver/request.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver {

/// Runs each request in a child process of its own (Python's ForkingMixIn).
///
/// Processes: the serving process accepts, forks, records the child in active_children and
/// closes its copy of the connection. The child closes its copy of the listening socket, runs
/// the handler, shutdown_request() and, on error, handle_error(), then leaves with _exit():
/// status 0 on success, 1 after an error. The parent reaps finished children in
/// service_actions() and handle_timeout(), and waits while max_children are running.
/// timeout (for handle_request()) defaults to 300 seconds, as in Python. Only the server's own
/// children are ever reaped: a child that your program forked itself is left to you.
///
/// Limits: a connection counts against limits.max_connections until its child is reaped; the
/// child holds it to the timeouts and writes its access line. The drain at server_close()
/// waits for the children, then sends SIGTERM to those still running at drain_timeout (a child
/// starts with SIGTERM's and SIGINT's default actions, whatever handlers the parent installed).
/// The parent cannot tell a child between requests from a busy one: the drain gives every child
/// drain_timeout. The parent counts each connection and its duration; the child, which logs
/// its access line, knows the bytes and the close reason.
template <class Server>
class ForkingMixIn : public Server {
 public:
  using Server::Server;

  ~ForkingMixIn() override {
    Server::server_close();
    collect_children(block_on_close);
  }

  /// The most children at once; at the limit the serving loop waits for one to exit.
  std::size_t max_children = 40;
  /// When true (the default), server_close() waits for every child to exit.
  bool block_on_close = true;
  /// The process ids of children still running or not yet reaped.
  std::set<pid_t> active_children;

  /// Reaps children that have exited. While max_children or more are active, first waits
  /// for one to exit; with `blocking`, waits for all of them.
  void collect_children(bool blocking = false) {
    while (active_children.size() >= max_children && !active_children.empty()) wait_for_any_child();
    reap(blocking);
  }

  /// Calls collect_children(). May be overridden.
  void handle_timeout() override { collect_children(); }
  /// Calls collect_children(). May be overridden.
  void service_actions() override { collect_children(); }

  /// Forks a child that runs the request. May be overridden.
  __attribute__((noinline, no_sanitize("null")))  // see detail/exception.hpp
  void
  process_request(Request& request, const Address& client_address) override {
    std::fflush(nullptr);  // or the child would write the parent's buffered output again
    const pid_t pid = ::fork();
    if (pid < 0) detail::throw_errno("fork");
    if (pid > 0) {
      active_children.insert(pid);
      // The connection stays counted until the child is reaped; the child logs it.
      if (auto record = detail::RequestAccess::take_record(request)) {
        this->tracker().hand_off(*record);
        records_[pid] = std::move(record);
      }
      this->close_request(request);
      return;
    }
    this->after_fork_in_child();
    // SIGTERM is how the drain ends a child, SIGINT how a terminal does. A handler the parent
    // installed for them (e.g. asio's, for ShutdownOnSignals) would only write to the parent's
    // event loop, which nothing runs here: the child takes the default actions back.
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    int status = 1;
    try {
      this->finish_request(request, client_address);
      status = 0;
    } catch (const abi::__forced_unwind&) {
      ::_exit(1);
    } catch (...) {
      detail::RequestAccess::note_current_exception(request);
      this->report_error(request, client_address);
    }
    try {
      this->shutdown_request(request);
    } catch (...) {
    }
    std::fflush(nullptr);
    ::_exit(status);
  }

  /// Closes the server socket, then reaps the children, waiting for them when block_on_close
  /// is set.
  void server_close() override {
    Server::server_close();
    if (block_on_close) this->drain();
    collect_children(block_on_close);
  }

 protected:
  // Reaps children until none is left or `deadline` passes.
  bool wait_for_connections(detail::Clock::time_point deadline) override {
    for (;;) {
      reap(false);  // not collect_children(): at max_children it would wait without a deadline
      if (active_children.empty()) return true;
      const auto now = detail::Clock::now();
      if (now >= deadline) return false;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
      wait_for_any_child(static_cast<int>(std::min<long long>(left, 1000)));
    }
  }

  // SIGTERM to every child still serving.
  std::size_t cut_connections() override {
    const std::size_t cut = Server::cut_connections();
    for (const pid_t pid : active_children) ::kill(pid, SIGTERM);
    return cut;
  }

 private:
  // Python's ForkingMixIn sets timeout = 300. A member initializer runs after whichever
  // constructor of Server was inherited.
  [[maybe_unused]] bool timeout_set_ = (this->timeout = Seconds(300), true);

  // Blocks until one of our own children exits (or `timeout_ms` passes, unless -1), then reaps
  // it. waitpid(-1) would be simpler but can reap a child the program forked for itself
  // (CPython's collect_children does); polling the children's pidfds waits for ours alone.
  void wait_for_any_child(int timeout_ms = -1) {
    std::vector<pid_t> pids;
    std::vector<pollfd> fds;
    std::vector<detail::FileDescriptor> owned;
    for (const pid_t pid : active_children) {
      const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      if (fd < 0) {
        // ESRCH: gone already. Otherwise no pidfds (Linux before 5.3): wait for this one.
        int status;
        if (errno != ESRCH) {
          while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
          }
        }
        records_.erase(pid);
        active_children.erase(pid);
        return;
      }
      owned.emplace_back(fd);
      pids.push_back(pid);
      fds.push_back({fd, POLLIN, 0});
    }
    while (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno != EINTR) detail::throw_errno("poll");
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      int status;
      if (::waitpid(pids[i], &status, WNOHANG) != 0) {
        records_.erase(pids[i]);
        active_children.erase(pids[i]);
      }
    }
  }

  // Reaps the children that have exited; with `blocking`, waits for all of them.
  void reap(bool blocking) {
    for (auto it = active_children.begin(); it != active_children.end();) {
      const pid_t pid = *it;
      int status = 0;
      pid_t got;
      do {
        got = ::waitpid(pid, &status, blocking ? 0 : WNOHANG);
      } while (got < 0 && errno == EINTR);
      // 0: still running. -1 (ECHILD): reaped by someone else, so gone all the same.
      if (got == 0) {
        ++it;
      } else {
        records_.erase(pid);
        it = active_children.erase(it);
      }
    }
  }

  std::map<pid_t, std::unique_ptr<detail::ConnectionRecord>> records_;  // the parent's count of each child's connection
};

}  // namespace socketserver

#endif  // SOCKETSERVER_FORKING_MIXIN_HPP
