// AccessList: CIDR allow and deny entries, the longest prefix deciding; IPv4 as IPv4-mapped
// IPv6; the edges of each range; malformed entries refused by name; and a randomized check of
// match() against a linear scan over the same prefixes.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <socketserver/access_list.hpp>
#include <socketserver/address.hpp>

using socketserver::AccessList;
using socketserver::Address;
using Verdict = socketserver::AccessList::Verdict;

namespace Catch {
template <>
struct StringMaker<Verdict> {
  static std::string convert(Verdict v) {
    switch (v) {
      case Verdict::none:
        return "none";
      case Verdict::allow:
        return "allow";
      case Verdict::deny:
        return "deny";
    }
    return "?";
  }
};
}  // namespace Catch

namespace {

// The message of the std::invalid_argument that constructing the list throws; "" if none.
std::string rejection(std::vector<std::string> allow, std::vector<std::string> deny = {}) {
  try {
    const AccessList list(std::move(allow), std::move(deny));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("an empty access list matches nothing and allows everything", "[access_list]") {
  const AccessList list;
  CHECK(list.empty());
  CHECK(list.size() == 0);
  CHECK(list.match("10.0.0.1") == Verdict::none);
  CHECK(list.match("::1") == Verdict::none);
  CHECK(list.allows(Address("10.0.0.1", 80)));
  CHECK(list.allows(Address("2001:db8::1", 80)));
  const AccessList from_empty_vectors(std::vector<std::string>{}, std::vector<std::string>{});
  CHECK(from_empty_vectors.empty());
  CHECK(from_empty_vectors.allows(Address("192.0.2.1", 1)));
}

TEST_CASE("an IPv4 entry matches its first and last address and not the neighbours just outside",
          "[access_list][ipv4]") {
  const AccessList list({"192.0.2.0/24"});
  CHECK(list.match("192.0.2.0") == Verdict::allow);
  CHECK(list.match("192.0.2.255") == Verdict::allow);
  CHECK(list.match("192.0.2.77") == Verdict::allow);
  CHECK(list.match("192.0.1.255") == Verdict::none);
  CHECK(list.match("192.0.3.0") == Verdict::none);
  CHECK(list.match(Address("192.0.2.9", 4000)) == Verdict::allow);
  CHECK(list.match(Address("192.0.3.9", 4000)) == Verdict::none);
}

TEST_CASE("an IPv6 entry matches its first and last address and not the neighbours just outside",
          "[access_list][ipv6]") {
  const AccessList list({"2001:db8::/32"});
  CHECK(list.match("2001:db8::") == Verdict::allow);
  CHECK(list.match("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff") == Verdict::allow);
  CHECK(list.match("2001:db8:1234::5") == Verdict::allow);
  CHECK(list.match("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff") == Verdict::none);
  CHECK(list.match("2001:db9::") == Verdict::none);
  CHECK(list.match(Address("2001:db8::1", 443)) == Verdict::allow);
  CHECK(list.match("10.0.0.1") == Verdict::none);
}

TEST_CASE("a host entry is a /32 or /128 and matches that one address", "[access_list]") {
  const AccessList list({"192.0.2.7", "::1", "198.51.100.1/32", "2001:db8::2/128"});
  CHECK(list.match("192.0.2.7") == Verdict::allow);
  CHECK(list.match("192.0.2.6") == Verdict::none);
  CHECK(list.match("192.0.2.8") == Verdict::none);
  CHECK(list.match("::1") == Verdict::allow);
  CHECK(list.match("::") == Verdict::none);
  CHECK(list.match("::2") == Verdict::none);
  CHECK(list.match("198.51.100.1") == Verdict::allow);
  CHECK(list.match("198.51.100.2") == Verdict::none);
  CHECK(list.match("2001:db8::2") == Verdict::allow);
  CHECK(list.match("2001:db8::3") == Verdict::none);
}

TEST_CASE("0.0.0.0/0 covers every IPv4 address and ::/0 every address", "[access_list]") {
  const AccessList v4({"0.0.0.0/0"});
  CHECK(v4.match("0.0.0.0") == Verdict::allow);
  CHECK(v4.match("255.255.255.255") == Verdict::allow);
  CHECK(v4.match("::ffff:1.2.3.4") == Verdict::allow);
  CHECK(v4.match("::1") == Verdict::none);
  CHECK(v4.match("2001:db8::1") == Verdict::none);
  CHECK_FALSE(v4.allows(Address("2001:db8::1", 1)));

  const AccessList all({"::/0"});
  CHECK(all.match("::") == Verdict::allow);
  CHECK(all.match("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == Verdict::allow);
  CHECK(all.match("10.1.2.3") == Verdict::allow);

  // ::/80 contains ::ffff:0:0/96, so every IPv4 address.
  const AccessList low({}, {"::/80"});
  CHECK(low.match("203.0.113.5") == Verdict::deny);
  CHECK(low.match("::1") == Verdict::deny);
  CHECK(low.match("1::") == Verdict::none);
}

TEST_CASE("the longest matching prefix decides between nested entries", "[access_list]") {
  const AccessList list({"10.0.0.0/8", "10.1.2.0/24"}, {"10.1.0.0/16"});
  CHECK(list.match("10.1.2.3") == Verdict::allow);
  CHECK(list.match("10.1.3.1") == Verdict::deny);
  CHECK(list.match("10.2.0.1") == Verdict::allow);
  CHECK(list.match("11.0.0.1") == Verdict::none);
  CHECK(list.allows(Address("10.1.2.3", 1)));
  CHECK_FALSE(list.allows(Address("10.1.3.1", 1)));
  CHECK(list.allows(Address("10.2.0.1", 1)));
  CHECK_FALSE(list.allows(Address("11.0.0.1", 1)));  // a list with allow entries admits only them

  // The edges of each level: the inner range ends and the outer verdict resumes.
  CHECK(list.match("10.0.255.255") == Verdict::allow);
  CHECK(list.match("10.1.0.0") == Verdict::deny);
  CHECK(list.match("10.1.1.255") == Verdict::deny);
  CHECK(list.match("10.1.2.0") == Verdict::allow);
  CHECK(list.match("10.1.2.255") == Verdict::allow);
  CHECK(list.match("10.1.3.0") == Verdict::deny);
  CHECK(list.match("10.1.255.255") == Verdict::deny);
  CHECK(list.match("10.2.0.0") == Verdict::allow);
  CHECK(list.match("10.255.255.255") == Verdict::allow);
  CHECK(list.match("9.255.255.255") == Verdict::none);
}

TEST_CASE("a list of deny entries alone admits everything else", "[access_list]") {
  const AccessList list({}, {"203.0.113.0/24", "2001:db8::/32"});
  CHECK_FALSE(list.allows(Address("203.0.113.9", 1)));
  CHECK_FALSE(list.allows(Address("2001:db8::9", 1)));
  CHECK(list.allows(Address("203.0.114.9", 1)));
  CHECK(list.allows(Address("::1", 1)));
  CHECK(list.match("203.0.114.9") == Verdict::none);
}

TEST_CASE("a prefix in both lists counts as deny, however it is written", "[access_list]") {
  const AccessList list({"10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"},
                        {"10.0.0.0/8", "::ffff:192.0.2.0/120", "2001:0db8:0000::/32"});
  CHECK(list.match("10.9.9.9") == Verdict::deny);
  CHECK(list.match("192.0.2.1") == Verdict::deny);
  CHECK(list.match("2001:db8::1") == Verdict::deny);
  // The order of the lists does not matter either.
  const AccessList reversed({"::ffff:10.0.0.0/104"}, {"10.0.0.0/8"});
  CHECK(reversed.match("10.0.0.1") == Verdict::deny);
}

TEST_CASE("IPv4-mapped addresses match IPv4 entries and IPv4-mapped entries are IPv4 entries", "[access_list][ipv4]") {
  const AccessList list({"10.0.0.0/8", "::ffff:192.0.2.0/120", "::ffff:198.51.100.7"});
  CHECK(list.match("::ffff:10.1.2.3") == Verdict::allow);
  CHECK(list.match("::ffff:a01:203") == Verdict::allow);  // the same address, in hex
  CHECK(list.match(Address("::ffff:10.1.2.3", 1)) == Verdict::allow);
  CHECK(list.match("::ffff:11.0.0.1") == Verdict::none);
  CHECK(list.match("192.0.2.200") == Verdict::allow);
  CHECK(list.match("192.0.3.0") == Verdict::none);
  CHECK(list.match("198.51.100.7") == Verdict::allow);
  CHECK(list.match("198.51.100.8") == Verdict::none);
  // Not IPv4-mapped: the deprecated IPv4-compatible form is plain IPv6.
  CHECK(list.match("::10.1.2.3") == Verdict::none);

  // ::ffff:0:0/96 is 0.0.0.0/0.
  const AccessList mapped_all({}, {"::ffff:0:0/96"});
  CHECK(mapped_all.match("0.0.0.0") == Verdict::deny);
  CHECK(mapped_all.match("255.255.255.255") == Verdict::deny);
  CHECK(mapped_all.match("::fffe:ffff:ffff") == Verdict::none);
  CHECK(mapped_all.match("::1:0:0:0") == Verdict::none);
}

TEST_CASE("adjacent entries keep their own verdicts up to the shared edge", "[access_list]") {
  const AccessList list({"10.0.0.0/24", "10.0.2.0/23"}, {"10.0.1.0/24"});
  CHECK(list.match("10.0.0.255") == Verdict::allow);
  CHECK(list.match("10.0.1.0") == Verdict::deny);
  CHECK(list.match("10.0.1.255") == Verdict::deny);
  CHECK(list.match("10.0.2.0") == Verdict::allow);
  CHECK(list.match("10.0.3.255") == Verdict::allow);
  CHECK(list.match("10.0.4.0") == Verdict::none);

  // Adjacent with the same verdict: one range, still ending in the right place.
  const AccessList same({"10.0.0.0/25", "10.0.0.128/25"});
  CHECK(same.match("10.0.0.127") == Verdict::allow);
  CHECK(same.match("10.0.0.128") == Verdict::allow);
  CHECK(same.match("10.0.1.0") == Verdict::none);
  CHECK(same.match("9.255.255.255") == Verdict::none);
}

TEST_CASE("overlapping entries that share a first or a last address", "[access_list]") {
  // Same first address: 10.0.0.0/16 and 10.0.0.0/24; same last: 10.0.255.0/24 inside it.
  const AccessList list({"10.0.0.0/16"}, {"10.0.0.0/24", "10.0.255.0/24", "10.0.255.255"});
  CHECK(list.match("9.255.255.255") == Verdict::none);
  CHECK(list.match("10.0.0.0") == Verdict::deny);
  CHECK(list.match("10.0.0.255") == Verdict::deny);
  CHECK(list.match("10.0.1.0") == Verdict::allow);
  CHECK(list.match("10.0.254.255") == Verdict::allow);
  CHECK(list.match("10.0.255.0") == Verdict::deny);
  CHECK(list.match("10.0.255.255") == Verdict::deny);
  CHECK(list.match("10.1.0.0") == Verdict::none);

  // Three levels ending on the same address, and an allow inside a deny inside an allow.
  const AccessList chain({"10.0.0.0/8", "10.255.255.255"}, {"10.255.0.0/16"});
  CHECK(chain.match("10.254.255.255") == Verdict::allow);
  CHECK(chain.match("10.255.0.0") == Verdict::deny);
  CHECK(chain.match("10.255.255.254") == Verdict::deny);
  CHECK(chain.match("10.255.255.255") == Verdict::allow);
  CHECK(chain.match("11.0.0.0") == Verdict::none);
}

TEST_CASE("entries at the bottom and top of the address space", "[access_list][ipv6]") {
  const AccessList list({"::", "ffff::/16", "255.255.255.255"}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0"});
  CHECK(list.match("::") == Verdict::allow);
  CHECK(list.match("::1") == Verdict::none);
  CHECK(list.match("fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == Verdict::none);
  CHECK(list.match("ffff::") == Verdict::allow);
  CHECK(list.match("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe") == Verdict::allow);
  CHECK(list.match("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == Verdict::deny);
  CHECK(list.match("0.0.0.0") == Verdict::deny);
  CHECK(list.match("0.0.0.1") == Verdict::none);
  CHECK(list.match("255.255.255.254") == Verdict::none);
  CHECK(list.match("255.255.255.255") == Verdict::allow);
  CHECK(list.match("::1:0:0:0") == Verdict::none);
}

TEST_CASE("duplicate entries match once and still count in size()", "[access_list]") {
  const AccessList list({"10.0.0.0/8", "10.0.0.0/8", "::ffff:10.0.0.0/104"}, {"10.0.0.0/16", "10.0.0.0/16"});
  CHECK(list.size() == 5);
  CHECK_FALSE(list.empty());
  CHECK(list.match("10.0.0.1") == Verdict::deny);
  CHECK(list.match("10.0.255.255") == Verdict::deny);
  CHECK(list.match("10.1.0.0") == Verdict::allow);
  CHECK(list.match("11.0.0.0") == Verdict::none);
}

TEST_CASE("allowed() and denied() return the entries as given", "[access_list]") {
  const AccessList list({"10.0.0.0/8", "::ffff:192.0.2.0/120"}, {"2001:0db8::/32"});
  CHECK(list.allowed() == std::vector<std::string>{"10.0.0.0/8", "::ffff:192.0.2.0/120"});
  CHECK(list.denied() == std::vector<std::string>{"2001:0db8::/32"});
  CHECK(list.size() == 3);

  const AccessList from_vectors(std::vector<std::string>{"192.0.2.7"});
  CHECK(from_vectors.allowed() == std::vector<std::string>{"192.0.2.7"});
  CHECK(from_vectors.denied().empty());
}

TEST_CASE("a non-IP address is always allowed and matches nothing", "[access_list]") {
  const AccessList list({"::/0"}, {"::/0"});
  const Address unix_peer = Address::from_path("/tmp/s");
  CHECK(list.match(unix_peer) == Verdict::none);
  CHECK(list.allows(unix_peer));
  CHECK(list.match(Address()) == Verdict::none);
  CHECK(list.allows(Address()));
  CHECK(list.match(Address::from_path("")) == Verdict::none);
}

TEST_CASE("a host that does not parse matches nothing and is refused by an allow list", "[access_list]") {
  const AccessList list({"0.0.0.0/0", "::/0"});
  for (const std::string_view host :
       {"", "localhost", "10.0.0", "10.0.0.1.2", "010.0.0.1", "10.0.0.256", " 10.0.0.1", "10.0.0.1 ", "10.0.0.0/8",
        "[::1]", "::g", "1:2:3:4:5:6:7:8:9", "0000:0000:0000:0000:0000:ffff:255.255.255.255:1"}) {
    INFO("host: '" << host << "'");
    CHECK(list.match(host) == Verdict::none);
    CHECK_FALSE(list.allows(Address(std::string(host), 1)));
  }
  // The longest valid text, and one past it, where the stack buffer ends.
  CHECK(list.match("0000:0000:0000:0000:0000:ffff:255.255.255.255") == Verdict::allow);
  CHECK(list.match("00000:0000:0000:0000:0000:ffff:255.255.255.255") == Verdict::none);
  CHECK(list.match(std::string(1000, '1')) == Verdict::none);
  // With deny entries alone, a host that does not parse is admitted: nothing denies it.
  const AccessList deny_only({}, {"0.0.0.0/0"});
  CHECK(deny_only.allows(Address("localhost", 1)));
}

TEST_CASE("a zone id on a peer's address is ignored", "[access_list][ipv6]") {
  const AccessList list({}, {"fe80::/10"});
  CHECK(list.match("fe80::1%eth0") == Verdict::deny);
  CHECK(list.match(Address("fe80::1%2", 22)) == Verdict::deny);
  CHECK_FALSE(list.allows(Address("fe80::1%eth0", 22)));
  CHECK(list.match("fe80::1%") == Verdict::deny);
  CHECK(list.match("%eth0") == Verdict::none);
}

TEST_CASE("malformed entries are refused with a message that names the entry and says why", "[access_list]") {
  using Catch::Matchers::Contains;
  struct Case {
    std::string entry;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"", "is empty"},
      {"10.0.0.256", "bad address"},
      {"10.0.0", "bad address"},
      {"010.0.0.0/8", "bad address"},
      {"10.0.0.0.0/8", "bad address"},
      {"2001:db8:::/32", "bad address"},
      {"fe80::1::2", "bad address"},
      {"example.com", "bad address"},
      {"/8", "bad address"},
      {"+10.0.0.0/8", "bad address"},
      {"[::1]", "bad address"},
      {"10.0.0.0/", "empty prefix length"},
      {"10.0.0.0/33", "33 is out of range for IPv4 (0 to 32)"},
      {"::/129", "129 is out of range for IPv6 (0 to 128)"},
      {"10.0.0.0/1000", "not a plain decimal number"},
      {"10.0.0.0/+8", "not a plain decimal number"},
      {"10.0.0.0/-8", "not a plain decimal number"},
      {"10.0.0.0/08", "not a plain decimal number"},
      {"10.0.0.0/0x8", "not a plain decimal number"},
      {"10.0.0.0/8/8", "not a plain decimal number"},
      {"10.0.0.0/a", "not a plain decimal number"},
      {"10.0.0.0/255.0.0.0", "not a plain decimal number"},
      {"10.0.0.0 /8", "white space"},
      {" 10.0.0.0/8", "white space"},
      {"10.0.0.0/8 ", "white space"},
      {"10.0.0.0/\t8", "white space"},
      {"fe80::1%eth0", "zone id"},
      {"fe80::%1/64", "zone id"},
      {"10.1.2.3/8", "has host bits set (the network is 10.0.0.0/8)"},
      {"10.0.0.1/31", "has host bits set (the network is 10.0.0.0/31)"},
      {"2001:db8::1/32", "has host bits set (the network is 2001:db8::/32)"},
      {"::ffff:10.1.2.3/104", "has host bits set (the network is ::ffff:10.0.0.0/104)"},
      {"::ffff:10.0.0.0/8", "has host bits set (the network is ::/8)"},
  };
  for (const auto& c : cases) {
    INFO("entry: '" << c.entry << "'");
    const std::string allow_message = rejection({c.entry});
    CHECK_THAT(allow_message, Contains("access list entry '" + c.entry + "'") && Contains(c.why));
    const std::string deny_message = rejection({"10.0.0.0/8"}, {c.entry});
    CHECK_THAT(deny_message, Contains("access list entry '" + c.entry + "'") && Contains(c.why));
  }
  CHECK_THROWS_AS(AccessList({"10.1.2.3/8"}), std::invalid_argument);
  CHECK_THROWS_WITH(AccessList({"10.0.0.0/8"}, {"10.1.2.3/8"}),
                    "access list entry '10.1.2.3/8' has host bits set (the network is 10.0.0.0/8)");
}

namespace {

// The randomized check's own model: bytes and a bit-by-bit prefix test, sharing nothing with
// the list's ranges but the one 128-bit space.
using Bytes = std::array<unsigned char, 16>;

struct TestPrefix {
  Bytes network{};
  unsigned length = 0;  // in the 128-bit space
  bool deny = false;
};

bool bit(const Bytes& b, unsigned i) { return ((b[i / 8] >> (7 - i % 8)) & 1) != 0; }

void set_bit(Bytes& b, unsigned i, bool value) {
  const auto mask = static_cast<unsigned char>(1U << (7 - i % 8));
  b[i / 8] = static_cast<unsigned char>(value ? (b[i / 8] | mask) : (b[i / 8] & ~mask));
}

bool is_v4(const Bytes& b) {
  for (std::size_t i = 0; i < 10; ++i) {
    if (b[i] != 0) return false;
  }
  return b[10] == 0xff && b[11] == 0xff;
}

bool contains(const TestPrefix& p, const Bytes& address) {
  const unsigned whole = p.length / 8;
  for (unsigned i = 0; i < whole; ++i) {
    if (p.network[i] != address[i]) return false;
  }
  for (unsigned i = whole * 8; i < p.length; ++i) {
    if (bit(p.network, i) != bit(address, i)) return false;
  }
  return true;
}

// The longest prefix that contains the address; deny wins a tie.
Verdict linear_scan(const std::vector<TestPrefix>& prefixes, const Bytes& address) {
  int best = -1;
  Verdict verdict = Verdict::none;
  for (const auto& p : prefixes) {
    if (!contains(p, address)) continue;
    const int length = static_cast<int>(p.length);
    if (length > best) {
      best = length;
      verdict = p.deny ? Verdict::deny : Verdict::allow;
    } else if (length == best && p.deny) {
      verdict = Verdict::deny;
    }
  }
  return verdict;
}

std::string v6_text(const Bytes& b) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  REQUIRE(inet_ntop(AF_INET6, b.data(), text.data(), text.size()) != nullptr);
  return text.data();
}

std::string v4_text(const Bytes& b) { return fmt::format("{}.{}.{}.{}", b[12], b[13], b[14], b[15]); }

// One past, or one before, `b` as a 128-bit number, wrapping at the ends.
Bytes step(Bytes b, bool up) {
  for (std::size_t i = 16; i-- > 0;) {
    if (up ? b[i]++ != 0xff : b[i]-- != 0) break;
  }
  return b;
}

class RandomLists {
 public:
  explicit RandomLists(std::uint64_t seed) : rng_(seed) {
    // A few hot networks, so that random prefixes nest and share edges.
    for (int i = 0; i < 3; ++i) bases_.push_back(random_v4());
    for (int i = 0; i < 3; ++i) bases_.push_back(random_v6());
    bases_.push_back(Bytes{});                                          // ::
    bases_.push_back(Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff});  // 0.0.0.0
    Bytes top{};
    top.fill(0xff);
    bases_.push_back(top);
  }

  // Prefixes near the hot networks, written as entries; some repeated, some in the other list.
  void make(std::size_t count, std::vector<TestPrefix>& prefixes, std::vector<std::string>& allow,
            std::vector<std::string>& deny) {
    for (std::size_t i = 0; i < count; ++i) {
      TestPrefix p;
      if (!prefixes.empty() && below(10) == 0) {
        p = prefixes[below(prefixes.size())];  // the same prefix again, maybe with another verdict
      } else if (!prefixes.empty() && below(5) == 0) {
        // A prefix inside another that shares its first or its last address.
        const TestPrefix& outer = prefixes[below(prefixes.size())];
        p.length = outer.length + static_cast<unsigned>(below(129 - outer.length));
        p.network = outer.network;
        const bool at_end = below(2) == 0;
        for (unsigned b = outer.length; b < 128; ++b) set_bit(p.network, b, at_end && b < p.length);
      } else {
        const Bytes address = near(bases_[below(bases_.size())]);
        const bool v4 = is_v4(address);
        p.length = v4 ? 96 + static_cast<unsigned>(below(33)) : static_cast<unsigned>(below(129));
        p.network = address;
        for (unsigned b = p.length; b < 128; ++b) set_bit(p.network, b, false);
      }
      p.deny = below(3) == 0;
      prefixes.push_back(p);
      std::string entry;
      if (is_v4(p.network) && p.length >= 96 && below(4) != 0) {
        entry = v4_text(p.network);
        if (p.length != 128 || below(2) == 0) entry += fmt::format("/{}", p.length - 96);
      } else {
        entry = v6_text(p.network);
        if (p.length != 128 || below(2) == 0) entry += fmt::format("/{}", p.length);
      }
      (p.deny ? deny : allow).push_back(entry);
    }
  }

  // An address at an edge of a prefix, just outside one, inside one, near a hot network, or anywhere.
  Bytes address(const std::vector<TestPrefix>& prefixes) {
    const TestPrefix& p = prefixes[below(prefixes.size())];
    Bytes first = p.network;
    Bytes last = p.network;
    for (unsigned b = p.length; b < 128; ++b) set_bit(last, b, true);
    switch (below(8)) {
      case 0:
        return first;
      case 1:
        return last;
      case 2:
        return step(first, false);
      case 3:
        return step(last, true);
      case 4: {
        Bytes inside = p.network;
        for (unsigned b = p.length; b < 128; ++b) set_bit(inside, b, below(2) == 0);
        return inside;
      }
      case 5:
      case 6:
        return near(bases_[below(bases_.size())]);
      default:
        return below(2) == 0 ? random_v4() : random_v6();
    }
  }

  std::size_t below(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }

 private:
  Bytes random_v6() {
    Bytes b{};
    for (auto& byte : b) byte = static_cast<unsigned char>(below(256));
    return b;
  }

  Bytes random_v4() {
    Bytes b{};
    b[10] = b[11] = 0xff;
    for (std::size_t i = 12; i < 16; ++i) b[i] = static_cast<unsigned char>(below(256));
    return b;
  }

  // `base` with its low bits from a random point on made random (IPv4 stays IPv4).
  Bytes near(Bytes base) {
    const unsigned from = is_v4(base) ? 96 : 0;
    for (unsigned b = from + static_cast<unsigned>(below(129 - from)); b < 128; ++b) set_bit(base, b, below(2) == 0);
    return base;
  }

  std::mt19937_64 rng_;
  std::vector<Bytes> bases_;
};

// Builds `lists` random lists of `prefixes` entries each and checks `queries` addresses
// against each, through both match() overloads; returns the number of mismatches.
std::size_t cross_check(std::uint64_t seed, std::size_t lists, std::size_t prefixes, std::size_t queries) {
  RandomLists random(seed);
  std::size_t mismatches = 0;
  for (std::size_t l = 0; l < lists; ++l) {
    std::vector<TestPrefix> model;
    std::vector<std::string> allow;
    std::vector<std::string> deny;
    random.make(prefixes, model, allow, deny);
    const AccessList list(allow, deny);
    for (std::size_t q = 0; q < queries; ++q) {
      const Bytes address = random.address(model);
      const std::string text = is_v4(address) && random.below(2) == 0 ? v4_text(address) : v6_text(address);
      const Verdict expected = linear_scan(model, address);
      const Verdict by_text = list.match(text);
      const Verdict by_address = list.match(Address(text, 1));
      if (by_text != expected || by_address != expected) {
        if (++mismatches <= 5) {
          FAIL_CHECK(fmt::format(
              "list {} ({} allow, {} deny entries): {} is {} by the linear scan, {} and {} by match()", l, allow.size(),
              deny.size(), text, Catch::StringMaker<Verdict>::convert(expected),
              Catch::StringMaker<Verdict>::convert(by_text), Catch::StringMaker<Verdict>::convert(by_address)));
        }
      }
    }
  }
  return mismatches;
}

}  // namespace

TEST_CASE("an address parses exactly when inet_pton parses it, to the same value", "[access_list][random]") {
  const AccessList any({"::/0"});
  std::size_t valid = 0;
  const auto check = [&](const std::string& text) {
    INFO("text: '" << text << "'");
    const bool v6 = text.find(':') != std::string::npos;
    Bytes bytes{};
    const bool parses = inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), v6 ? bytes.data() : bytes.data() + 12) == 1;
    if (!parses) {
      CHECK(any.match(text) == Verdict::none);
      return;
    }
    ++valid;
    if (!v6) bytes[10] = bytes[11] = 0xff;
    const AccessList exact({v6 ? v6_text(bytes) : v4_text(bytes)});
    CHECK(exact.match(text) == Verdict::allow);
    CHECK(exact.match(v6_text(step(bytes, true))) == Verdict::none);
  };
  for (const char* text : {"::",
                           ":::",
                           "::1",
                           "1::",
                           "1:",
                           ":1",
                           "1::2::3",
                           "1:2:3:4:5:6:7:8",
                           "1:2:3:4:5:6:7::",
                           "::2:3:4:5:6:7:8",
                           "1:2:3:4:5:6:7:8::",
                           "::1:2:3:4:5:6:7:8",
                           "1:2:3:4:5:6:7",
                           "1:2:3:4:5:6:7:8:9",
                           "12345::",
                           "0000::0000",
                           "::ffff:1.2.3.4",
                           "::1.2.3.4",
                           "1:2:3:4:5:6:1.2.3.4",
                           "1:2:3:4:5:6:7:1.2.3.4",
                           "1:2:3:4:5:6::1.2.3.4",
                           "1:2:3:4:5::1.2.3.4",
                           "::1.2.3.4:5",
                           "1.2.3.4::",
                           "::ffff:01.2.3.4",
                           "::ffff:1.2.3",
                           "ABCD:EF01::",
                           "::g",
                           "0.0.0.0",
                           "255.255.255.255",
                           "256.0.0.0",
                           "1.2.3.",
                           ".1.2.3",
                           "1..2.3",
                           "00.1.2.3",
                           "1.2.3.4.",
                           "1.2.3.04",
                           ""}) {
    check(text);
  }
  // Valid texts, and each with a character inserted, deleted or replaced.
  std::mt19937_64 rng(99);
  const auto below = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  const std::string_view alphabet = "0123456789abcdefABCDEF::::....xg ";
  for (int i = 0; i < 20000; ++i) {
    Bytes bytes{};
    for (auto& byte : bytes) byte = below(3) == 0 ? 0 : static_cast<unsigned char>(below(256));
    if (below(3) == 0) std::fill(bytes.begin(), bytes.begin() + 2 * static_cast<std::ptrdiff_t>(below(7)), 0);
    if (below(4) == 0) std::fill(bytes.begin() + 2 * static_cast<std::ptrdiff_t>(below(7)), bytes.end(), 0);
    std::string text = below(3) == 0 ? v4_text(bytes) : v6_text(bytes);
    for (std::size_t edits = below(3); edits > 0 && !text.empty(); --edits) {
      const std::size_t at = below(text.size());
      const char c = alphabet[below(alphabet.size())];
      switch (below(3)) {
        case 0:
          text.insert(at, 1, c);
          break;
        case 1:
          text.erase(at, 1);
          break;
        default:
          text[at] = c;
      }
    }
    check(text);
  }
  // Random strings of the characters that matter most.
  for (int i = 0; i < 20000; ++i) {
    std::string text(below(20), ' ');
    for (auto& c : text) c = ":.01f"[below(5)];
    check(text);
  }
  CHECK(valid > 5000);
}

TEST_CASE("match() agrees with a linear scan over random prefixes", "[access_list][random]") {
  SECTION("many small lists, where shared edges and duplicates are common") {
    CHECK(cross_check(20240601, 400, 12, 60) == 0);
  }
  SECTION("one list of a few thousand prefixes") { CHECK(cross_check(7, 1, 3000, 20000) == 0); }
}
