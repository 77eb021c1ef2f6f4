#ifndef SOCKETSERVER_PROXY_HEADER_HPP
#define SOCKETSERVER_PROXY_HEADER_HPP

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <socketserver/address.hpp>
#include <socketserver/detail/config.hpp>

// The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's doc/proxy-protocol.txt
// (2020/03/05) specifies it. Section numbers below are that document's.

namespace socketserver {

/// The outcome of parse_proxy_header().
struct ProxyParse {
  /// complete: a whole, valid header of `size` bytes. incomplete: what arrived so far is a
  /// valid beginning; read more and parse again. invalid: the bytes cannot be (the beginning of)
  /// a valid header; close the connection. too_large: a v2 header announces more bytes than the
  /// TLV cap allows; close the connection.
  enum class Status : unsigned char { complete, incomplete, invalid, too_large };
  /// What the bytes so far amount to.
  Status status = Status::incomplete;
  /// complete: the bytes the header took; the caller's data after them is not part of it.
  std::size_t size = 0;
  /// invalid / too_large: a short static English reason for a log line; "" otherwise.
  const char* reason = "";
};

class ProxyHeader;

/// Parses the PROXY protocol header (v1 or v2) at the front of `bytes`; fills `header` when
/// complete and leaves it untouched otherwise.
///
/// `incomplete`: the bytes so far are a valid beginning and more are needed (the caller reads
/// more, at most max_proxy_header_size(max_tlv_size) in all). Bytes that cannot begin a header
/// are `invalid` as soon as they arrive, so a client that is not a proxy is turned away on its
/// first packet. Never reads past what a v2 header's own length says, or past a v1 header's
/// CRLF: the bytes after the header belong to the application. Never throws on malformed input
/// (std::bad_alloc only); allocates no more than the header's own size.
///
/// `max_tlv_size` caps a v2 header at 16 + 216 + max_tlv_size bytes (216 is the largest
/// address block, AF_UNIX's); a header that announces more is `too_large` as soon as its 16
/// fixed bytes are there.
ProxyParse parse_proxy_header(std::string_view bytes, std::size_t max_tlv_size, ProxyHeader& header);

/// The most bytes a header can take with TLVs capped at `max_tlv_size`:
/// max(107, 16 + 216 + max_tlv_size), saturated at SIZE_MAX.
constexpr std::size_t max_proxy_header_size(std::size_t max_tlv_size) noexcept {
  constexpr std::size_t v1_max = 107;         // §2.1: the worst-case line, CRLF included
  constexpr std::size_t v2_fixed = 16 + 216;  // the fixed part and the largest address block
  if (max_tlv_size > std::numeric_limits<std::size_t>::max() - v2_fixed) return std::numeric_limits<std::size_t>::max();
  return std::max(v1_max, v2_fixed + max_tlv_size);
}

namespace detail {

struct ProxyParser;

// PP2_TYPE_* and PP2_SUBTYPE_SSL_* (§2.2).
inline constexpr std::uint8_t pp2_type_alpn = 0x01;
inline constexpr std::uint8_t pp2_type_authority = 0x02;
inline constexpr std::uint8_t pp2_type_crc32c = 0x03;
inline constexpr std::uint8_t pp2_type_unique_id = 0x05;
inline constexpr std::uint8_t pp2_type_ssl = 0x20;
inline constexpr std::uint8_t pp2_subtype_ssl_version = 0x21;
inline constexpr std::uint8_t pp2_subtype_ssl_cn = 0x22;
inline constexpr std::uint8_t pp2_subtype_ssl_cipher = 0x23;
inline constexpr std::uint8_t pp2_client_ssl = 0x01;

// The big-endian number in `bytes` (at most 4 of them).
constexpr std::uint32_t read_be(std::string_view bytes) noexcept {
  std::uint32_t value = 0;
  for (const char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

// Takes the TLV at the front of `rest` (type, 2-byte big-endian length, value) and advances past
// it; false, leaving `rest` as it was, when fewer bytes are left than the TLV needs.
constexpr bool next_tlv(std::string_view& rest, std::uint8_t& type, std::string_view& value) noexcept {
  if (rest.size() < 3) return false;
  const std::size_t length = read_be(rest.substr(1, 2));
  if (rest.size() - 3 < length) return false;
  type = static_cast<std::uint8_t>(rest[0]);
  value = rest.substr(3, length);
  rest.remove_prefix(3 + length);
  return true;
}

// The value of the first TLV of `type` in `tlvs`.
constexpr std::optional<std::string_view> find_tlv(std::string_view tlvs, std::uint8_t type) noexcept {
  std::uint8_t t = 0;
  std::string_view value;
  while (next_tlv(tlvs, t, value))
    if (t == type) return value;
  return std::nullopt;
}

// True when `tlvs` is a run of whole TLVs with nothing left over.
constexpr bool whole_tlvs(std::string_view tlvs) noexcept {
  std::uint8_t type = 0;
  std::string_view value;
  while (next_tlv(tlvs, type, value)) {
  }
  return tlvs.empty();
}

// CRC32C (Castagnoli) as RFC 4960 appendix B computes it: reflected polynomial 0x82F63B78,
// one table lookup a byte.
inline constexpr std::array<std::uint32_t, 256> crc32c_table = [] {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1U) != 0 ? 0x82F63B78U : 0U);
    table[i] = crc;
  }
  return table;
}();

/// Continues a CRC32C over `data` from `state`: start from 0xFFFFFFFF, and xor the last state
/// with 0xFFFFFFFF to get the checksum. For a checksum over pieces.
constexpr std::uint32_t crc32c_update(std::uint32_t state, std::string_view data) noexcept {
  for (const char c : data) state = (state >> 8) ^ crc32c_table[(state ^ static_cast<unsigned char>(c)) & 0xFFU];
  return state;
}

/// The CRC32C of `data`, as the PROXY v2 PP2_TYPE_CRC32C TLV carries it (§2.2.3):
/// crc32c("123456789") == 0xE3069283.
constexpr std::uint32_t crc32c(std::string_view data) noexcept {
  return crc32c_update(0xFFFFFFFFU, data) ^ 0xFFFFFFFFU;
}

}  // namespace detail

