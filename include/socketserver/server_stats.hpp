#ifndef SOCKETSERVER_SERVER_STATS_HPP
#define SOCKETSERVER_SERVER_STATS_HPP

#include <array>
#include <cstddef>
#include <cstdint>

namespace socketserver {

/// A snapshot of a stream server's counters: `server.stats()`.
///
/// Counts are since the server was constructed. A connection's bytes, duration and close
/// reason are added when it closes, before `active` drops: a snapshot that no longer counts a
/// connection as active has all of its counts. Under ForkingMixIn the parent sees connections, not their bytes: those
/// are counted in the child that served them.
struct ServerStats {
  std::uint64_t accepted = 0;        ///< connections admitted (refused ones excluded)
  std::size_t active = 0;            ///< connections open now
  std::uint64_t refused = 0;         ///< closed on arrival: max_connections (refuse), per-IP limit, full pool
  std::uint64_t timed_out = 0;       ///< closed by a timeout of Limits
  std::uint64_t limit_exceeded = 0;  ///< closed for a line or frame over its cap
  std::uint64_t errors = 0;          ///< ended by any other exception from the handler
  std::uint64_t cut = 0;             ///< cut by server_close() when drain_timeout ran out
  std::uint64_t accept_errors = 0;   ///< accept() failures that paused accepting (EMFILE, ENFILE, ...)
  std::uint64_t bytes_in = 0;        ///< read through rfile
  std::uint64_t bytes_out = 0;       ///< written through wfile
  std::uint64_t denied = 0;          ///< refused by the access list (also counted in `refused`)
  std::uint64_t requests = 0;        ///< requests handlers marked with rfile.begin_request()/end_request()

  /// What became of the connections of proxies and other peers while server.proxy_protocol is
  /// on. A connection whose header fails is also counted among timed_out, limit_exceeded or
  /// errors by its close reason.
  struct Proxy {
    std::uint64_t v1 = 0;                 ///< valid v1 headers
    std::uint64_t v2 = 0;                 ///< valid v2 headers
    std::uint64_t local = 0;              ///< of those, LOCAL (v1 UNKNOWN): the real addresses kept
    std::uint64_t invalid = 0;            ///< malformed, too large, or the connection ended inside the header
    std::uint64_t timed_out = 0;          ///< no whole header within header_timeout
    std::uint64_t untrusted_refused = 0;  ///< from peers not trusted, refused unread (also in `refused`)
    std::uint64_t untrusted_direct = 0;   ///< from peers not trusted, served as direct connections
  };
  Proxy proxy;

  /// TLS handshakes while server.tls is set: those done, and those that failed by reason. A
  /// failed one is also counted among timed_out, limit_exceeded or errors by its close reason.
  /// Reloads are the context's own count (TlsContext::reloads()).
  struct Tls {
    std::uint64_t handshakes = 0;              ///< done
    std::uint64_t resumed = 0;                 ///< of those, resumed (a ticket or the session cache)
    std::uint64_t eof_before_hello = 0;        ///< closed before a byte: scanners, health probes
    std::uint64_t not_tls = 0;                 ///< plaintext or HTTP sent to the TLS port
    std::uint64_t protocol_version = 0;        ///< no version in common (TLS 1.1 or older)
    std::uint64_t no_shared_cipher = 0;        ///< no cipher suite, group or signature in common
    std::uint64_t bad_certificate = 0;         ///< a client certificate missing or failing, or ours refused
    std::uint64_t client_hello_too_large = 0;  ///< over TlsSettings::max_client_hello
    std::uint64_t timed_out = 0;               ///< not done within TlsSettings::handshake_timeout
    std::uint64_t unknown_server_name = 0;     ///< strict_sni: a name no certificate serves
    std::uint64_t other = 0;                   ///< any other failure
    /// All the failures.
    std::uint64_t failed() const noexcept {
      return eof_before_hello + not_tls + protocol_version + no_shared_cipher + bad_certificate +
             client_hello_too_large + timed_out + unknown_server_name + other;
    }
  };
  Tls tls;

  /// Sends through connection handles (ConnectionHandle, ConnectionGroup::broadcast()) that
  /// found the connection's queue full (Limits::max_queued_bytes).
  struct Queues {
    std::uint64_t dropped = 0;       ///< messages dropped (QueueOverflow::drop)
    std::uint64_t disconnected = 0;  ///< slow consumers cut (QueueOverflow::disconnect), also in limit_exceeded
  };
  Queues queues;

  /// A datagram server's requests (UDPServer, UnixDatagramServer): each datagram is one.
  struct Datagrams {
    std::uint64_t received = 0;  ///< datagrams read
    std::uint64_t dropped = 0;   ///< not handled: ThreadingMixIn's max_threads were busy
  };
  Datagrams datagrams;

  /// Upper bounds, in seconds, of the buckets of `durations`; the last bucket has none.
  static constexpr std::array<double, 7> duration_bounds{0.0001, 0.001, 0.01, 0.1, 1, 10, 100};
  /// How long connections lived, accept to close: durations[i] counts those of at most
  /// duration_bounds[i] seconds (and more than the bound before); the last, the longer ones.
  std::array<std::uint64_t, duration_bounds.size() + 1> durations{};
};

}  // namespace socketserver

#endif  // SOCKETSERVER_SERVER_STATS_HPP
