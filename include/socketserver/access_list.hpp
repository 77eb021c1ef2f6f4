#ifndef SOCKETSERVER_ACCESS_LIST_HPP
#define SOCKETSERVER_ACCESS_LIST_HPP

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <socketserver/address.hpp>
#include <socketserver/detail/config.hpp>

namespace socketserver {

/// Networks allowed and denied, in CIDR notation; the longest matching prefix decides.
///
/// Entries are "10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0", "::/0", or a single address,
/// "192.0.2.7" (/32) or "::1" (/128). The verdict for an address is that of the longest entry
/// that contains it; a prefix given in both lists counts as deny. So allow 10.0.0.0/8, deny
/// 10.1.0.0/16 and allow 10.1.2.0/24 admit 10.1.2.3, refuse 10.1.3.1 and admit 10.2.0.1.
///
/// IPv4 and IPv6 share one 128-bit space in which IPv4 a.b.c.d is the IPv4-mapped ::ffff:a.b.c.d
/// and an IPv4 /n is a /(96+n) (RFC 4291 2.5.5.2), because a dual-stack socket reports IPv4
/// peers as ::ffff:a.b.c.d. Hence the peer "::ffff:10.1.2.3" matches "10.0.0.0/8", the entry
/// "::ffff:10.0.0.0/104" is "10.0.0.0/8", "0.0.0.0/0" is "::ffff:0:0/96" and covers every IPv4
/// address and no other, and IPv6 prefixes that contain ::ffff:0:0/96 ("::/0", "::/80") cover
/// every IPv4 address too. Other embeddings (the deprecated ::a.b.c.d, NAT64's 64:ff9b::/96) are
/// plain IPv6 here.
///
/// Meant to be checked right after accept(), before anything is read from the peer: the
/// verdict needs only the peer's address. A list of allow entries alone can also name trusted
/// senders, such as the proxies whose PROXY protocol header is believed.
///
/// The entries are flattened once, in the constructor (O(n log n)), into sorted disjoint
/// ranges, each carrying the verdict of the innermost prefix that covers it; a lookup parses
/// the address text and does one binary search over them (O(log n), allocates nothing).
///
/// Give two lists in parentheses: AccessList({"10.0.0.0/8"}, {"10.1.0.0/16"}). In braces,
/// AccessList{{"10.0.0.0/8"}, {"10.1.0.0/16"}} is one list of two allow entries, as for any
/// initializer-list constructor.
///
/// Thread safety: const, shared freely; replace the whole list to change it.
class AccessList {
 public:
  /// What the list says about one address.
  enum class Verdict : unsigned char {
    none,   ///< no entry contains the address, or it is not an IP address
    allow,  ///< the longest entry that contains it is an allow entry
    deny,   ///< the longest entry that contains it is a deny entry (or is in both lists)
  };

  /// An empty list: it matches nothing and allows everything.
  AccessList() = default;

  /// Throws std::invalid_argument naming the entry for a malformed one.
  AccessList(std::vector<std::string> allow, std::vector<std::string> deny = {});

  /// Throws std::invalid_argument naming the entry for a malformed one.
  AccessList(std::initializer_list<std::string_view> allow, std::initializer_list<std::string_view> deny = {});

  /// The verdict of the longest prefix that contains `address`; a prefix in both lists counts
  /// as deny; none when nothing matches or the address is not IP (a Unix socket peer) or its
  /// host does not parse.
  ///
  /// A zone id on the host ("fe80::1%eth0", as asio writes a link-local peer) is ignored: the
  /// entry "fe80::/10" matches that peer.
  Verdict match(const Address& address) const noexcept {
    if (!address.is_ip()) return Verdict::none;
    return match(std::string_view(address.host()));
  }

  /// The verdict for an IPv4 or IPv6 address in text ("10.1.2.3", "::ffff:10.1.2.3", "::1"),
  /// as match(const Address&) gives it.
  Verdict match(std::string_view ip) const noexcept;

