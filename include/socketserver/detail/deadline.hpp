#ifndef SOCKETSERVER_DETAIL_DEADLINE_HPP
#define SOCKETSERVER_DETAIL_DEADLINE_HPP

#include <chrono>
#include <optional>
#include <system_error>

#include <socketserver/error.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver::detail {

using Clock = std::chrono::steady_clock;

inline Clock::duration to_duration(Seconds seconds) { return std::chrono::ceil<Clock::duration>(seconds); }

// Where a wait for the peer must end, and the error it then ends with.
struct Deadline {
  Clock::time_point at = Clock::time_point::max();
  errc why = errc::idle_timeout;

  void consider(const std::optional<Seconds>& limit, Clock::time_point from, errc reason) {
    if (!limit) return;
    const Clock::time_point end = from + to_duration(*limit);
    if (end < at) *this = {end, reason};
  }
};

// True for the codes of Limits' timeouts.
inline bool is_timeout(const std::error_code& code) noexcept {
  if (code.category() != error_category()) return false;
  const auto value = static_cast<errc>(code.value());
  return value == errc::first_byte_timeout || value == errc::idle_timeout || value == errc::read_timeout ||
         value == errc::write_timeout || value == errc::connection_timeout || value == errc::proxy_header_timeout ||
         value == errc::handshake_timeout;
}

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_DETAIL_DEADLINE_HPP