/// A PROXY protocol header received from a trusted proxy (v1 or v2): who the client is, and
/// for v2 what the proxy adds about the connection (TLVs: ALPN, SNI, TLS details).
///
/// Accept the header only on a listener that only trusted proxies can reach, and require it
/// there (§5): a client that can send one can claim any address. parse_proxy_header() fills one.
///
/// ```
/// std::string data;  // what the connection has sent so far
/// socketserver::ProxyHeader header;
/// auto result = socketserver::parse_proxy_header(data, 1024, header);
/// // incomplete: read more and parse again; invalid / too_large: log result.reason and close;
/// // complete: data.substr(result.size) is the application's.
/// ```
///
/// A value type: it owns copies of its addresses and TLVs, and the views it returns stay valid
/// as long as it does and is not assigned to.
class ProxyHeader {
 public:
  /// What the proxy tells about the connection.
  enum class Command : unsigned char {
    /// Use the real connection's addresses: a v2 LOCAL header (the proxy's own health check), a
    /// v1 UNKNOWN one, or a v2 PROXY one whose family or transport is UNSPEC.
    local,
    /// The connection was relayed for the client that source() names.
    proxy,
  };

  /// The family of source() and destination().
  enum class Family : unsigned char {
    unspec,       ///< no addresses: command() is local
    inet,         ///< IPv4 (v1 TCP4, v2 AF_INET)
    inet6,        ///< IPv6 (v1 TCP6, v2 AF_INET6)
    unix_socket,  ///< a Unix socket path (v2 AF_UNIX)
  };

  /// No header: version() 0, command() local, no addresses and no TLVs.
  ProxyHeader() = default;

  /// 1 or 2; 0 for a default-constructed header.
  int version() const noexcept { return version_; }
  /// local: use the connection's real addresses; proxy: use source() and destination().
  Command command() const noexcept { return command_; }
  /// The family of the addresses; unspec when command() is local.
  Family family() const noexcept { return family_; }
  /// The client's address (the header's source); an empty Address{} when command() is local.
  /// IPv4 in dotted decimal, IPv6 in inet_ntop's canonical text, Unix as a path up to its first
  /// NUL (so an abstract socket name reads as an unnamed path).
  const Address& source() const noexcept { return source_; }
  /// The address the client connected to; an empty Address{} when command() is local.
  const Address& destination() const noexcept { return destination_; }