  /// Whether a connection from `address` is admitted: deny -> false, allow -> true, none ->
  /// true only when the allow list is empty (a list of allow entries admits only what they
  /// match; a list of deny entries alone admits everything else). Non-IP addresses are always
  /// admitted.
  bool allows(const Address& address) const noexcept {
    if (!address.is_ip()) return true;
    switch (match(address)) {
      case Verdict::deny:
        return false;
      case Verdict::allow:
        return true;
      case Verdict::none:
        break;
    }
    return allowed_.empty();
  }

  /// Whether no entries were given.
  bool empty() const noexcept { return size() == 0; }
  /// The number of entries given, allow and deny, duplicates included.
  std::size_t size() const noexcept { return allowed_.size() + denied_.size(); }
  /// The allow entries as given, for logs and docs.
  const std::vector<std::string>& allowed() const noexcept { return allowed_; }
  /// The deny entries as given, for logs and docs.
  const std::vector<std::string>& denied() const noexcept { return denied_; }

 private:
  // An address in the shared 128-bit space, most significant half first, ordered as the
  // number it is. unsigned __int128 would do, but -Wpedantic rejects it; a defaulted <=> would
  // too, but clang-tidy 14 reports its synthesized comparison with 0 as modernize-use-nullptr.
  struct Bits {
    std::uint64_t high = 0;
    std::uint64_t low = 0;
    friend bool operator==(const Bits&, const Bits&) = default;
    friend bool operator<(const Bits& a, const Bits& b) noexcept {
      return a.high < b.high || (a.high == b.high && a.low < b.low);
    }
  };

  // One entry, normalised: the first and last address it covers, its length in the 128-bit space.
  struct Prefix {
    Bits first;
    Bits last;
    unsigned length = 0;
    Verdict verdict = Verdict::none;
  };

  static constexpr std::uint64_t ones = ~std::uint64_t{0};
  static constexpr std::uint64_t v4_mapped = std::uint64_t{0xffff} << 32;  // ::ffff:0:0 in `low`

  static Bits netmask(unsigned length) noexcept;

  // Four decimal octets, without leading zeros, as inet_pton(AF_INET) takes them.
  static bool parse_v4(std::string_view text, std::uint32_t& out) noexcept;

  // What a character is in an IPv6 address: its value for a hex digit, or one of these.
  static constexpr unsigned char colon = 16;
  static constexpr unsigned char dot = 17;
  static constexpr unsigned char other = 18;
  static unsigned char char_class(char c) noexcept;

  // RFC 4291 2.2 text, as inet_pton(AF_INET6) takes it: eight groups of one to four hex
  // digits, one "::" standing for one or more zero groups, the last 32 bits optionally in
  // IPv4 notation. No zone id.
  //
  // Whether the next character is a digit or a colon is a coin flip for a branch predictor,
  // so the loop does the same work for both and decides with conditional moves. For a random
  // IPv6 address on the benchmark machine (bench/access_list_bench.cpp), glibc's inet_pton
  // took 380 ns, a loop that branches on each character 210, this one 90.
  static bool parse_v6(std::string_view text, Bits& out) noexcept;

  // An IPv4 or IPv6 address in text to bits, IPv4 as IPv4-mapped. Hand-written rather than
  // inet_pton, for speed (parse_v6) and because inet_pton needs a terminated string.
  static bool parse_literal(std::string_view text, bool& is_v4, Bits& out) noexcept;

  // A peer's address: a zone id is dropped, since entries cannot name one.
  static bool parse_address(std::string_view text, Bits& out) noexcept;

  [[noreturn]] static void reject(const std::string& entry, std::string_view why);

  // For messages only: inet_ntop writes the RFC 5952 form, "::ffff:10.0.0.0" included.
  static std::string format_network(const Bits& bits, bool is_v4);

  static Prefix parse_entry(const std::string& entry, Verdict verdict);

