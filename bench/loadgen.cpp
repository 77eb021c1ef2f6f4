// loadgen: a single-threaded epoll load generator for the upper-case line protocol, in plain TCP
// or TLS (OpenSSL). Every line sent must come back upper-cased, byte for byte; anything else is
// counted as an error. Prints one JSON line with the results on stdout.
//
//   loadgen --port P --workload pingpong|pipelined|bulk|churn|idle|handshake [--connections N]
//           [--depth D] [--size BYTES] [--duration S] [--warmup S] [--timeout S] [--sync]
//           [--tls] [--tls-resume] [--tls-version 1.2|1.3]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace {

using Clock = std::chrono::steady_clock;

enum class Workload { pingpong, pipelined, bulk, churn, idle, handshake };

struct Config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  Workload workload = Workload::pingpong;
  std::string workload_name = "pingpong";
  int connections = -1;  // -1: the workload's default
  int depth = -1;
  long size = -1;
  double duration = 2.0;
  double warmup = 0.5;
  double timeout = 10.0;
  double deadline = -1;      // -1: computed from the others
  int connect_parallel = 4;  // Python's default listen backlog is 5
  int source_addresses = 16;
  bool sync = false;
  bool proxy_v1 = false;  // each connection's first bytes are a PROXY protocol v1 header
  bool tls = false;       // TLS over each connection (the server's certificate is not checked)
  bool tls_resume = false;
  int tls_version = 0;  // 0: the best both sides have
};

[[noreturn]] void usage(int status) {
  std::FILE* out = status == 0 ? stdout : stderr;
  std::fputs(
      "usage: loadgen --port P [--host H] --workload pingpong|pipelined|bulk|churn|idle\n"
      "               [--connections N] [--depth D] [--size BYTES] [--duration S] [--warmup S]\n"
      "               [--timeout S] [--deadline S] [--connect-parallel N]\n"
      "               [--source-addresses N] [--proxy-v1] [--sync] [--tls] [--tls-resume]\n"
      "               [--tls-version 1.2|1.3]\n\n"
      "Sends lowercase lines and checks that each comes back upper-cased; prints one JSON line.\n"
      "Defaults: pingpong 64 connections, depth 1, 64-byte lines; pipelined 64 x depth 16;\n"
      "bulk 8 connections of 16384-byte lines; churn 16 clients in flight, each connect, one\n"
      "line, close; idle 5000 connections, one line each, then held until stdin reaches EOF;\n"
      "handshake (--tls) 16 clients in flight, each connect, TLS handshake, close.\n\n"
      "  --duration S        measured seconds (default 2), after --warmup S (default 0.5)\n"
      "  --timeout S         a reply not complete after S seconds is an error (default 10)\n"
      "  --deadline S        give up after S seconds in all (default: computed)\n"
      "  --connect-parallel  connections set up at once (default 4)\n"
      "  --source-addresses  churn to a 127.x address: connect from 127.0.0.1 .. 127.0.0.N (default 16)\n"
      "  --proxy-v1          open each connection with a PROXY protocol v1 header, in the same packet as\n"
      "                      its first request (a server that trusts 127.0.0.0/8 as a proxy)\n"
      "  --tls               TLS on every connection; --tls-resume resumes the first session\n"
      "                      (a ticket) on every later connection; --tls-version caps the version\n"
      "  --sync              print {\"ready\": N} once connected, start on a line from stdin,\n"
      "                      and after the result line, hold the connections until stdin EOF\n",
      out);
  std::exit(status);
}

template <typename T>
T parse_number(std::string_view option, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    fmt::print(stderr, "loadgen: invalid value '{}' for {}\n", text, option);
    usage(2);
  }
  return value;
}

