#ifndef SOCKETSERVER_PROXY_PROTOCOL_HPP
#define SOCKETSERVER_PROXY_PROTOCOL_HPP

#include <cstddef>

#include <socketserver/access_list.hpp>
#include <socketserver/address.hpp>
#include <socketserver/seconds.hpp>

namespace socketserver {

/// Whether a stream server reads HAProxy's PROXY protocol (v1 and v2) and from whom:
/// `server.proxy_protocol`. Off by default.
///
/// ```
/// server.proxy_protocol.trusted = socketserver::AccessList({"10.0.0.0/8", "::1"});
/// ```
/// A connection from a trusted proxy must begin with a valid header: the server reads it on the
/// connection's own thread (or event loop) before the handler starts, within header_timeout, and
/// closes the connection, with a security log line, when it is missing, malformed, too large or
/// late. The spec forbids guessing whether a header is there, so a trusted peer that sends none
/// is refused, and an untrusted one's bytes are never read as a header. The handler's
/// client_address, max_connections_per_ip, the access log and stats() then use the client the
/// header names; the access list (server.set_access_list()) and the trust decision use the real
/// peer. A LOCAL header (the proxy's health check) keeps the real addresses. No byte after the
/// header is lost, and a header that arrives with the first data costs no extra system call.
///
/// Set it before serve_forever(); it is read while the server runs.
struct ProxyProtocol {
  /// The proxies whose connections carry a header, by their real address: allowed entries are
  /// trusted (denied ones carve exceptions out of them). Empty: no IP peer is trusted.
  AccessList trusted;
  /// A Unix stream server's peers have no address: true trusts all of them (the socket file's
  /// permissions decide who may connect).
  bool trust_unix_peers = false;

  /// What happens to a connection from a peer that is not trusted while the protocol is on.
  enum class Untrusted {
    refuse,  ///< close it at once, unread, with a security log line (the default)
    direct,  ///< serve it as a direct connection: its bytes are never parsed as a header
  };
  Untrusted untrusted = Untrusted::refuse;

  /// The longest a trusted peer may take to send its whole header (the spec asks for at least
  /// 3 s, to cover a TCP retransmit).
  Seconds header_timeout = Seconds(5);

  /// The most bytes of TLVs a v2 header may carry (ALPN, authority, SSL details, ...); a larger
  /// header is refused before its rest is read. v1 headers are at most 107 bytes.
  std::size_t max_tlv_size = 2048;

  /// Whether the protocol is on: a proxy is trusted.
  bool enabled() const noexcept { return !trusted.empty() || trust_unix_peers; }

  /// Whether connections from `peer` must begin with a header.
  bool trusts(const Address& peer) const noexcept {
    if (peer.is_ip()) return trusted.match(peer) == AccessList::Verdict::allow;
    return trust_unix_peers;
  }
};

}  // namespace socketserver

#endif  // SOCKETSERVER_PROXY_PROTOCOL_HPP