  // Flattens the nested prefixes into ranges_/verdicts_: range i runs from ranges_[i] to just
  // before ranges_[i + 1] (the last one to the top of the space), with the verdict of the
  // innermost prefix that covers it. CIDR prefixes are either nested or disjoint, so one sweep
  // in address order with a stack of the prefixes still open does it; neighbours with the same
  // verdict are merged.
  void build();

  std::vector<std::string> allowed_;
  std::vector<std::string> denied_;
  std::vector<Bits> ranges_;  // the start of each range, ascending; ranges_[0] is 0 unless the list is empty
  std::vector<Verdict> verdicts_;
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#include <fmt/core.h>

namespace socketserver {

SOCKETSERVER_DECL AccessList::AccessList(std::vector<std::string> allow, std::vector<std::string> deny)
    : allowed_(std::move(allow)), denied_(std::move(deny)) {
  build();
}

SOCKETSERVER_DECL AccessList::AccessList(std::initializer_list<std::string_view> allow,
                                         std::initializer_list<std::string_view> deny)
    : AccessList(std::vector<std::string>(allow.begin(), allow.end()),
                 std::vector<std::string>(deny.begin(), deny.end())) {}

SOCKETSERVER_DECL AccessList::Verdict AccessList::match(std::string_view ip) const noexcept {
  Bits bits;
  if (ranges_.empty() || !parse_address(ip, bits)) return Verdict::none;
  // The last range that starts at or below the address; the first range starts at 0.
  const auto after = std::upper_bound(ranges_.begin(), ranges_.end(), bits);
  return verdicts_[static_cast<std::size_t>(after - ranges_.begin()) - 1];
}

SOCKETSERVER_DECL AccessList::Bits AccessList::netmask(unsigned length) noexcept {
  if (length == 0) return {};
  if (length <= 64) return {ones << (64 - length), 0};
  return {ones, ones << (128 - length)};
}

SOCKETSERVER_DECL bool AccessList::parse_v4(std::string_view text, std::uint32_t& out) noexcept {
  std::uint32_t value = 0;
  std::size_t i = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (i == text.size() || text[i] != '.') return false;
      ++i;
    }
    const std::size_t start = i;
    unsigned number = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      number = number * 10 + static_cast<unsigned>(text[i] - '0');
      if (number > 255) return false;
      ++i;
    }
    if (i == start || (i - start > 1 && text[start] == '0')) return false;
    value = (value << 8) | number;
  }
  out = value;
  return i == text.size();
}

SOCKETSERVER_DECL unsigned char AccessList::char_class(char c) noexcept {
  static constexpr auto table = [] {
    std::array<unsigned char, 256> t{};
    t.fill(other);
    for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<unsigned char>(i);
    for (int i = 0; i < 6; ++i) t['a' + i] = t['A' + i] = static_cast<unsigned char>(10 + i);
    t[':'] = colon;
    t['.'] = dot;
    return t;
  }();
  return table[static_cast<unsigned char>(c)];
}

