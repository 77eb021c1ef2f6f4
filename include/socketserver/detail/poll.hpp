#ifndef SOCKETSERVER_DETAIL_POLL_HPP
#define SOCKETSERVER_DETAIL_POLL_HPP

#include <poll.h>

#include <optional>

#include <socketserver/detail/config.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver::detail {

// Waits until `fd` reports `events` (POLLIN or POLLOUT). Returns false when `timeout` passes
// first; no timeout waits for ever. A signal does not end the wait early: poll() is restarted
// with the time that is left (CPython's PEP 475 behaviour).
bool wait_ready(int fd, short events, std::optional<Seconds> timeout);

}  // namespace socketserver::detail

#if SOCKETSERVER_DEFINITIONS
#include <cerrno>
#include <chrono>
#include <system_error>

#include <socketserver/detail/system_error.hpp>

namespace socketserver::detail {

SOCKETSERVER_DECL bool wait_ready(int fd, short events, std::optional<Seconds> timeout) {
  using clock = std::chrono::steady_clock;
  const auto deadline =
      timeout ? clock::now() + std::chrono::ceil<clock::duration>(*timeout) : clock::time_point::max();
  for (;;) {
    int ms = -1;
    if (timeout) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
      ms = left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, ms);
    if (n > 0) return true;  // ready, or POLLERR/POLLHUP: the next call reports which
    if (n == 0) {
      if (ms == 0 || clock::now() >= deadline) return false;
      continue;  // poll rounds down on some kernels; wait out the remainder
    }
    if (errno != EINTR) throw_errno("poll");
  }
}

}  // namespace socketserver::detail
#endif

#endif  // SOCKETSERVER_DETAIL_POLL_HPP