Config parse(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(0);
    if (arg == "--proxy-v1") {
      c.proxy_v1 = true;
      continue;
    }
    if (arg == "--sync") {
      c.sync = true;
      continue;
    }
    if (arg == "--tls" || arg == "--tls-resume") {
      c.tls = true;
      c.tls_resume = c.tls_resume || arg == "--tls-resume";
      continue;
    }
    if (i + 1 >= argc) {
      fmt::print(stderr, "loadgen: unknown or incomplete option '{}'\n", arg);
      usage(2);
    }
    const std::string_view value = argv[++i];
    if (arg == "--host") {
      c.host = value;
    } else if (arg == "--port") {
      c.port = parse_number<std::uint16_t>(arg, value);
    } else if (arg == "--workload") {
      c.workload_name = value;
      if (value == "pingpong") {
        c.workload = Workload::pingpong;
      } else if (value == "pipelined") {
        c.workload = Workload::pipelined;
      } else if (value == "bulk") {
        c.workload = Workload::bulk;
      } else if (value == "churn") {
        c.workload = Workload::churn;
      } else if (value == "idle") {
        c.workload = Workload::idle;
      } else if (value == "handshake") {
        c.workload = Workload::handshake;
      } else {
        fmt::print(stderr, "loadgen: unknown workload '{}'\n", value);
        usage(2);
      }
    } else if (arg == "--connections") {
      c.connections = parse_number<int>(arg, value);
    } else if (arg == "--depth") {
      c.depth = parse_number<int>(arg, value);
    } else if (arg == "--size") {
      c.size = parse_number<long>(arg, value);
    } else if (arg == "--duration") {
      c.duration = parse_number<double>(arg, value);
    } else if (arg == "--warmup") {
      c.warmup = parse_number<double>(arg, value);
    } else if (arg == "--timeout") {
      c.timeout = parse_number<double>(arg, value);
    } else if (arg == "--deadline") {
      c.deadline = parse_number<double>(arg, value);
    } else if (arg == "--source-addresses") {
      c.source_addresses = parse_number<int>(arg, value);
    } else if (arg == "--tls-version") {
      c.tls_version = value == "1.2" ? TLS1_2_VERSION : value == "1.3" ? TLS1_3_VERSION : -1;
      if (c.tls_version < 0) usage(2);
    } else if (arg == "--connect-parallel") {
      c.connect_parallel = parse_number<int>(arg, value);
    } else {
      fmt::print(stderr, "loadgen: unknown option '{}'\n", arg);
      usage(2);
    }
  }
  if (c.port == 0) {
    fmt::print(stderr, "loadgen: --port is required\n");
    usage(2);
  }
  struct Defaults {
    int connections, depth;
    long size;
  };
  constexpr std::array<Defaults, 6> defaults{
      {{64, 1, 64}, {64, 16, 64}, {8, 1, 16384}, {16, 1, 64}, {5000, 1, 64}, {16, 1, 64}}};
  const auto& d = defaults[static_cast<std::size_t>(c.workload)];
  if (c.connections < 0) c.connections = d.connections;
  if (c.depth < 0) c.depth = d.depth;
  if (c.size < 0) c.size = d.size;
  if (c.connections < 1 || c.depth < 1 || c.size < 2 || c.connect_parallel < 1 || c.source_addresses < 1 ||
      c.duration <= 0 || c.warmup < 0 || c.timeout <= 0) {
    fmt::print(stderr, "loadgen: connections, depth and connect-parallel must be >= 1, size >= 2, duration > 0\n");
    usage(2);
  }
  if (c.workload == Workload::handshake && !c.tls) {
    fmt::print(stderr, "loadgen: the handshake workload needs --tls\n");
    usage(2);
  }
  if (c.deadline < 0) {
    // Room to connect everything (thread-per-connection servers start a thread for each), then
    // the run, then the drain of replies still in flight.
    const double setup = c.timeout + 0.005 * c.connections;
    c.deadline = c.workload == Workload::idle ? setup + 3600 : setup + c.warmup + c.duration + 2 * c.timeout;
  }
  return c;
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(ch));
    } else {
      out += ch;
    }
  }
  return out;
}

// User plus system CPU seconds of this process: how busy the load generator itself was.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec);
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

enum class State { closed, connecting, handshaking, ticket, idle, busy, held };

