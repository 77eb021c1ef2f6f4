// access_list_bench: AccessList with 100,000 prefixes (IPv4 /8 to /32, IPv6 /16 to /128, and
// half of each mixed), its build time and its lookups of random addresses, through
// match(const Address&) and match(std::string_view), both of which parse the address text.
// The target is a lookup of at most 1 us. Each lookup case runs 5 times; prints the median
// (and the spread) as one JSON line per case on stdout.
//
//   access_list_bench [--lookups N]   (default 1000000 per run)
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <socketserver/access_list.hpp>
#include <socketserver/address.hpp>

namespace {

using Clock = std::chrono::steady_clock;
using socketserver::AccessList;
using socketserver::Address;
using Bytes = std::array<unsigned char, 16>;

constexpr std::size_t prefix_count = 100000;
constexpr std::size_t query_pool = std::size_t{1} << 16;  // distinct addresses, cycled through
constexpr int runs = 5;

enum class Family { v4, v6, mixed };

struct Prefix {
  Bytes network{};  // IPv4 in bytes 12..15
  unsigned length = 0;
  bool v4 = false;
};

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  Prefix prefix(bool v4) {
    Prefix p;
    p.v4 = v4;
    p.length = v4 ? in(8, 32) : in(16, 128);
    const unsigned offset = v4 ? 96 : 0;
    if (v4) p.network[10] = p.network[11] = 0xff;  // ::ffff:a.b.c.d
    for (std::size_t i = v4 ? 12 : 0; i < 16; ++i) p.network[i] = static_cast<unsigned char>(in(0, 255));
    for (unsigned b = offset + p.length; b < 128; ++b) set_bit(p.network, b, false);
    return p;
  }

  // Half of the addresses inside a prefix of the list, half anywhere in the prefix's family.
  Bytes address(const std::vector<Prefix>& prefixes) {
    const Prefix& p = prefixes[in(0, static_cast<unsigned>(prefixes.size() - 1))];
    Bytes a = p.network;
    const unsigned offset = p.v4 ? 96 : 0;
    const unsigned from = in(0, 1) == 0 ? offset + p.length : offset;
    for (unsigned b = from; b < 128; ++b) set_bit(a, b, in(0, 1) == 1);
    return a;
  }

  bool coin() { return in(0, 1) == 1; }
  bool one_in(unsigned n) { return in(1, n) == 1; }

 private:
  unsigned in(unsigned low, unsigned high) { return std::uniform_int_distribution<unsigned>(low, high)(rng_); }

  static void set_bit(Bytes& b, unsigned i, bool value) {
    const auto mask = static_cast<unsigned char>(1U << (7 - i % 8));
    b[i / 8] = static_cast<unsigned char>(value ? (b[i / 8] | mask) : (b[i / 8] & ~mask));
  }

  std::mt19937_64 rng_;
};

std::string text(const Bytes& b, bool v4) {
  if (v4) return fmt::format("{}.{}.{}.{}", b[12], b[13], b[14], b[15]);
  std::array<char, INET6_ADDRSTRLEN> out{};
  if (inet_ntop(AF_INET6, b.data(), out.data(), out.size()) == nullptr) std::abort();
  return out.data();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double elapsed_ns(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

void run_case(const char* name, Family family, std::size_t lookups, std::uint64_t seed) {
  Generator random(seed);
  std::vector<Prefix> prefixes;
  std::vector<std::string> allow;
  std::vector<std::string> deny;
  prefixes.reserve(prefix_count);
  for (std::size_t i = 0; i < prefix_count; ++i) {
    const bool v4 = family == Family::v4 || (family == Family::mixed && random.coin());
    const Prefix p = random.prefix(v4);
    prefixes.push_back(p);
    (random.one_in(3) ? deny : allow).push_back(fmt::format("{}/{}", text(p.network, v4), p.length));
  }

  // The constructor parses, sorts and flattens; the lists are copied before the clock starts.
  std::vector<double> build_ms;
  AccessList list;
  for (int r = 0; r < runs; ++r) {
    auto allow_copy = allow;
    auto deny_copy = deny;
    const auto start = Clock::now();
    list = AccessList(std::move(allow_copy), std::move(deny_copy));
    build_ms.push_back(elapsed_ns(start) / 1e6);
  }

  std::vector<std::string> texts;
  std::vector<Address> addresses;
  texts.reserve(query_pool);
  addresses.reserve(query_pool);
  for (std::size_t i = 0; i < query_pool; ++i) {
    const Bytes a = random.address(prefixes);
    // An IPv4 peer of a dual-stack socket is ::ffff:a.b.c.d; a quarter of them are written so.
    const bool v4 =
        a[10] == 0xff && a[11] == 0xff && std::all_of(a.begin(), a.begin() + 10, [](auto c) { return c == 0; });
    texts.push_back(v4 && random.one_in(4) ? "::ffff:" + text(a, true) : text(a, v4));
    addresses.emplace_back(texts.back(), 4000);
  }

  const auto measure = [&](const char* lookup, auto&& match_one) {
    std::vector<double> ns;
    std::array<std::size_t, 3> verdicts{};  // none, allow, deny: also keeps the lookups from being optimised away
    for (int r = 0; r < runs; ++r) {
      const auto start = Clock::now();
      for (std::size_t i = 0; i < lookups; ++i) ++verdicts.at(static_cast<std::size_t>(match_one(i % query_pool)));
      ns.push_back(elapsed_ns(start) / static_cast<double>(lookups));
    }
    fmt::print(
        "{{\"case\": \"{}\", \"prefixes\": {}, \"lookup\": \"{}\", \"lookups_per_run\": {}, \"runs\": {}, "
        "\"median_ns\": {:.1f}, \"min_ns\": {:.1f}, \"max_ns\": {:.1f}, \"build_ms\": {:.1f}, "
        "\"none\": {}, \"allow\": {}, \"deny\": {}}}\n",
        name, prefix_count, lookup, lookups, runs, median(ns), *std::min_element(ns.begin(), ns.end()),
        *std::max_element(ns.begin(), ns.end()), median(build_ms), verdicts[0], verdicts[1], verdicts[2]);
    std::fflush(stdout);
  };
  measure("address", [&](std::size_t i) { return list.match(addresses[i]); });
  measure("string_view", [&](std::size_t i) { return list.match(std::string_view(texts[i])); });
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t lookups = 1000000;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--lookups" && i + 1 < args.size()) {
      lookups = std::strtoull(std::string(args[++i]).c_str(), nullptr, 10);
    } else {
      fmt::print(stderr, "usage: access_list_bench [--lookups N]\n");
      return 2;
    }
  }
  if (lookups == 0) {
    fmt::print(stderr, "access_list_bench: --lookups must be at least 1\n");
    return 2;
  }
  run_case("ipv4", Family::v4, lookups, 1);
  run_case("ipv6", Family::v6, lookups, 2);
  run_case("mixed", Family::mixed, lookups, 3);
  return 0;
}
