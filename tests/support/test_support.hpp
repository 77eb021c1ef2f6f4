// Helpers shared by the tests: bounded waits, serving threads, blocking loopback clients with
// timeouts (so a broken server fails a test instead of hanging it), temporary socket paths,
// descriptor counts.
#ifndef SOCKETSERVER_TESTS_TEST_SUPPORT_HPP
#define SOCKETSERVER_TESTS_TEST_SUPPORT_HPP

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <socketserver/address.hpp>
#include <socketserver/base_server.hpp>
#include <socketserver/detail/file_descriptor.hpp>

namespace test {

using namespace std::chrono_literals;

// How long a client waits for the server before the test fails.
inline constexpr int io_timeout_seconds = 10;

// The longest a test waits for an event that should come at once.
inline constexpr std::chrono::seconds bound{5};

[[noreturn]] inline void fail(const char* what) { throw std::system_error(errno, std::system_category(), what); }

// Polls `done` every millisecond until it holds; false if it still does not after `bound`.
template <class Predicate>
bool eventually(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Whether `f` is ready within `bound`.
template <class T>
bool ready(std::future<T>& f) {
  return f.wait_for(bound) == std::future_status::ready;
}

// The error code a call throws as std::system_error, or an empty one; `what` gets its message.
template <class Call>
std::error_code error_of(Call call, std::string* what = nullptr) {
  try {
    call();
  } catch (const std::system_error& e) {
    if (what != nullptr) *what = e.what();
    return e.code();
  }
  return {};
}

// Runs server.serve_forever() on a thread. The destructor shuts it down, joins, then calls
// server_close(), as a program must before it destroys a server whose request threads may still
// be finishing: a destructor cannot wait for them without racing with their virtual calls.
class ServerThread {
 public:
  explicit ServerThread(socketserver::BaseServer& server, socketserver::Seconds poll_interval = 10ms)
      : server_(server), thread_([this, poll_interval] { server_.serve_forever(poll_interval); }) {}
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;
  ~ServerThread() {
    stop();
    server_.server_close();
  }

  // Calls shutdown() and joins; idempotent.
  void stop() {
    if (!thread_.joinable()) return;
    server_.shutdown();
    thread_.join();
  }
  // Joins without calling shutdown() (when a handler is expected to stop the loop).
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  socketserver::BaseServer& server_;
  std::thread thread_;
};

// serve_forever() on a thread, for tests where something other than shutdown() (a signal) ends
// it, or that time server_close() themselves: unlike ServerThread, it leaves server_close() to
// the test. The destructor calls shutdown() if serve_forever() still runs, and waits for it.
class Serving {
 public:
  explicit Serving(socketserver::BaseServer& server)
      : server_(server), done_(std::async(std::launch::async, [this] {
          thread_id_ = std::this_thread::get_id();
          server_.serve_forever(10ms);
        })) {}
  Serving(const Serving&) = delete;
  Serving& operator=(const Serving&) = delete;
  ~Serving() {
    if (!done_.valid()) return;  // returns_within() has seen it return
    if (done_.wait_for(0s) != std::future_status::ready) server_.shutdown();
    done_.wait();
  }
  // Whether serve_forever() returned (without an exception) within `limit`.
  bool returns_within(std::chrono::milliseconds limit) {
    if (done_.wait_for(limit) != std::future_status::ready) return false;
    done_.get();
    return true;
  }
  // The serving thread; valid once returns_within() has returned true.
  std::thread::id thread_id() const { return thread_id_; }

 private:
  socketserver::BaseServer& server_;
  std::thread::id thread_id_;
  std::future<void> done_;
};

// A server on 127.0.0.1, port 0 (an async one with one event loop), served by a ServerThread
// for as long as it lives.
template <class Server>
struct Served {
  Served() : server({"127.0.0.1", 0}) {
    if constexpr (requires { server.threads; }) server.threads = 1;
    serving.emplace(server);
  }
  Server server;
  std::optional<ServerThread> serving;
};

// A blocking socket with receive and send timeouts.
class Client {
 public:
  // Connects a stream socket to `address` (IP or Unix).
  static Client connect(const socketserver::Address& address) {
    Client client(family_of(address), SOCK_STREAM);
    client.connect_to(address);
    return client;
  }
  // A datagram socket connected to `address`; for Unix, bound to `own_path` so replies can come back.
  static Client datagram(const socketserver::Address& address, const std::string& own_path = {}) {
    Client client(family_of(address), SOCK_DGRAM);
    if (!own_path.empty()) client.bind_to(socketserver::Address::from_path(own_path));
    client.connect_to(address);
    return client;
  }
  // An IPv4 stream socket that connect_to() connects later, bound to `source_host` (port 0) when
  // given: for a test that makes its sockets before it runs out of descriptors, or that chooses
  // the address it connects from.
  static Client unconnected(const char* source_host = nullptr) {
    Client client(AF_INET, SOCK_STREAM);
    if (source_host != nullptr) client.bind_to({source_host, 0});
    return client;
  }

  void connect_to(const socketserver::Address& address) {
    sockaddr_storage storage{};
    const socklen_t length = to_sockaddr(address, storage);
    if (::connect(fd(), reinterpret_cast<sockaddr*>(&storage), length) < 0) fail("connect");
  }

  int fd() const { return fd_.get(); }

  void send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) fail("send");
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  // One recv(); empty at end of stream. Throws on timeout.
  std::string recv(std::size_t n = 65536) {
    std::string buf(n, '\0');
    const ssize_t got = ::recv(fd(), buf.data(), buf.size(), 0);
    if (got < 0) fail("recv");
    buf.resize(static_cast<std::size_t>(got));
    return buf;
  }
  // Reads until "\n" (included) or end of stream.
  std::string recv_line() {
    std::string line;
    char c;
    for (;;) {
      const ssize_t got = ::recv(fd(), &c, 1, 0);
      if (got < 0) fail("recv");
      if (got == 0) return line;
      line += c;
      if (c == '\n') return line;
    }
  }
  // Reads until the peer closes.
  std::string recv_all() {
    std::string all;
    for (std::string part = recv(); !part.empty(); part = recv()) all += part;
    return all;
  }
  void shutdown_write() { ::shutdown(fd(), SHUT_WR); }
  void close() { fd_.reset(); }

 private:
  // A socket with the timeouts, not bound or connected yet.
  Client(int family, int type) {
    fd_.reset(::socket(family, type | SOCK_CLOEXEC, 0));
    if (!fd_) fail("socket");
    const timeval tv{io_timeout_seconds, 0};
    ::setsockopt(fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  void bind_to(const socketserver::Address& own) {
    sockaddr_storage storage{};
    const socklen_t length = to_sockaddr(own, storage);
    if (::bind(fd(), reinterpret_cast<sockaddr*>(&storage), length) < 0) fail("bind");
  }

  static int family_of(const socketserver::Address& address) {
    if (address.is_unix()) return AF_UNIX;
    return address.host().find(':') != std::string::npos ? AF_INET6 : AF_INET;
  }

  // Fills `storage` with `address`; returns its length.
  static socklen_t to_sockaddr(const socketserver::Address& address, sockaddr_storage& storage) {
    switch (family_of(address)) {
      case AF_UNIX: {
        auto* un = reinterpret_cast<sockaddr_un*>(&storage);
        un->sun_family = AF_UNIX;
        std::strncpy(un->sun_path, address.path().c_str(), sizeof un->sun_path - 1);
        return sizeof(sockaddr_un);
      }
      case AF_INET6: {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(address.port());
        if (::inet_pton(AF_INET6, address.host().c_str(), &in6->sin6_addr) != 1) fail("inet_pton");
        return sizeof(sockaddr_in6);
      }
      default: {
        auto* in = reinterpret_cast<sockaddr_in*>(&storage);
        in->sin_family = AF_INET;
        in->sin_port = htons(address.port());
        if (::inet_pton(AF_INET, address.host().c_str(), &in->sin_addr) != 1) fail("inet_pton");
        return sizeof(sockaddr_in);
      }
    }
  }

  socketserver::detail::FileDescriptor fd_;
};

// Reads exactly `n` bytes from anything with recv(n), a Client or a ByteStream: fewer only at
// end of stream.
template <class Stream>
std::string recv_exact(Stream& stream, std::size_t n) {
  std::string got;
  while (got.size() < n) {
    const std::string part = stream.recv(n - got.size());
    if (part.empty()) break;
    got += part;
  }
  return got;
}

// A fresh directory for socket files, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/socketserver-test-XXXXXX";
    if (::mkdtemp(name) == nullptr) fail("mkdtemp");
    path_ = name;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (DIR* dir = ::opendir(path_.c_str())) {
      while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..") ::unlink((path_ + "/" + name).c_str());
      }
      ::closedir(dir);
    }
    ::rmdir(path_.c_str());
  }
  std::string path(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// The number of descriptors this process has open.
// Raises the soft limit on open descriptors to at least `needed`, as far as the hard limit
// allows; true when it is there.
inline bool raise_open_file_limit(rlim_t needed) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur >= needed) return true;
  limit.rlim_cur = std::min(needed, limit.rlim_max);
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur >= needed;
}