  /// The v2 TLVs after the address block, as received: empty for v1, LOCAL and UNSPEC headers.
  std::string_view tlv_bytes() const noexcept { return tlvs_; }
  /// Calls f(std::uint8_t type, std::string_view value) for each TLV, in the order received.
  template <class F>
  void for_each_tlv(F&& f) const {
    std::string_view rest = tlvs_;
    std::uint8_t type = 0;
    std::string_view value;
    while (detail::next_tlv(rest, type, value)) f(type, value);
  }
  /// The value of the first TLV of `type`; std::nullopt when there is none.
  std::optional<std::string_view> tlv(std::uint8_t type) const noexcept { return detail::find_tlv(tlvs_, type); }
  /// PP2_TYPE_ALPN (0x01): the protocol the client negotiated, e.g. "h2".
  std::optional<std::string_view> alpn() const noexcept { return tlv(detail::pp2_type_alpn); }
  /// PP2_TYPE_AUTHORITY (0x02): the host name the client asked for (TLS SNI), UTF-8.
  std::optional<std::string_view> authority() const noexcept { return tlv(detail::pp2_type_authority); }
  /// PP2_TYPE_UNIQUE_ID (0x05): the proxy's opaque id for the connection, at most 128 bytes.
  std::optional<std::string_view> unique_id() const noexcept { return tlv(detail::pp2_type_unique_id); }

  /// True when a PP2_TYPE_SSL TLV is present and its PP2_CLIENT_SSL bit is set: the client
  /// connected to the proxy over TLS.
  bool ssl() const noexcept {
    const auto client = ssl_client();
    return client && (*client & detail::pp2_client_ssl) != 0;
  }
  /// The `client` flags byte of the PP2_TYPE_SSL TLV (PP2_CLIENT_SSL 0x01, PP2_CLIENT_CERT_CONN
  /// 0x02, PP2_CLIENT_CERT_SESS 0x04); std::nullopt without that TLV.
  std::optional<std::uint8_t> ssl_client() const noexcept {
    const auto value = ssl_value();
    if (!value) return std::nullopt;
    return static_cast<std::uint8_t>((*value)[0]);
  }
  /// The `verify` field of the PP2_TYPE_SSL TLV: 0 when the client presented a certificate and
  /// it was verified, non-zero otherwise; std::nullopt without that TLV.
  std::optional<std::uint32_t> ssl_verify() const noexcept {
    const auto value = ssl_value();
    if (!value) return std::nullopt;
    return detail::read_be(value->substr(1, 4));
  }
  /// PP2_SUBTYPE_SSL_VERSION (0x21): the TLS version, e.g. "TLSv1.3".
  std::optional<std::string_view> ssl_version() const noexcept { return ssl_tlv(detail::pp2_subtype_ssl_version); }
  /// PP2_SUBTYPE_SSL_CN (0x22): the Common Name of the client certificate's subject, UTF-8.
  std::optional<std::string_view> ssl_cn() const noexcept { return ssl_tlv(detail::pp2_subtype_ssl_cn); }
  /// PP2_SUBTYPE_SSL_CIPHER (0x23): the cipher's name, e.g. "ECDHE-RSA-AES128-GCM-SHA256".
  std::optional<std::string_view> ssl_cipher() const noexcept { return ssl_tlv(detail::pp2_subtype_ssl_cipher); }
  /// The value of the first sub-TLV of `subtype` inside the PP2_TYPE_SSL TLV.
  std::optional<std::string_view> ssl_tlv(std::uint8_t subtype) const noexcept {
    const auto value = ssl_value();
    if (!value) return std::nullopt;
    return detail::find_tlv(value->substr(5), subtype);
  }

 private:
  friend struct detail::ProxyParser;

  // The SSL TLV's value when it has its 5 fixed bytes (the parser rejects one that does not).
  std::optional<std::string_view> ssl_value() const noexcept {
    auto value = tlv(detail::pp2_type_ssl);
    if (value && value->size() < 5) return std::nullopt;
    return value;
  }

  int version_ = 0;
  Command command_ = Command::local;
  Family family_ = Family::unspec;
  Address source_;
  Address destination_;
  std::string tlvs_;  // the TLV block, copied: at most the header's own size
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <cstring>
#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace socketserver {

namespace detail {

// The v1 (§2.1) and v2 (§2.2) parsers; ProxyHeader lets them fill its members.
struct ProxyParser {
  using Status = ProxyParse::Status;

  static ProxyParse fail(const char* reason) noexcept { return {Status::invalid, 0, reason}; }

  // A decimal number 0..max written without leading zeros (a lone "0" is one), as §2.1 wants for
  // IPv4 parts and ports: "heading zeroes are not permitted ... to avoid confusion with octal".
  static constexpr bool is_decimal(std::string_view s, unsigned max) noexcept {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
    unsigned value = 0;
    for (const char c : s) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value <= max;
  }