struct Conn {
  int fd = -1;
  State state = State::closed;
  std::string out;  // the request batch
  std::size_t sent = 0;
  std::string expect;  // its reply
  std::size_t got = 0;
  int done_in_batch = 0;  // replies complete so far in this batch
  Clock::time_point started;
  std::uint64_t seq = 0;  // messages sent on this slot, to vary the letters
  bool want_out = false;  // EPOLLOUT registered
  bool proxied = false;   // the PROXY header has gone out on this connection
  SSL* ssl = nullptr;     // with --tls
};

class LoadGen {
 public:
  explicit LoadGen(Config config) : cfg_(std::move(config)), conns_(static_cast<std::size_t>(cfg_.connections)) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) fatal("epoll_create1");
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(cfg_.port);
    if (inet_pton(AF_INET, cfg_.host.c_str(), &addr_.sin_addr) != 1) {
      fmt::print(stderr, "loadgen: --host must be an IPv4 address, got '{}'\n", cfg_.host);
      std::exit(2);
    }
    spread_sources_ = (cfg_.workload == Workload::churn || cfg_.workload == Workload::handshake) &&
                      cfg_.source_addresses > 1 && (ntohl(addr_.sin_addr.s_addr) >> 24) == 127;
    // 26 request variants, each line starting at a different letter, and their replies.
    const auto size = static_cast<std::size_t>(cfg_.size);
    for (std::size_t v = 0; v < 26; ++v) {
      std::string request(size, '\n');
      std::string reply(size, '\n');
      for (std::size_t j = 0; j + 1 < size; ++j) {
        request[j] = static_cast<char>('a' + (v + j) % 26);
        reply[j] = static_cast<char>('A' + (v + j) % 26);
      }
      requests_.push_back(std::move(request));
      replies_.push_back(std::move(reply));
    }
    latencies_.reserve(1 << 20);
    if (cfg_.tls) {
      tls_ = SSL_CTX_new(TLS_client_method());
      if (tls_ == nullptr) fatal("SSL_CTX_new");
      SSL_CTX_set_verify(tls_, SSL_VERIFY_NONE, nullptr);  // a benchmark of the server, not of trust
      if (cfg_.tls_version != 0) SSL_CTX_set_max_proto_version(tls_, cfg_.tls_version);
      SSL_CTX_set_session_cache_mode(tls_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    }
  }

  int run();

 private:
  [[noreturn]] static void fatal(const char* what) {
    fmt::print(stderr, "loadgen: {}: {}\n", what, std::strerror(errno));
    std::exit(1);
  }

  double since(Clock::time_point t, Clock::time_point now) const {
    return std::chrono::duration<double>(now - t).count();
  }

  void error(std::string what) {
    ++errors_;
    if (error_samples_.size() < 5) error_samples_.push_back(std::move(what));
  }

  void set_events(Conn& c, std::size_t index, bool want_out) {
    if (c.want_out == want_out) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
    ev.data.u64 = index;
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev) != 0) fatal("epoll_ctl");
    c.want_out = want_out;
  }

  void close_conn(Conn& c) {
    if (c.ssl != nullptr) {
      // close_notify, without waiting; a connection freed without one loses its session for resumption
      if (c.state == State::idle || c.state == State::held || c.state == State::ticket) SSL_shutdown(c.ssl);
      SSL_free(c.ssl);
      c.ssl = nullptr;
    }
    if (c.fd >= 0) {
      ::close(c.fd);  // also leaves the epoll set
      c.fd = -1;
    }
    if (c.state == State::connecting || c.state == State::handshaking || c.state == State::ticket) --connecting_;
    if (c.state == State::held) --held_;
    if (c.state == State::busy) --busy_;
    c.state = State::closed;
    c.want_out = false;
  }

  // Opens slot `index`; the batch starts once connected. False when the socket could not be made.
  bool open_conn(std::size_t index) {
    Conn& c = conns_[index];
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      error(fmt::format("socket: {}", std::strerror(errno)));
      return false;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (spread_sources_) {
      // Churn leaves a TIME_WAIT socket per connection, tens of thousands a minute; spread over
      // several loopback source addresses, connect() finds a free port without a long search.
      // IP_BIND_ADDRESS_NO_PORT lets connect() pick the port for the whole address pair.
      setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in source{};
      source.sin_family = AF_INET;
      source.sin_addr.s_addr = htonl(0x7f000001u + static_cast<std::uint32_t>(opened_ % cfg_.source_addresses));
      if (bind(c.fd, reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0) {
        error(fmt::format("bind: {}", std::strerror(errno)));
        ::close(c.fd);
        c.fd = -1;
        return false;
      }
    }
    c.started = Clock::now();
    c.state = State::connecting;
    c.proxied = false;
    ++connecting_;
    ++opened_;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = index;
    c.want_out = true;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) != 0) fatal("epoll_ctl");
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0 && errno != EINPROGRESS) {
      error(fmt::format("connect: {}", std::strerror(errno)));
      close_conn(c);
      return false;
    }
    return true;  // EPOLLOUT reports completion, even when connect() finished at once
  }

  void on_connected(std::size_t index) {
    Conn& c = conns_[index];
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      error(fmt::format("connect: {}", std::strerror(err)));
      close_conn(c);
      return;
    }
    if (cfg_.tls) {
      c.ssl = SSL_new(tls_);
      SSL_set_fd(c.ssl, c.fd);
      SSL_set_connect_state(c.ssl);
      if (session_ != nullptr) SSL_set_session(c.ssl, session_);
      c.state = State::handshaking;
      handshake(index, Clock::now());
      return;
    }
    --connecting_;
    c.state = State::idle;
    set_events(c, index, false);
    // One exchange right away: for churn that is the whole connection; for the others it proves
    // the server accepted it (a full listen backlog leaves a connect "done" that nobody serves
    // until the kernel retries the handshake) before anything is measured.
    start_batch(index);
  }

  // Goes on with a connection's TLS handshake; then its first batch (the handshake workload:
  // counts it and closes, churn style).
  void handshake(std::size_t index, Clock::time_point now) {
    Conn& c = conns_[index];
    const int r = SSL_do_handshake(c.ssl);
    if (r != 1) {
      const int e = SSL_get_error(c.ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        set_events(c, index, e == SSL_ERROR_WANT_WRITE);
        return;
      }
      char text[256] = "the connection closed";
      if (const unsigned long code = ERR_get_error()) ERR_error_string_n(code, text, sizeof text);
      ERR_clear_error();
      error(fmt::format("TLS handshake: {}", text));
      close_conn(c);
      return;
    }
    if (SSL_session_reused(c.ssl) == 1) ++resumed_;
    // The handshake workload counts the handshake and closes; with --tls-resume the first
    // connection first waits for a session it can resume (TLS 1.3 sends its ticket after the
    // handshake), without a request, so that servers that do not echo (s_server) can be measured.
    if (cfg_.workload == Workload::handshake && cfg_.tls_resume && session_ == nullptr) {
      c.state = State::ticket;  // still counted in connecting_
      set_events(c, index, false);
      await_ticket(index);
      return;
    }
    --connecting_;
    c.state = State::idle;
    set_events(c, index, false);
    if (cfg_.workload == Workload::handshake) {
      const bool running = phase_ == Phase::run || phase_ == Phase::drain;
      if (running) ++total_messages_;
      if (now >= measure_start_ && now < measure_end_ && phase_ == Phase::run) {
        ++messages_;
        const auto us =
            std::max<long long>(0, std::chrono::duration_cast<std::chrono::microseconds>(now - c.started).count());
        latencies_.push_back(static_cast<std::uint32_t>(std::min<long long>(us, UINT32_MAX)));
      }
      close_conn(c);
      if (phase_ == Phase::run && now < measure_end_) open_conn(index);
      return;
    }
    start_batch(index);
  }

  // --tls-resume's first connection: reads until its session can be resumed, keeps it, closes.
  void await_ticket(std::size_t index) {
    Conn& c = conns_[index];
    char byte = 0;
    for (;;) {
      if (SSL_SESSION_is_resumable(SSL_get0_session(c.ssl)) == 1) break;
      const int n = SSL_read(c.ssl, &byte, 1);  // takes in what came: the ticket
      if (n > 0) {
        error("the server sent bytes nobody asked for");
        close_conn(c);
        return;
      }
      const int e = SSL_get_error(c.ssl, n);
      if (e == SSL_ERROR_WANT_READ) {
        if (SSL_SESSION_is_resumable(SSL_get0_session(c.ssl)) == 1) break;
        return;  // the next EPOLLIN
      }
      ERR_clear_error();
      error("no session to resume before the connection ended");
      close_conn(c);
      return;
    }
    session_ = SSL_get1_session(c.ssl);
    close_conn(c);
    if (phase_ == Phase::run) open_conn(index);
  }

  void start_batch(std::size_t index) {
    Conn& c = conns_[index];
    const auto size = static_cast<std::size_t>(cfg_.size);
    const auto depth = static_cast<std::size_t>(cfg_.depth);
    c.out.resize(size * depth);
    c.expect.resize(size * depth);
    for (std::size_t k = 0; k < depth; ++k) {
      const std::size_t v = (index * 7 + c.seq++) % 26;
      std::memcpy(c.out.data() + k * size, requests_[v].data(), size);
      std::memcpy(c.expect.data() + k * size, replies_[v].data(), size);
    }
    if (cfg_.proxy_v1 && !c.proxied) {
      // A made-up client per connection, sent with the first request, as a proxy does.
      const std::string header = fmt::format("PROXY TCP4 192.0.2.{} {} {} {}\r\n", 1 + index % 250, cfg_.host,
                                             1024 + index % 60000, cfg_.port);
      c.out.insert(c.out.begin(), header.begin(), header.end());
      c.proxied = true;
    }
    c.sent = 0;
    c.got = 0;
    c.done_in_batch = 0;
    if (cfg_.workload != Workload::churn) c.started = Clock::now();  // churn times from connect
    c.state = State::busy;
    ++busy_;
    send_more(index);
  }

  void send_more(std::size_t index) {
    Conn& c = conns_[index];
    if (c.ssl != nullptr) {
      tls_send_more(index);
      return;
    }
    while (c.sent < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        set_events(c, index, true);
        return;
      }
      error(fmt::format("send: {}", std::strerror(errno)));
      close_conn(c);
      return;
    }
    set_events(c, index, false);
  }

  void tls_send_more(std::size_t index) {
    Conn& c = conns_[index];
    while (c.sent < c.out.size()) {
      const int n = SSL_write(c.ssl, c.out.data() + c.sent, static_cast<int>(c.out.size() - c.sent));
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      const int e = SSL_get_error(c.ssl, n);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        set_events(c, index, true);
        return;
      }
      ERR_clear_error();
      error("TLS write failed");
      close_conn(c);
      return;
    }
    set_events(c, index, false);
  }

  // What a TLS connection has decrypted, until OpenSSL wants more from the socket.
  void tls_receive(std::size_t index, Clock::time_point now) {
    Conn& c = conns_[index];
    for (;;) {
      const int n = SSL_read(c.ssl, buffer_.data(), static_cast<int>(buffer_.size()));
      if (n <= 0) {
        const int e = SSL_get_error(c.ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        ERR_clear_error();
        got_bytes(index, 0, now);
        return;
      }
      got_bytes(index, static_cast<std::size_t>(n), now);
      if (c.fd < 0 || c.ssl == nullptr) return;
    }
  }

  void receive(std::size_t index, Clock::time_point now) {
    Conn& c = conns_[index];
    if (c.ssl != nullptr) {
      tls_receive(index, now);
      return;
    }
    const ssize_t n = ::recv(c.fd, buffer_.data(), buffer_.size(), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      error(fmt::format("recv: {}", std::strerror(errno)));
      close_conn(c);
      return;
    }
    got_bytes(index, static_cast<std::size_t>(n), now);
  }

  // `got` bytes of reply in buffer_ (0: the server closed).
  void got_bytes(std::size_t index, std::size_t got, Clock::time_point now) {
    Conn& c = conns_[index];
    if (got == 0) {
      error(c.state == State::busy ? "connection closed by the server before the reply was complete"
                                   : "connection closed by the server while idle");
      close_conn(c);
      return;
    }
    if (c.state != State::busy || c.got + got > c.expect.size()) {
      error("the server sent bytes nobody asked for");
      close_conn(c);
      return;
    }
    if (std::memcmp(buffer_.data(), c.expect.data() + c.got, got) != 0) {
      const std::string_view want(c.expect.data() + c.got, std::min<std::size_t>(got, 16));
      const std::string_view have(buffer_.data(), std::min<std::size_t>(got, 16));
      error(fmt::format("wrong reply: expected '{}...', got '{}...'", want, have));
      close_conn(c);
      return;
    }
    c.got += got;
    const auto size = static_cast<std::size_t>(cfg_.size);
    const bool measuring = now >= measure_start_ && now < measure_end_ && phase_ == Phase::run;
    const bool running = phase_ == Phase::run || phase_ == Phase::drain;
    while (static_cast<std::size_t>(c.done_in_batch + 1) * size <= c.got) {
      ++c.done_in_batch;
      if (running) ++total_messages_;
      if (measuring) {
        ++messages_;
        const auto us =
            std::max<long long>(0, std::chrono::duration_cast<std::chrono::microseconds>(now - c.started).count());
        latencies_.push_back(static_cast<std::uint32_t>(std::min<long long>(us, UINT32_MAX)));
      }
    }
    if (c.got == c.expect.size()) batch_done(index, now);
  }

  void batch_done(std::size_t index, Clock::time_point now) {
    Conn& c = conns_[index];
    --busy_;
    c.state = State::idle;
    switch (cfg_.workload) {
      case Workload::idle:
        c.state = State::held;
        ++held_;
        break;
      case Workload::churn:
      case Workload::handshake:
        close_conn(c);
        if (phase_ == Phase::run && now < measure_end_) open_conn(index);
        break;
      default:
        if (phase_ == Phase::run && now < measure_end_) start_batch(index);
        break;
    }
  }

  void check_timeouts(Clock::time_point now) {
    for (auto& c : conns_) {
      if ((c.state == State::busy || c.state == State::connecting || c.state == State::handshaking) &&
          since(c.started, now) > cfg_.timeout) {
        error(fmt::format("no {} within {} s", c.state == State::busy ? "complete reply" : "connection", cfg_.timeout));
        close_conn(c);
      }
    }
  }

  // Waits up to `ms` milliseconds for events and handles them.
  void poll(int ms);

  // Reads stdin; true once it reached EOF (or a line arrived, when `line` is set).
  bool stdin_event(bool line);

  void print_result(Clock::time_point traffic_start, Clock::time_point end);

  enum class Phase { setup, waiting, run, drain, hold };

  Config cfg_;
  std::vector<Conn> conns_;
  std::vector<std::string> requests_, replies_;
  std::array<char, 256 * 1024> buffer_{};
  int epoll_ = -1;
  sockaddr_in addr_{};
  bool spread_sources_ = false;
  Phase phase_ = Phase::setup;
  Clock::time_point measure_start_ = Clock::time_point::max();
  Clock::time_point measure_end_ = Clock::time_point::max();
  int connecting_ = 0, busy_ = 0, held_ = 0;
  std::uint64_t opened_ = 0, messages_ = 0, total_messages_ = 0, errors_ = 0;
  std::vector<std::string> error_samples_;
  std::vector<std::uint32_t> latencies_;
  SSL_CTX* tls_ = nullptr;
  SSL_SESSION* session_ = nullptr;  // --tls-resume: the first session, resumed by the rest
  std::uint64_t resumed_ = 0;
  bool stdin_eof_ = false, stdin_line_ = false;
  double cpu_at_start_ = -1, cpu_at_end_ = -1;  // this process's CPU time at the window's ends
  std::string stdin_buf_;
};

