#ifndef SOCKETSERVER_LIMITS_HPP
#define SOCKETSERVER_LIMITS_HPP

#include <cstddef>
#include <initializer_list>
#include <optional>

#include <socketserver/seconds.hpp>

namespace socketserver {

/// What a stream server allows each connection, and how many at once: `server.limits`.
///
/// Every limit has a default that is safe to face the Internet with (docs/limits.md lists them
/// with the reasons). std::nullopt turns a timeout off; 0 turns a count off. A connection that
/// hits a timeout or a cap gets an exception (std::system_error with a socketserver::errc) in
/// its handler, is closed, counted in stats() and logged with the reason.
///
/// Set the limits before serve_forever(); they are read while the server runs.
struct Limits {
  /// From accept to the first byte from the peer. Applies only while the handler waits for
  /// input: a server that speaks first is not cut short by a silent client. std::nullopt: the
  /// first wait is an idle one (idle_timeout).
  std::optional<Seconds> first_byte_timeout = Seconds(30);
  /// The longest wait for input while nothing of the next request has arrived (between
  /// requests on a kept-alive connection).
  std::optional<Seconds> idle_timeout = Seconds(300);
  /// From the first byte of a line or frame to its last: a peer that sends one byte every few
  /// seconds (slowloris) is cut here, whatever each single wait takes.
  std::optional<Seconds> read_timeout = Seconds(60);
  /// The longest one write() or flush() may take to hand its bytes to a peer that does not read.
  std::optional<Seconds> write_timeout = Seconds(60);
  /// The longest a connection may live, however busy. Off by default: long-lived connections
  /// (chat, streaming) are normal, and a stalled one is cut by the timeouts above.
  std::optional<Seconds> connection_timeout;

  /// The most connections open at once (0: no limit). Past it, `overload` decides.
  std::size_t max_connections = 10000;
  /// The most connections open at once from one IP address (0: no limit, the default: clients
  /// behind one NAT or proxy share an address). Past it, a new connection is refused: its
  /// address is known only once it has been accepted.
  std::size_t max_connections_per_ip = 0;

  /// What happens at max_connections.
  enum class Overload {
    pause,   ///< stop accepting until a connection ends: new ones wait in the listen backlog
    refuse,  ///< accept and close at once, with a security log line
  };
  Overload overload = Overload::pause;

  /// The longest line rfile.readline() accepts, for handlers that leave rfile.max_line at 0;
  /// 0 here: no cap.
  std::size_t max_line = std::size_t{64} * 1024;

  /// The most bytes a connection's handle (ConnectionHandle::send(), a group's broadcast) may
  /// have queued and not yet written, while the peer reads slower than they come. Past it,
  /// `queue_overflow` decides; 0: no cap.
  std::size_t max_queued_bytes = std::size_t{1024} * 1024;

  /// What a send() that would pass max_queued_bytes does.
  enum class QueueOverflow {
    disconnect,  ///< cut the slow consumer (errc::send_queue_full), so the others are not held up
    drop,        ///< drop that message, keep the connection (a lossy feed: prices, presence)
  };
  QueueOverflow queue_overflow = QueueOverflow::disconnect;

  /// How long server_close() waits for open connections to finish before it cuts them.
  /// Connections waiting for their next request (they have sent one before) are closed at
  /// once; a new connection may still send its first. std::nullopt waits for ever.
  std::optional<Seconds> drain_timeout = Seconds(30);

  /// While server_close() drains, a connection that has sent nothing yet (a port scanner, a
  /// health probe that connects and waits) is closed once it is this old, instead of holding the
  /// drain for all of drain_timeout: its reads see the end of the stream. Go's
  /// http.Server.Shutdown gives new connections the same 5 s. std::nullopt: no grace of its own.
  std::optional<Seconds> silent_grace = Seconds(5);

  /// The shortest of the connection timeouts that are on (drain_timeout aside); std::nullopt
  /// when all are off.
  std::optional<Seconds> shortest_timeout() const {
    std::optional<Seconds> shortest;
    for (const auto& limit : {first_byte_timeout, idle_timeout, read_timeout, write_timeout, connection_timeout}) {
      if (limit && (!shortest || *limit < *shortest)) shortest = limit;
    }
    return shortest;
  }
};

}  // namespace socketserver

#endif  // SOCKETSERVER_LIMITS_HPP