  // An IPv4 address in canonical dotted decimal; `partial`: `s` may be a beginning of one. A
  // beginning of a valid part is a valid part, so only the last part may be empty.
  static constexpr bool is_ipv4(std::string_view s, bool partial) noexcept {
    for (int dots = 0;; ++dots) {
      const std::size_t dot = s.find('.');
      const std::string_view part = s.substr(0, dot);
      if (dot == std::string_view::npos)
        return partial ? part.empty() || is_decimal(part, 255) : dots == 3 && is_decimal(part, 255);
      if (dots == 3 || !is_decimal(part, 255)) return false;
      s.remove_prefix(dot + 1);
    }
  }

  // An IPv6 address: hex digits, ':' and '.' only, so that a NUL, a zone ("%eth0") or brackets
  // never reach inet_pton(AF_INET6), which decides the rest. `partial`: only the characters and
  // the length are checked, since inet_pton cannot try a beginning.
  static bool is_ipv6(std::string_view s, bool partial, in6_addr* out) noexcept {
    constexpr std::size_t longest = 45;  // INET6_ADDRSTRLEN less its NUL: "ffff:...:255.255.255.255"
    if (s.size() > longest) return false;
    for (const char c : s) {
      const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') return false;
    }
    if (partial) return true;
    std::array<char, longest + 1> text{};
    std::memcpy(text.data(), s.data(), s.size());
    return inet_pton(AF_INET6, text.data(), out) == 1;
  }

  static bool is_port(std::string_view s, bool partial) noexcept {
    return (partial && s.empty()) || is_decimal(s, 65535);
  }

  // Checks a v1 line after "PROXY " and before its CRLF; `partial`: `line` is all that arrived
  // and the CRLF is still to come, so its last field may be unfinished. Returns the reason it is
  // invalid, or nullptr.
  static const char* check_v1_fields(std::string_view line, bool partial) noexcept {
    const std::size_t space = line.find(' ');
    const std::string_view protocol = line.substr(0, space);
    if (space == std::string_view::npos) {
      if (partial) {
        for (const std::string_view known : {"TCP4", "TCP6", "UNKNOWN"})
          if (known.substr(0, protocol.size()) == protocol) return nullptr;
        return "v1 header with an unknown protocol";
      }
      return protocol == "UNKNOWN" ? nullptr : "v1 header with an unknown protocol or no addresses";
    }
    // §2.1: "the receiver must ignore anything presented before the CRLF" after UNKNOWN.
    if (protocol == "UNKNOWN") return nullptr;
    const bool tcp4 = protocol == "TCP4";
    if (!tcp4 && protocol != "TCP6") return "v1 header with an unknown protocol";
    std::string_view rest = line.substr(space + 1);
    in6_addr unused{};
    for (int field = 0; field < 4; ++field) {  // source, destination, source port, destination port
      const std::size_t end = rest.find(' ');
      const bool last = end == std::string_view::npos;
      const bool open = last && partial;  // the field may still grow
      const std::string_view text = rest.substr(0, end);
      if (field < 2) {
        if (tcp4 ? !is_ipv4(text, open) : !is_ipv6(text, open, &unused))
          return tcp4 ? "v1 header with a bad IPv4 address" : "v1 header with a bad IPv6 address";
      } else if (!is_port(text, open)) {
        return "v1 header with a bad port";
      }
      if (last) return partial || field == 3 ? nullptr : "v1 header with too few fields";
      rest.remove_prefix(end + 1);
    }
    return "v1 header with too many fields";
  }

