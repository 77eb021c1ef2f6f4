// fanout: the load generator of the broadcast benchmark (bench/fanout.py). N members connect to
// a fan-out server (every line a member sends goes to every other member); each round, every
// member sends one line, and the round ends when every member has received the N - 1 lines of
// the others. Prints one JSON line: rounds, deliveries (lines received) and deliveries per
// second over the measured time.
//   fanout --port P [--host H] [--members N] [--size BYTES] [--duration S] [--warmup S] [--timeout S]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string host = "127.0.0.1";
  int port = 0;
  int members = 100;
  std::size_t size = 64;
  double duration = 2.0;
  double warmup = 0.5;
  double timeout = 10.0;
};

[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "fanout: {}: {}\n", what, std::strerror(errno));
  std::exit(1);
}

Config parse(int argc, char** argv) {
  Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view arg = argv[i];
    const std::string_view value = argv[i + 1];
    const auto number = [&](auto& out) {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
      if (ec != std::errc() || end != value.data() + value.size()) {
        fmt::print(stderr, "fanout: bad number '{}' for {}\n", value, arg);
        std::exit(2);
      }
    };
    if (arg == "--host") {
      c.host = value;
    } else if (arg == "--port") {
      number(c.port);
    } else if (arg == "--members") {
      number(c.members);
    } else if (arg == "--size") {
      number(c.size);
    } else if (arg == "--duration") {
      number(c.duration);
    } else if (arg == "--warmup") {
      number(c.warmup);
    } else if (arg == "--timeout") {
      number(c.timeout);
    } else {
      fmt::print(stderr,
                 "usage: fanout --port P [--host H] [--members N] [--size BYTES] [--duration S] "
                 "[--warmup S] [--timeout S]\n");
      std::exit(2);
    }
  }
  if (c.port <= 0 || c.members < 2 || c.size < 2) {
    fmt::print(stderr, "fanout: --port, at least 2 --members and a --size of at least 2 are needed\n");
    std::exit(2);
  }
  return c;
}

struct Member {
  int fd = -1;
  std::uint64_t lines = 0;  // received this round
};

}  // namespace

int main(int argc, char** argv) {
  const Config cfg = parse(argc, argv);
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < static_cast<rlim_t>(cfg.members) + 64) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, static_cast<rlim_t>(cfg.members) + 64);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(cfg.port));
  if (::inet_pton(AF_INET, cfg.host.c_str(), &address.sin_addr) != 1) die("--host must be IPv4");

  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) die("epoll_create1");
  std::vector<Member> members(static_cast<std::size_t>(cfg.members));
  for (std::size_t i = 0; i < members.size(); ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) < 0) die("connect");
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = i;
    if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) < 0) die("epoll_ctl");
    members[i].fd = fd;
  }
  // Every member joined once a line from the last one reaches all the others: a first round,
  // unmeasured, that also warms the server up.
  std::string line(cfg.size - 1, 'x');
  line += '\n';
  const std::uint64_t others = members.size() - 1;
  std::vector<char> buffer(1 << 16);
  std::vector<epoll_event> events(256);
  // One round; false when it is not done by `deadline`, or nothing has arrived for `stall`.
  const auto round_trip = [&](Clock::time_point deadline, Clock::duration stall) -> bool {
    for (Member& m : members) {
      m.lines = 0;
      if (::send(m.fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) die("send");
    }
    std::size_t done = 0;
    auto progress = Clock::now();
    while (done < members.size()) {
      const int n = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), 100);
      if (n < 0 && errno != EINTR) die("epoll_wait");
      if (n > 0) progress = Clock::now();
      if (Clock::now() - progress > stall) return false;
      for (int k = 0; k < n; ++k) {
        Member& m = members[events[static_cast<std::size_t>(k)].data.u64];
        const ssize_t got = ::recv(m.fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (got == 0) {
          errno = ECONNRESET;
          die("the server closed a member");
        }
        if (got < 0) {
          if (errno == EAGAIN || errno == EINTR) continue;
          die("recv");
        }
        const bool was_done = m.lines >= others;
        m.lines += static_cast<std::uint64_t>(std::count(buffer.data(), buffer.data() + got, '\n'));
        if (!was_done && m.lines >= others) ++done;
      }
      if (Clock::now() > deadline) return false;
    }
    return true;
  };
  const auto timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.timeout));
  // Joining takes a moment on the server: the first rounds may miss late members' lines, so
  // warm up until a round completes, then for --warmup.
  const auto setup_deadline = Clock::now() + timeout;
  while (!round_trip(setup_deadline, std::chrono::seconds(1))) {
    if (Clock::now() > setup_deadline) {
      fmt::print(stderr, "fanout: no round completed within --timeout\n");
      return 1;
    }
    for (Member& m : members) m.lines = 0;
    // Drain what is left of the incomplete round before the next.
    while (::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), 200) > 0) {
      for (Member& m : members) {
        while (::recv(m.fd, buffer.data(), buffer.size(), MSG_DONTWAIT) > 0) {
        }
      }
    }
  }
  const auto warm_end =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.warmup));
  while (Clock::now() < warm_end) {
    if (!round_trip(Clock::now() + timeout, timeout)) {
      fmt::print(stderr, "fanout: a round did not complete within --timeout\n");
      return 1;
    }
  }
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.duration));
  std::uint64_t rounds = 0;
  while (Clock::now() < end) {
    if (!round_trip(Clock::now() + timeout, timeout)) {
      fmt::print(stderr, "fanout: a round did not complete within --timeout\n");
      return 1;
    }
    ++rounds;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::uint64_t deliveries = rounds * members.size() * others;
  fmt::print(
      "{{\"workload\": \"fanout\", \"members\": {}, \"size\": {}, \"seconds\": {:.3f}, \"rounds\": {}, "
      "\"total_messages\": {}, \"msgs_per_s\": {:.1f}, \"errors\": 0}}\n",
      cfg.members, cfg.size, seconds, rounds, deliveries, static_cast<double>(deliveries) / seconds);
  for (Member& m : members) ::close(m.fd);
  ::close(epoll);
  return 0;
}
