// libFuzzer harness for parse_proxy_header(). The sanitizers catch a read out of bounds or an
// exception; the checks below trap when the parser's answers disagree with each other:
//   - complete: size <= the input's and <= max_proxy_header_size(cap), and the header is
//     consistent (local means no addresses, proxy means a family);
//   - every beginning of a complete header is incomplete, and leaves the ProxyHeader untouched;
//   - the header's bytes alone, or followed by other bytes, give the same size and header;
//   - a larger TLV cap changes nothing unless the smaller one said too_large;
//   - one byte more never turns invalid or too_large into anything else, nor complete into
//     another size.
//
// Build and run (corpus: fuzz/corpus/proxy_header):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_proxy_header.cpp -o fuzz_pp
//   ./fuzz_pp -max_total_time=600 new_corpus/ fuzz/corpus/proxy_header
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <socketserver/proxy_header.hpp>

namespace {

using socketserver::ProxyHeader;
using socketserver::ProxyParse;
using Status = socketserver::ProxyParse::Status;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

ProxyParse parse(std::string_view bytes, std::size_t cap, ProxyHeader& header) {
  const ProxyParse r = socketserver::parse_proxy_header(bytes, cap, header);
  check(r.reason != nullptr);
  if (r.status == Status::complete) {
    check(r.size > 0 && r.size <= bytes.size() && r.size <= socketserver::max_proxy_header_size(cap));
    check(*r.reason == '\0');
  } else {
    check(r.size == 0);
    check((*r.reason == '\0') == (r.status == Status::incomplete));
  }
  return r;
}

bool same(const ProxyHeader& a, const ProxyHeader& b) {
  return a.version() == b.version() && a.command() == b.command() && a.family() == b.family() &&
         a.source() == b.source() && a.destination() == b.destination() && a.tlv_bytes() == b.tlv_bytes();
}

std::size_t size_of(const std::optional<std::string_view>& v) { return v ? v->size() + 1 : 0; }

// Calls every accessor, so that the sanitizers see what each one reads, and checks what a
// complete header promises.
void check_header(const ProxyHeader& h) {
  using Command = ProxyHeader::Command;
  using Family = ProxyHeader::Family;
  check(h.version() == 1 || h.version() == 2);
  if (h.command() == Command::local) {
    check(h.family() == Family::unspec && h.source().empty() && h.destination().empty() && h.tlv_bytes().empty());
  } else {
    check(h.family() != Family::unspec);
    const bool ip = h.family() != Family::unix_socket;
    check(h.source().is_ip() == ip && h.destination().is_ip() == ip);
    check(!ip || (!h.source().host().empty() && !h.destination().host().empty()));
  }
  if (h.version() == 1) check(h.tlv_bytes().empty());

  const std::string_view all = h.tlv_bytes();
  std::size_t total = 0;
  h.for_each_tlv([&](std::uint8_t, std::string_view value) {
    check(value.data() >= all.data() && value.data() + value.size() <= all.data() + all.size());
    total += 3 + value.size();
  });
  check(total == all.size());  // the parser took only TLVs that fill the block exactly

  std::size_t n = h.source().path().size() + h.destination().path().size() + h.source().port();
  for (const std::uint8_t type : {0x01, 0x02, 0x03, 0x04, 0x05, 0x20, 0x30, 0xE0}) n += size_of(h.tlv(type));
  n += size_of(h.alpn()) + size_of(h.authority()) + size_of(h.unique_id());
  n += size_of(h.ssl_version()) + size_of(h.ssl_cn()) + size_of(h.ssl_cipher()) + size_of(h.ssl_tlv(0x24));
  n += h.ssl() ? 1 : 0;
  if (const auto client = h.ssl_client()) {
    check(h.ssl_verify().has_value());
    check(h.ssl() == ((*client & 1) != 0));
    n += *client;
  } else {
    check(!h.ssl() && !h.ssl_verify() && !h.ssl_version() && !h.ssl_tlv(0x24));
  }
  if (const auto id = h.unique_id()) check(id->size() <= 128);
  if (const auto crc = h.tlv(0x03)) check(crc->size() == 4);
  volatile std::size_t sink = n;
  (void)sink;
}

// The complete header `bytes` (size bytes): its beginnings, alone, and followed by other bytes.
void check_complete(std::string_view input, std::size_t size, std::size_t cap, const ProxyHeader& header) {
  const std::string_view bytes = input.substr(0, size);
  // Every beginning up to 300 bytes, then a few: a beginning costs a parse of its own.
  const auto incomplete = [&](std::size_t n) {
    ProxyHeader untouched;
    check(parse(bytes.substr(0, n), cap, untouched).status == Status::incomplete);
    check(untouched.version() == 0);
  };
  for (std::size_t n = 0; n < size && n < 300; ++n) incomplete(n);
  if (size > 300) {
    incomplete(size - 1);
    incomplete(size - 2);
    incomplete(size / 2);
  }

  ProxyHeader alone;
  const ProxyParse a = parse(bytes, cap, alone);
  check(a.status == Status::complete && a.size == size && same(alone, header));

  for (const std::string_view tail : {std::string_view("\r\n"), std::string_view("PROXY UNKNOWN\r\n"), input}) {
    const std::string extended = std::string(bytes) + std::string(tail);
    ProxyHeader more;
    const ProxyParse m = parse(extended, cap, more);
    check(m.status == Status::complete && m.size == size && same(more, header));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr std::array<std::size_t, 3> caps{0, 300, 65535};  // 65535: any v2 length fits
  ProxyParse smaller;
  ProxyHeader smaller_header;
  for (std::size_t i = 0; i < caps.size(); ++i) {
    ProxyHeader header;
    const ProxyParse r = parse(input, caps[i], header);
    if (r.status == Status::complete) {
      check_header(header);
      check_complete(input, r.size, caps[i], header);
    }
    if (i > 0 && smaller.status != Status::too_large)
      check(r.status == smaller.status && r.size == smaller.size &&
            (r.status != Status::complete || same(header, smaller_header)));
    if (size > 0) {
      ProxyHeader shorter_header;
      const ProxyParse shorter = parse(input.substr(0, size - 1), caps[i], shorter_header);
      if (shorter.status == Status::invalid || shorter.status == Status::too_large) check(r.status == shorter.status);
      if (shorter.status == Status::complete) check(r.status == Status::complete && r.size == shorter.size);
      if (r.status == Status::incomplete) check(shorter.status == Status::incomplete);
    }
    smaller = r;
    smaller_header = header;
  }
  return 0;
}