  static ProxyParse parse_v1(std::string_view bytes, ProxyHeader& header) {
    constexpr std::string_view prefix = "PROXY ";
    constexpr std::size_t longest = 107;  // §2.1: CRLF included
    if (bytes.substr(0, prefix.size()) != prefix.substr(0, bytes.size())) return fail("not a PROXY protocol header");
    if (bytes.size() <= prefix.size()) return {};
    // The CR must come within the first 106 bytes for its LF to be at most the 107th.
    const std::size_t cr = bytes.substr(0, longest - 1).find_first_of("\r\n");
    if (cr == std::string_view::npos) {
      if (bytes.size() >= longest - 1) return fail("v1 header without CRLF in 107 bytes");
      const char* reason = check_v1_fields(bytes.substr(prefix.size()), true);
      return reason != nullptr ? fail(reason) : ProxyParse{};
    }
    // §2.1: "The receiver must not tolerate a single CR or LF character to end the line".
    if (bytes[cr] == '\n') return fail("v1 header with a lone LF");
    if (cr + 1 < bytes.size() && bytes[cr + 1] != '\n') return fail("v1 header with a lone CR");
    const std::string_view line = bytes.substr(prefix.size(), cr - prefix.size());
    if (const char* reason = check_v1_fields(line, false)) return fail(reason);
    if (cr + 1 == bytes.size()) return {};  // a valid line; its LF is still to come

    ProxyHeader parsed;
    parsed.version_ = 1;
    const std::size_t protocol_end = line.find(' ');
    const std::string_view protocol = line.substr(0, protocol_end);
    if (protocol != "UNKNOWN") {
      // check_v1_fields() has checked the four fields: split them again.
      std::array<std::string_view, 4> fields;
      std::string_view rest = line.substr(protocol_end + 1);
      for (auto& field : fields) {
        const std::size_t end = rest.find(' ');
        field = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      }
      const auto port = [](std::string_view s) {
        unsigned value = 0;
        for (const char c : s) value = value * 10 + static_cast<unsigned>(c - '0');
        return static_cast<std::uint16_t>(value);
      };
      const auto host = [&](std::string_view s) {
        if (protocol == "TCP4") return std::string(s);  // already canonical
        in6_addr address{};
        (void)is_ipv6(s, false, &address);
        return ipv6_text(address);
      };
      parsed.command_ = ProxyHeader::Command::proxy;
      parsed.family_ = protocol == "TCP4" ? ProxyHeader::Family::inet : ProxyHeader::Family::inet6;
      parsed.source_ = Address(host(fields[0]), port(fields[2]));
      parsed.destination_ = Address(host(fields[1]), port(fields[3]));
    }
    header = std::move(parsed);
    return {Status::complete, cr + 2, ""};
  }

  static std::string ipv6_text(const in6_addr& address) {
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (inet_ntop(AF_INET6, &address, text.data(), text.size()) == nullptr) return {};
    return text.data();
  }

  static std::string ipv4_text(std::string_view four) {
    in_addr address{};
    std::memcpy(&address, four.data(), 4);
    std::array<char, INET_ADDRSTRLEN> text{};
    if (inet_ntop(AF_INET, &address, text.data(), text.size()) == nullptr) return {};
    return text.data();
  }

  // Checks the TLVs of a v2 PROXY header (§2.2.1-2.2.6): they fill the rest of the header
  // exactly, the registered types have their shapes, and a CRC32C matches. `whole` is the whole
  // header (16 + len bytes), its TLVs from `offset` on. Returns the reason it is invalid, or
  // nullptr.
  static const char* check_tlvs(std::string_view whole, std::size_t offset) noexcept {
    std::string_view rest = whole.substr(offset);
    std::optional<std::size_t> crc_at;
    std::uint8_t type = 0;
    std::string_view value;
    while (!rest.empty()) {
      if (!next_tlv(rest, type, value)) return "v2 TLV runs past the end of the header";
      switch (type) {
        case pp2_type_crc32c:
          if (value.size() != 4) return "v2 CRC32C TLV not 4 bytes long";
          // Two would leave it open which one is zeroed while the other is computed.
          if (crc_at) return "v2 header with two CRC32C TLVs";
          crc_at = static_cast<std::size_t>(value.data() - whole.data());
          break;
        case pp2_type_unique_id:
          if (value.size() > 128) return "v2 UNIQUE_ID TLV longer than 128 bytes";
          break;
        case pp2_type_ssl:
          if (value.size() < 5 || !whole_tlvs(value.substr(5))) return "malformed v2 SSL TLV";
          break;
        default:
          break;
      }
    }
    if (crc_at) {
      // §2.2.3: the checksum of the whole header with the checksum field taken as zeros. The
      // field is in network byte order, as everything in the header (HAProxy's sender and
      // receiver agree).
      constexpr std::string_view zeros("\0\0\0\0", 4);
      std::uint32_t state = crc32c_update(0xFFFFFFFFU, whole.substr(0, *crc_at));
      state = crc32c_update(state, zeros);
      state = crc32c_update(state, whole.substr(*crc_at + 4));
      if ((state ^ 0xFFFFFFFFU) != read_be(whole.substr(*crc_at, 4))) return "bad CRC32C";
    }
    return nullptr;
  }