SOCKETSERVER_DECL bool AccessList::parse_v6(std::string_view text, Bits& out) noexcept {
  const std::size_t n = text.size();
  if (n < 2 || (text[0] == ':' && text[1] != ':')) return false;  // a lone leading ':'
  std::array<std::uint16_t, 9> groups{};                          // [8] takes the writes past a ninth group, an error
  unsigned count = 0;                                             // groups finished
  unsigned digits = 0;                                            // in the group being read
  unsigned value = 0;                                             // of the group being read
  unsigned gaps = 0;                                              // "::" seen
  unsigned gap = 0;                                               // the number of groups before "::"
  unsigned longest = 0;                                           // digits in the longest group
  bool ends_in_gap = false;
  std::size_t i = 0;
  if (text[0] == ':') {  // a leading "::"
    gaps = 1;
    ends_in_gap = true;
    i = 2;
  }
  for (; i < n; ++i) {
    const unsigned char c = char_class(text[i]);
    if (c == dot) {  // the IPv4 tail: the rest of the text, from the start of this group
      std::uint32_t v4 = 0;
      if (count > 6 || !parse_v4(text.substr(i - digits), v4)) return false;
      groups[count++] = static_cast<std::uint16_t>(v4 >> 16);
      groups[count++] = static_cast<std::uint16_t>(v4 & 0xffff);
      digits = 0;
      ends_in_gap = false;
      break;
    }
    if (c == other) return false;
    const bool is_colon = c == colon;
    const bool is_gap = is_colon && digits == 0;  // a colon right after a colon
    gaps += is_gap ? 1 : 0;
    gap = is_gap ? count : gap;
    count += is_colon && !is_gap ? 1 : 0;
    value = is_colon ? 0 : (value << 4) | c;
    digits = is_colon ? 0 : digits + 1;
    longest = std::max(longest, digits);
    ends_in_gap = is_gap || (ends_in_gap && digits == 0);
    groups[std::min(count, 8U)] = static_cast<std::uint16_t>(value);
  }
  if (digits > 0) {
    ++count;  // the last group
  } else if (!ends_in_gap && i == n) {
    return false;  // a trailing lone ':'
  }
  if (longest > 4 || gaps > 1 || count > 8 || (gaps == 1 ? count == 8 : count != 8)) return false;
  if (gaps == 1) {
    // Move the groups after "::" to the end; zeros fill the gap.
    std::copy_backward(groups.begin() + gap, groups.begin() + count, groups.begin() + 8);
    std::fill_n(groups.begin() + gap, 8 - count, std::uint16_t{0});
  }
  out = {};
  for (std::size_t g = 0; g < 4; ++g) out.high = (out.high << 16) | groups[g];
  for (std::size_t g = 4; g < 8; ++g) out.low = (out.low << 16) | groups[g];
  return true;
}

SOCKETSERVER_DECL bool AccessList::parse_literal(std::string_view text, bool& is_v4, Bits& out) noexcept {
  is_v4 = text.find(':') == std::string_view::npos;
  if (!is_v4) return parse_v6(text, out);
  std::uint32_t v4 = 0;
  if (!parse_v4(text, v4)) return false;
  out = {0, v4_mapped | v4};
  return true;
}

SOCKETSERVER_DECL bool AccessList::parse_address(std::string_view text, Bits& out) noexcept {
  bool is_v4 = false;
  return parse_literal(text.substr(0, text.find('%')), is_v4, out);
}

SOCKETSERVER_DECL void AccessList::reject(const std::string& entry, std::string_view why) {
  throw std::invalid_argument(fmt::format("access list entry '{}' {}", entry, why));
}

SOCKETSERVER_DECL std::string AccessList::format_network(const Bits& bits, bool is_v4) {
  if (is_v4) {
    return fmt::format("{}.{}.{}.{}", (bits.low >> 24) & 0xff, (bits.low >> 16) & 0xff, (bits.low >> 8) & 0xff,
                       bits.low & 0xff);
  }
  std::array<unsigned char, 16> bytes{};
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(bits.high >> (56 - 8 * i));
    bytes[8 + i] = static_cast<unsigned char>(bits.low >> (56 - 8 * i));
  }
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (inet_ntop(AF_INET6, bytes.data(), text.data(), text.size()) == nullptr) return "?";
  return text.data();
}