constexpr std::uint64_t stdin_token = ~std::uint64_t{0};

bool LoadGen::stdin_event(bool line) {
  char buf[4096];
  const ssize_t n = ::read(0, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
  if (n <= 0) {
    stdin_eof_ = true;
    epoll_ctl(epoll_, EPOLL_CTL_DEL, 0, nullptr);
    return true;
  }
  if (std::memchr(buf, '\n', static_cast<std::size_t>(n)) != nullptr) stdin_line_ = true;
  return line && stdin_line_;
}

void LoadGen::poll(int ms) {
  std::array<epoll_event, 512> events{};
  const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), ms);
  if (n < 0) {
    if (errno == EINTR) return;
    fatal("epoll_wait");
  }
  const auto now = Clock::now();
  for (int i = 0; i < n; ++i) {
    const auto& ev = events[static_cast<std::size_t>(i)];
    if (ev.data.u64 == stdin_token) {
      stdin_event(true);
      continue;
    }
    const auto index = static_cast<std::size_t>(ev.data.u64);
    Conn& c = conns_[index];
    if (c.fd < 0) continue;  // closed earlier in this batch of events
    if (c.state == State::connecting) {
      if (ev.events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(index);
      continue;
    }
    if (c.state == State::handshaking) {
      handshake(index, now);
      continue;
    }
    if (c.state == State::ticket) {
      await_ticket(index);
      continue;
    }
    if (ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(index, now);
    if (c.fd >= 0 && c.state == State::busy && (ev.events & EPOLLOUT)) send_more(index);
  }
}

void LoadGen::print_result(Clock::time_point traffic_start, Clock::time_point end) {
  double seconds = 0;
  if (cfg_.workload == Workload::idle) {
    seconds = since(traffic_start, end);
  } else if (measure_start_ != Clock::time_point::max()) {
    seconds = std::max(0.0, since(measure_start_, std::min(end, measure_end_)));  // 0 when it never started
  }
  const auto pct = [this](double p) -> std::uint32_t {
    if (latencies_.empty()) return 0;
    const auto k =
        std::min(latencies_.size() - 1, static_cast<std::size_t>(p * static_cast<double>(latencies_.size())));
    std::nth_element(latencies_.begin(), latencies_.begin() + static_cast<std::ptrdiff_t>(k), latencies_.end());
    return latencies_[k];
  };
  const std::uint32_t p50 = pct(0.50), p99 = pct(0.99), p999 = pct(0.999);
  const std::uint32_t max = latencies_.empty() ? 0 : *std::max_element(latencies_.begin(), latencies_.end());
  const double rate = seconds > 0 ? static_cast<double>(messages_) / seconds : 0.0;
  const double mb = rate * 2.0 * static_cast<double>(cfg_.size) / 1e6;
  // Near 1: the load generator, not the server, may have set the pace.
  const double client_cpu = seconds > 0 && cpu_at_end_ >= 0 ? (cpu_at_end_ - cpu_at_start_) / seconds : 0.0;
  std::string samples;
  for (const auto& s : error_samples_) samples += fmt::format("{}\"{}\"", samples.empty() ? "" : ", ", json_escape(s));
  fmt::print(
      "{{\"workload\": \"{}\", \"connections\": {}, \"depth\": {}, \"size\": {}, \"seconds\": {:.3f}, "
      "\"messages\": {}, \"total_messages\": {}, \"connections_opened\": {}, \"msgs_per_s\": {:.1f}, "
      "\"mb_per_s\": {:.2f}, \"client_cpu\": {:.2f}, \"p50_us\": {}, \"p99_us\": {}, \"p999_us\": {}, "
      "\"max_us\": {}, \"held\": {}, \"tls\": {}, \"tls_resumed\": {}, "
      "\"errors\": {}, \"error_samples\": [{}]}}\n",
      cfg_.workload_name, cfg_.connections, cfg_.depth, cfg_.size, seconds, messages_, total_messages_, opened_, rate,
      mb, client_cpu, p50, p99, p999, max, held_, cfg_.tls, resumed_, errors_, samples);
  std::fflush(stdout);
}

int LoadGen::run() {
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg_.deadline));
  const auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const bool is_idle = cfg_.workload == Workload::idle;
  const bool is_churn = cfg_.workload == Workload::churn || cfg_.workload == Workload::handshake;
  const auto n = conns_.size();
  const bool wants_stdin = is_idle || cfg_.sync;
  if (wants_stdin) {
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = stdin_token;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, 0, &ev) != 0) stdin_eof_ = true;  // a file or /dev/null: at its end at once
  }
  auto traffic_start = t0;
  bool timed_out = false;
  const auto past_deadline = [&] {
    if (Clock::now() < deadline) return false;
    error(fmt::format("overall deadline of {} s reached", cfg_.deadline));
    timed_out = true;
    return true;
  };

  // Setup: connect every slot, a few at a time. Churn skips this; its slots connect as they run.
  // Idle exchanges its one line per connection here, and that exchange is what it measures.
  if (is_idle) {
    phase_ = Phase::run;
    measure_start_ = t0;
  }
  if (!is_churn) {
    std::size_t next = 0;
    auto ready = [&] {
      if (is_idle) return held_ == static_cast<int>(n);
      return next == n && connecting_ == 0 && busy_ == 0;
    };
    while (!ready()) {
      while (next < n && connecting_ + busy_ < cfg_.connect_parallel) open_conn(next++);
      if (next == n && connecting_ == 0 && busy_ == 0) break;  // some failed: go on with the rest
      if (past_deadline()) break;
      poll(100);
      check_timeouts(Clock::now());
    }
  }
  if (is_idle) {
    fmt::print("{{\"ready\": {}}}\n", held_);
    std::fflush(stdout);
    phase_ = Phase::hold;
    while (!stdin_eof_ && !timed_out && !past_deadline()) {
      poll(1000);
    }
    print_result(traffic_start, Clock::now());
    return errors_ == 0 ? 0 : 1;
  }
  if (cfg_.sync) {
    int up = 0;
    for (const auto& c : conns_) up += c.state == State::idle ? 1 : 0;
    fmt::print("{{\"ready\": {}}}\n", is_churn ? static_cast<int>(n) : up);
    std::fflush(stdout);
    phase_ = Phase::waiting;
    while (!stdin_line_ && !stdin_eof_ && !past_deadline()) poll(1000);
  }

  // Run: warm up, measure, then let replies still in flight arrive (checked, not counted).
  phase_ = Phase::run;
  traffic_start = Clock::now();
  measure_start_ = traffic_start + seconds(cfg_.warmup);
  measure_end_ = measure_start_ + seconds(cfg_.duration);
  for (std::size_t i = 0; i < n; ++i) {
    if (is_churn) {
      open_conn(i);
    } else if (conns_[i].state == State::idle) {
      start_batch(i);
    }
  }
  auto last_check = traffic_start;
  while (!timed_out) {
    const auto now = Clock::now();
    if (now >= measure_start_ && cpu_at_start_ < 0) cpu_at_start_ = cpu_seconds();
    if (now >= measure_end_ && cpu_at_end_ < 0) cpu_at_end_ = cpu_seconds();
    if (now >= measure_end_) {
      if (busy_ == 0 && connecting_ == 0) break;
      phase_ = Phase::drain;
    }
    if (past_deadline()) break;
    if (!is_churn && connecting_ == 0 && busy_ == 0) break;  // every connection failed
    if (is_churn && errors_ > 1000) break;                   // a server that refuses everyone
    if (is_churn && phase_ == Phase::run) {
      for (std::size_t i = 0; i < n; ++i) {
        if (conns_[i].state == State::closed) open_conn(i);  // a slot whose connection failed
      }
    }
    poll(measure_end_ > now
             ? static_cast<int>(std::clamp<long long>(
                   std::chrono::duration_cast<std::chrono::milliseconds>(measure_end_ - now).count() + 1, 1, 100))
             : 100);
    if (Clock::now() - last_check > std::chrono::milliseconds(100)) {
      last_check = Clock::now();
      check_timeouts(last_check);
    }
  }
  print_result(traffic_start, Clock::now());
  if (cfg_.sync) {
    phase_ = Phase::hold;
    while (!stdin_eof_ && !past_deadline()) poll(1000);
  }
  for (auto& c : conns_) close_conn(c);
  return errors_ == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  raise_fd_limit();
  LoadGen gen(parse(argc, argv));
  return gen.run();
}
