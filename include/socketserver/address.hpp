#ifndef SOCKETSERVER_ADDRESS_HPP
#define SOCKETSERVER_ADDRESS_HPP

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>

#include <fmt/core.h>

#include <socketserver/detail/config.hpp>

namespace socketserver {

/// A server or peer address: an IP host and port, or a Unix socket path.
///
/// Python's server_address and client_address are a (host, port) tuple for IP and a path
/// string for Unix sockets; this one value type stands for both so that handlers work with
/// every server. Build an IP address with `{"127.0.0.1", 9999}` (IPv4 or IPv6 literal, a host
/// name resolved when a server is constructed, or "" for all IPv4 interfaces, as in Python) and a Unix
/// one with Address::from_path(). Port 0 asks the system for a free port; the server's
/// server_address() then reports the port it got.
class Address {
 public:
  /// An empty address: no host, no path (e.g. an unbound Unix datagram peer).
  Address() = default;

  /// An IP address; a host name is resolved by the server constructed with it.
  Address(std::string host, std::uint16_t port) : host_(std::move(host)), port_(port), kind_(Kind::ip) {}

  /// A Unix socket path.
  static Address from_path(std::string path) {
    Address a;
    a.host_ = std::move(path);
    a.kind_ = Kind::unix_path;
    return a;
  }

  bool is_ip() const noexcept { return kind_ == Kind::ip; }
  bool is_unix() const noexcept { return kind_ == Kind::unix_path; }
  bool empty() const noexcept { return kind_ == Kind::none || (is_unix() && host_.empty()); }

  /// The host of an IP address (Python's client_address[0]); empty for a Unix address.
  const std::string& host() const noexcept { return is_ip() ? host_ : empty_string(); }
  /// The port of an IP address (Python's client_address[1]); 0 for a Unix address.
  std::uint16_t port() const noexcept { return port_; }
  /// The path of a Unix address; empty for an IP address or an unnamed Unix peer.
  const std::string& path() const noexcept { return is_unix() ? host_ : empty_string(); }

  /// "127.0.0.1:9999", "[::1]:9999", "/run/app.sock", or "<unnamed>" for an empty address.
  std::string to_string() const;

  friend bool operator==(const Address&, const Address&) = default;

  friend std::ostream& operator<<(std::ostream& os, const Address& a) { return os << a.to_string(); }

 private:
  enum class Kind : unsigned char { none, ip, unix_path };
  static const std::string& empty_string() noexcept {
    static const std::string s;
    return s;
  }

  std::string host_;  // the host for IP, the path for Unix
  std::uint16_t port_ = 0;
  Kind kind_ = Kind::none;
};

}  // namespace socketserver

/// Formats an Address as Address::to_string() does.
template <>
struct fmt::formatter<socketserver::Address> : fmt::formatter<std::string> {
  template <class FormatContext>
  auto format(const socketserver::Address& a, FormatContext& ctx) const -> decltype(ctx.out());
};

// Defined outside the class, so not inline: separately compiled, the extern template below then
// keeps it out of every translation unit. formatter<std::string>::format is defined in
// fmt/format.h, which the definitions below include.
template <class FormatContext>
auto fmt::formatter<socketserver::Address>::format(const socketserver::Address& a, FormatContext& ctx) const
    -> decltype(ctx.out()) {
  return fmt::formatter<std::string>::format(a.to_string(), ctx);
}

#if defined(SOCKETSERVER_SEPARATE_COMPILATION)
// Every fmt::format(), fmt::print() and Logger::log() formats through fmt::format_context.
extern template auto fmt::formatter<socketserver::Address>::format(const socketserver::Address&,
                                                                   fmt::format_context&) const
    -> fmt::format_context::iterator;
#endif

#if SOCKETSERVER_DEFINITIONS
#include <fmt/format.h>

namespace socketserver {

SOCKETSERVER_DECL std::string Address::to_string() const {
  if (empty()) return "<unnamed>";
  if (is_unix()) return host_;
  if (host_.find(':') != std::string::npos) return fmt::format("[{}]:{}", host_, port_);
  return fmt::format("{}:{}", host_, port_);
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_ADDRESS_HPP