SOCKETSERVER_DECL AccessList::Prefix AccessList::parse_entry(const std::string& entry, Verdict verdict) {
  if (entry.empty()) reject(entry, "is empty");
  if (entry.find_first_of(" \t\n\v\f\r") != std::string::npos) reject(entry, "contains white space");
  if (entry.find('%') != std::string::npos) reject(entry, "has an IPv6 zone id, which an access list cannot match");
  const auto slash = entry.find('/');
  const std::string_view literal = std::string_view(entry).substr(0, slash);
  bool is_v4 = false;
  Prefix prefix;
  if (!parse_literal(literal, is_v4, prefix.first)) {
    reject(entry, fmt::format("has a bad address: '{}' is not an IPv4 or IPv6 address", literal));
  }
  const unsigned max_length = is_v4 ? 32 : 128;
  unsigned length = max_length;
  if (slash != std::string::npos) {
    const std::string_view digits = std::string_view(entry).substr(slash + 1);
    if (digits.empty()) reject(entry, "has an empty prefix length");
    // Only what a person writes: no sign, no leading zeros, nothing after the digits.
    const bool plain = digits.size() <= 3 && (digits.size() == 1 || digits.front() != '0') &&
                       std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!plain) reject(entry, fmt::format("has a bad prefix length: '{}' is not a plain decimal number", digits));
    length = 0;
    for (const char c : digits) length = length * 10 + static_cast<unsigned>(c - '0');
    if (length > max_length) {
      reject(entry, fmt::format("has a bad prefix length: {} is out of range for {} (0 to {})", length,
                                is_v4 ? "IPv4" : "IPv6", max_length));
    }
  }
  prefix.length = is_v4 ? 96 + length : length;
  prefix.verdict = verdict;
  const Bits mask = netmask(prefix.length);
  const Bits network{prefix.first.high & mask.high, prefix.first.low & mask.low};
  if (network != prefix.first) {
    reject(entry, fmt::format("has host bits set (the network is {}/{})", format_network(network, is_v4), length));
  }
  prefix.last = {network.high | ~mask.high, network.low | ~mask.low};
  return prefix;
}

SOCKETSERVER_DECL void AccessList::build() {
  std::vector<Prefix> prefixes;
  prefixes.reserve(size());
  for (const auto& entry : allowed_) prefixes.push_back(parse_entry(entry, Verdict::allow));
  for (const auto& entry : denied_) prefixes.push_back(parse_entry(entry, Verdict::deny));
  if (prefixes.empty()) return;

  // Outer prefixes before the ones they contain; of one prefix given twice, deny first, kept.
  std::sort(prefixes.begin(), prefixes.end(), [](const Prefix& a, const Prefix& b) {
    if (a.first != b.first) return a.first < b.first;
    if (a.length != b.length) return a.length < b.length;
    return a.verdict > b.verdict;
  });
  prefixes.erase(
      std::unique(prefixes.begin(), prefixes.end(),
                  [](const Prefix& a, const Prefix& b) { return a.first == b.first && a.length == b.length; }),
      prefixes.end());

  ranges_.reserve(2 * prefixes.size() + 1);
  verdicts_.reserve(2 * prefixes.size() + 1);
  const auto start_range = [this](const Bits& start, Verdict verdict) {
    // A range that would be empty (a prefix that starts where the last one did, or ends
    // where the next begins) is overwritten.
    if (!ranges_.empty() && ranges_.back() == start) {
      ranges_.pop_back();
      verdicts_.pop_back();
    }
    if (!verdicts_.empty() && verdicts_.back() == verdict) return;
    ranges_.push_back(start);
    verdicts_.push_back(verdict);
  };
  const auto after = [](const Bits& bits) {
    return bits.low == ones ? Bits{bits.high + 1, 0} : Bits{bits.high, bits.low + 1};
  };

  std::vector<const Prefix*> open;
  start_range({}, Verdict::none);
  for (const auto& prefix : prefixes) {
    while (!open.empty() && open.back()->last < prefix.first) {
      const Bits end = open.back()->last;
      open.pop_back();
      start_range(after(end), open.empty() ? Verdict::none : open.back()->verdict);
    }
    start_range(prefix.first, prefix.verdict);
    open.push_back(&prefix);
  }
  // A prefix that reaches the top of the space leaves nothing after it, nor do those around it.
  while (!open.empty() && open.back()->last != Bits{ones, ones}) {
    const Bits end = open.back()->last;
    open.pop_back();
    start_range(after(end), open.empty() ? Verdict::none : open.back()->verdict);
  }
  ranges_.shrink_to_fit();
  verdicts_.shrink_to_fit();
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_ACCESS_LIST_HPP