inline int count_open_fds() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) fail("opendir");
  while (const dirent* entry = ::readdir(dir)) count += entry->d_name[0] != '.';
  ::closedir(dir);
  return count - 1;  // the directory stream itself
}

// Sends what the process writes to stderr into a temporary file until finish() returns it.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    saved_ = ::dup(2);
    char name[] = "/tmp/socketserver-stderr-XXXXXX";
    file_ = ::mkstemp(name);
    if (saved_ < 0 || file_ < 0) fail("mkstemp");
    ::unlink(name);
    ::dup2(file_, 2);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  ~StderrCapture() {
    restore();
    if (file_ >= 0) ::close(file_);
  }
  std::string finish() {
    restore();
    std::string text;
    char buf[4096];
    ssize_t n;
    ::lseek(file_, 0, SEEK_SET);
    while ((n = ::read(file_, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    return text;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  int saved_ = -1;
  int file_ = -1;
};

// Consecutive little-endian 32-bit counters: a lost, repeated or reordered byte shows.
inline std::string counting_bytes(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    data[i] = static_cast<char>(static_cast<std::uint32_t>(i / 4) >> (8 * (i % 4)));
  return data;
}

// A signal handler that counts; a lock-free atomic is async-signal-safe.
inline std::atomic<int> signals_caught{0};
inline void count_signal(int) { ++signals_caught; }

// Sets a signal's action for one scope, without SA_RESTART (so a blocked call sees EINTR), and
// puts the old one back. With SIG_DFL for SIGPIPE, a write that raised it would end the test
// program instead of passing unnoticed.
class ScopedSignal {
 public:
  ScopedSignal(int signo, void (*handler)(int)) : signo_(signo) {
    struct sigaction action {};
    action.sa_handler = handler;
    ::sigemptyset(&action.sa_mask);
    if (::sigaction(signo, &action, &saved_) < 0) fail("sigaction");
  }
  ScopedSignal(const ScopedSignal&) = delete;
  ScopedSignal& operator=(const ScopedSignal&) = delete;
  ~ScopedSignal() { ::sigaction(signo_, &saved_, nullptr); }

 private:
  int signo_;
  struct sigaction saved_ {};
};

// The local name of an IP socket as an Address (Python's sock.getsockname()).
inline socketserver::Address socket_name(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) fail("getsockname");
  char host[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return {host, ntohs(in6->sin6_port)};
  }
  const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
  ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
  return {host, ntohs(in->sin_port)};
}

// Whether `fd` is an open descriptor.
inline bool fd_is_open(int fd) { return fd >= 0 && ::fcntl(fd, F_GETFD) != -1; }

}  // namespace test

#endif  // SOCKETSERVER_TESTS_TEST_SUPPORT_HPP
