#ifndef SOCKETSERVER_SECONDS_HPP
#define SOCKETSERVER_SECONDS_HPP

#include <chrono>

namespace socketserver {

/// A duration in seconds, fractional like Python's float timeouts.
///
/// Any std::chrono duration converts to it implicitly: `timeout = 5s`, `timeout = 250ms`,
/// `serve_forever(0.01s)`.
using Seconds = std::chrono::duration<double>;

}  // namespace socketserver

#endif  // SOCKETSERVER_SECONDS_HPP
