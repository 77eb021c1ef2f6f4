#ifndef SOCKETSERVER_IO_DETAIL_LIMITED_IO_HPP
#define SOCKETSERVER_IO_DETAIL_LIMITED_IO_HPP

#include <chrono>
#include <cstddef>
#include <optional>
#include <system_error>

#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/detail/deadline.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver::detail {

// One blocking read_some() or write_some() (`call`) on a connection held to its limits.
//
// The socket's own timeout (SO_RCVTIMEO/SO_SNDTIMEO, set once per connection to the shortest
// limit) bounds each wait, so the common case costs no extra system call. A wait that times out
// before `deadline` goes round again; only when the deadline is nearer than that timeout is the
// socket's timeout shortened for the wait, so a deadline is missed by at most a tenth of it.
// Past the deadline: std::system_error with its socketserver::errc. Past the handler's own
// timeout (Python's): std::errc::timed_out, as without limits.
template <class Call>
std::size_t limited_call(ByteStream& stream, Direction direction, const ConnectionRecord& record,
                         const Deadline& deadline, Clock::time_point start, const char* what, Call call) {
  const std::optional<Seconds> cap = stream.timeout(direction);
  struct Restore {  // puts back the socket's timeout after a shortened wait
    ByteStream& stream;
    Direction direction = Direction::read;
    const std::optional<Seconds>& cap;
    bool shortened = false;
    ~Restore() {
      if (shortened) stream.set_timeout(direction, cap);
    }
  } restore{stream, direction, cap};
  Clock::time_point now = start;
  for (bool last = false;;) {
    if (now >= deadline.at) {
      // Past the first-byte deadline already (the connection waited in a pool's queue): a
      // request that has arrived meanwhile is still taken, without waiting for more. Any other
      // deadline is final: a peer that trickles bytes must not buy time with each one.
      if (last || now != start || deadline.why != errc::first_byte_timeout) throw std::system_error(deadline.why, what);
      stream.set_timeout(direction, Seconds(0));
      restore.shortened = true;
      last = true;
    } else if (cap && deadline.at != Clock::time_point::max()) {
      const auto left = deadline.at - now;
      const auto wait = to_duration(*cap);
      if (left < wait - wait / 10) {
        stream.set_timeout(direction, std::chrono::duration_cast<Seconds>(left));
        restore.shortened = true;
      } else if (restore.shortened) {
        stream.set_timeout(direction, cap);
        restore.shortened = false;
      }
    }
    try {
      return call();
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::timed_out) throw;
      if (last) throw std::system_error(deadline.why, what);
      now = Clock::now();
      // A millisecond of slack: the kernel's timer may end a wait a little before ours.
      const std::optional<Seconds> own = record.user_timeout();
      if (own && now - start + std::chrono::milliseconds(1) >= to_duration(*own)) throw;
    }
  }
}

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_IO_DETAIL_LIMITED_IO_HPP