  static ProxyParse parse_v2(std::string_view bytes, std::size_t max_tlv_size, ProxyHeader& header) {
    constexpr std::string_view signature("\r\n\r\n\0\r\nQUIT\n", 12);
    constexpr std::size_t fixed = 16;
    if (bytes.substr(0, signature.size()) != signature.substr(0, bytes.size()))
      return fail("not a PROXY protocol header");
    if (bytes.size() <= signature.size()) return {};
    const auto version_command = static_cast<unsigned char>(bytes[12]);
    if ((version_command >> 4) != 2) return fail("v2 header with a version other than 2");
    const unsigned command = version_command & 0x0FU;
    if (command > 1) return fail("v2 header with an unknown command");
    if (bytes.size() < 14) return {};
    const auto family_transport = static_cast<unsigned char>(bytes[13]);
    const unsigned family = family_transport >> 4;
    const unsigned transport = family_transport & 0x0FU;
    if (family > 3) return fail("v2 header with an unknown address family");
    if (transport > 2) return fail("v2 header with an unknown transport");
    const bool proxy = command == 1;
    // These servers are stream servers: a datagram's addresses would describe another socket.
    if (proxy && transport == 2) return fail("v2 DGRAM header on a stream server");
    if (bytes.size() < fixed) return {};

    const std::size_t length = read_be(bytes.substr(14, 2));
    if (length > 216 && length - 216 > max_tlv_size) return {Status::too_large, 0, "v2 header larger than the TLV cap"};
    // LOCAL, and PROXY with an UNSPEC family or transport, say "use the real addresses" (§2.2):
    // their address block and TLVs are skipped whatever they hold.
    const bool addresses = proxy && family != 0 && transport != 0;
    constexpr std::array<std::size_t, 4> block_sizes{0, 12, 36, 216};  // UNSPEC, INET, INET6, UNIX
    const std::size_t block = addresses ? block_sizes[family] : 0;
    if (length < block) return fail("v2 address block shorter than its family's");
    if (bytes.size() < fixed + length) return {};

    const std::string_view whole = bytes.substr(0, fixed + length);
    ProxyHeader parsed;
    parsed.version_ = 2;
    if (addresses) {
      if (const char* reason = check_tlvs(whole, fixed + block)) return fail(reason);
      const std::string_view a = whole.substr(fixed, block);
      parsed.command_ = ProxyHeader::Command::proxy;
      if (family == 3) {
        const auto path = [](std::string_view field) { return std::string(field.substr(0, field.find('\0'))); };
        parsed.family_ = ProxyHeader::Family::unix_socket;
        parsed.source_ = Address::from_path(path(a.substr(0, 108)));
        parsed.destination_ = Address::from_path(path(a.substr(108, 108)));
      } else if (family == 1) {
        parsed.family_ = ProxyHeader::Family::inet;
        parsed.source_ = Address(ipv4_text(a.substr(0, 4)), static_cast<std::uint16_t>(read_be(a.substr(8, 2))));
        parsed.destination_ = Address(ipv4_text(a.substr(4, 4)), static_cast<std::uint16_t>(read_be(a.substr(10, 2))));
      } else {
        in6_addr source{};
        in6_addr destination{};
        std::memcpy(&source, a.data(), 16);
        std::memcpy(&destination, a.data() + 16, 16);
        parsed.family_ = ProxyHeader::Family::inet6;
        parsed.source_ = Address(ipv6_text(source), static_cast<std::uint16_t>(read_be(a.substr(32, 2))));
        parsed.destination_ = Address(ipv6_text(destination), static_cast<std::uint16_t>(read_be(a.substr(34, 2))));
      }
      parsed.tlvs_ = whole.substr(fixed + block);
    }
    header = std::move(parsed);
    return {Status::complete, whole.size(), ""};
  }
};

}  // namespace detail

SOCKETSERVER_DECL ProxyParse parse_proxy_header(std::string_view bytes, std::size_t max_tlv_size, ProxyHeader& header) {
  if (bytes.empty()) return {};
  // §2.2: the v2 signature begins with CR, v1's "PROXY" with P; nothing else can begin either.
  if (bytes[0] == '\r') return detail::ProxyParser::parse_v2(bytes, max_tlv_size, header);
  if (bytes[0] == 'P') return detail::ProxyParser::parse_v1(bytes, header);
  return detail::ProxyParser::fail("not a PROXY protocol header");
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_PROXY_HEADER_HPP
