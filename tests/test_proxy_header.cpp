// ProxyHeader and parse_proxy_header(): the PROXY protocol's v1 text line and v2 binary header
// (HAProxy's doc/proxy-protocol.txt), accepted and rejected byte by byte; v2 TLVs, the SSL TLV's
// sub-TLVs and CRC32C.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <socketserver/address.hpp>
#include <socketserver/proxy_header.hpp>

using socketserver::Address;
using socketserver::ProxyHeader;
using socketserver::ProxyParse;
using Status = socketserver::ProxyParse::Status;
using Command = socketserver::ProxyHeader::Command;
using Family = socketserver::ProxyHeader::Family;

namespace {

constexpr std::size_t cap = 1024;  // max_tlv_size unless a test says otherwise

struct Parsed {
  ProxyParse result;
  ProxyHeader header;
};

Parsed parse(std::string_view bytes, std::size_t max_tlv_size = cap) {
  Parsed p;
  p.result = socketserver::parse_proxy_header(bytes, max_tlv_size, p.header);
  return p;
}

Status status_of(std::string_view bytes, std::size_t max_tlv_size = cap) {
  return parse(bytes, max_tlv_size).result.status;
}

// The first length at which a beginning of `header` is not `incomplete`; header.size() when
// every one is.
std::size_t first_prefix_not_incomplete(std::string_view header) {
  for (std::size_t n = 0; n < header.size(); ++n)
    if (status_of(header.substr(0, n)) != Status::incomplete) return n;
  return header.size();
}

std::string be16(std::size_t value) {
  return {static_cast<char>((value >> 8) & 0xFF), static_cast<char>(value & 0xFF)};
}

std::string be32(std::uint32_t value) { return be16(value >> 16) + be16(value & 0xFFFF); }

const std::string signature("\r\n\r\n\0\r\nQUIT\n", 12);

// A v2 header: the signature, the version/command and family/transport bytes, the length of
// `body`, then `body`.
std::string v2(unsigned char version_command, unsigned char family_transport, std::string_view body) {
  std::string h = signature;
  h += static_cast<char>(version_command);
  h += static_cast<char>(family_transport);
  h += be16(body.size());
  h += body;
  return h;
}

std::string tlv(std::uint8_t type, std::string_view value) {
  return static_cast<char>(type) + be16(value.size()) + std::string(value);
}

// 192.0.2.1:56324 -> 198.51.100.2:443.
const std::string inet_block = std::string("\xC0\x00\x02\x01\xC6\x33\x64\x02", 8) + be16(56324) + be16(443);

// [2001:db8::1]:40000 -> [2001:db8::2:1]:8443.
const std::string inet6_block = std::string("\x20\x01\x0D\xB8\0\0\0\0\0\0\0\0\0\0\0\x01", 16) +
                                std::string("\x20\x01\x0D\xB8\0\0\0\0\0\0\0\0\0\x02\0\x01", 16) + be16(40000) +
                                be16(8443);

// Two 108-byte sun_path fields; a path shorter than 108 is padded with NULs.
std::string unix_block(std::string_view source, std::string_view destination) {
  std::string block(216, '\0');
  block.replace(0, source.size(), source);
  block.replace(108, destination.size(), destination);
  return block;
}

// A v2 PROXY TCP/IPv4 header with `tlvs` after its address block.
std::string inet_with(std::string_view tlvs) { return v2(0x21, 0x11, inet_block + std::string(tlvs)); }

// Writes the CRC32C of `header` (with its checksum field zero) into the 4 bytes at `at`.
std::string checksummed(std::string header, std::size_t at) {
  header.replace(at, 4, std::string(4, '\0'));
  header.replace(at, 4, be32(socketserver::detail::crc32c(header)));
  return header;
}

// "PROXY UNKNOWN " padded with 'x' to `size` bytes.
std::string unknown_padded(std::size_t size) {
  std::string line = "PROXY UNKNOWN ";
  line.resize(size, 'x');
  return line;
}

const std::string v1_worst_case =  // §2.1's worst case: 107 bytes
    "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

}  // namespace

TEST_CASE("crc32c is the Castagnoli CRC of RFC 4960", "[proxy_header][crc32c]") {
  CHECK(socketserver::detail::crc32c("123456789") == 0xE3069283U);
  CHECK(socketserver::detail::crc32c("") == 0U);
  std::uint32_t state = socketserver::detail::crc32c_update(0xFFFFFFFFU, "1234");
  state = socketserver::detail::crc32c_update(state, "56789");
  CHECK((state ^ 0xFFFFFFFFU) == 0xE3069283U);
  static_assert(socketserver::detail::crc32c("123456789") == 0xE3069283U);
}

TEST_CASE("max_proxy_header_size is 16 + 216 + the TLV cap, never less than v1's 107", "[proxy_header]") {
  CHECK(socketserver::max_proxy_header_size(0) == 232);
  CHECK(socketserver::max_proxy_header_size(1024) == 1256);
  constexpr std::size_t most = std::numeric_limits<std::size_t>::max();
  CHECK(socketserver::max_proxy_header_size(most) == most);
  CHECK(socketserver::max_proxy_header_size(most - 232) == most);
  static_assert(socketserver::max_proxy_header_size(0) >= 107);
}

TEST_CASE("a default ProxyHeader has no version, no addresses and no TLVs", "[proxy_header]") {
  const ProxyHeader header;
  CHECK(header.version() == 0);
  CHECK(header.command() == Command::local);
  CHECK(header.family() == Family::unspec);
  CHECK(header.source().empty());
  CHECK(header.destination().empty());
  CHECK(header.tlv_bytes().empty());
  CHECK_FALSE(header.tlv(0x01));
  CHECK_FALSE(header.ssl());
  CHECK_FALSE(header.ssl_verify());
}

TEST_CASE("v1 TCP4 gives the client and the address it connected to", "[proxy_header][v1]") {
  const std::string line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
  const auto p = parse(line + "GET / HTTP/1.1\r\n");
  REQUIRE(p.result.status == Status::complete);
  CHECK(p.result.size == line.size());
  CHECK(std::string_view(p.result.reason).empty());
  CHECK(p.header.version() == 1);
  CHECK(p.header.command() == Command::proxy);
  CHECK(p.header.family() == Family::inet);
  CHECK(p.header.source() == Address("192.168.0.1", 56324));
  CHECK(p.header.destination() == Address("192.168.0.11", 443));
  CHECK(p.header.tlv_bytes().empty());
  CHECK_FALSE(p.header.alpn());

  const auto widest = parse("PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n");
  REQUIRE(widest.result.status == Status::complete);
  CHECK(widest.result.size == 44);
  CHECK(widest.header.source() == Address("255.255.255.255", 65535));
  CHECK(widest.header.destination() == Address("0.0.0.0", 0));
}

TEST_CASE("v1 TCP6 gives IPv6 addresses in inet_ntop's canonical text", "[proxy_header][v1]") {
  const auto p = parse("PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0001 ::1 65535 0\r\n");
  REQUIRE(p.result.status == Status::complete);
  CHECK(p.header.version() == 1);
  CHECK(p.header.command() == Command::proxy);
  CHECK(p.header.family() == Family::inet6);
  CHECK(p.header.source() == Address("2001:db8::1", 65535));
  CHECK(p.header.destination() == Address("::1", 0));

  const std::string longest =  // §2.1's TCP6 maximum: 104 bytes
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  CHECK(longest.size() == 104);
  const auto l = parse(longest);
  REQUIRE(l.result.status == Status::complete);
  CHECK(l.result.size == 104);
  CHECK(l.header.source().host() == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

  // inet_pton's forms are taken: an IPv4-mapped address with its dotted tail.
  const auto mapped = parse("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n");
  REQUIRE(mapped.result.status == Status::complete);
  CHECK(mapped.header.source().host() == "::ffff:192.0.2.1");
}

TEST_CASE("v1 UNKNOWN, short or long form, is local: use the real addresses", "[proxy_header][v1]") {
  const auto short_form = parse("PROXY UNKNOWN\r\nhello");
  REQUIRE(short_form.result.status == Status::complete);
  CHECK(short_form.result.size == 15);
  CHECK(short_form.header.version() == 1);
  CHECK(short_form.header.command() == Command::local);
  CHECK(short_form.header.family() == Family::unspec);
  CHECK(short_form.header.source().empty());
  CHECK(short_form.header.destination().empty());

  const auto long_form = parse("PROXY UNKNOWN 192.168.0.1 192.168.0.11 56324 443\r\n");
  REQUIRE(long_form.result.status == Status::complete);
  CHECK(long_form.header.command() == Command::local);
  CHECK(long_form.header.source().empty());

  // §2.1: "the receiver must ignore anything presented before the CRLF".
  CHECK(status_of("PROXY UNKNOWN  anything\tat all, even \x01\xFF\r\n") == Status::complete);
  CHECK(status_of("PROXY UNKNOWN \r\n") == Status::complete);
  // ...but the protocol field itself is UNKNOWN, not a word that begins with it.
  CHECK(status_of("PROXY UNKNOWNX\r\n") == Status::invalid);
  CHECK(status_of("PROXY UNKNOWNX") == Status::invalid);
}

TEST_CASE("v1 takes the 107-byte worst case and no more", "[proxy_header][v1][limits]") {
  REQUIRE(v1_worst_case.size() == 107);
  const auto worst = parse(v1_worst_case + "data");
  REQUIRE(worst.result.status == Status::complete);
  CHECK(worst.result.size == 107);

  const auto at_107 = parse(unknown_padded(105) + "\r\n");
  REQUIRE(at_107.result.status == Status::complete);
  CHECK(at_107.result.size == 107);
  CHECK(status_of(unknown_padded(105) + "\r") == Status::incomplete);
  CHECK(status_of(unknown_padded(105)) == Status::incomplete);

  // A CRLF that would end at byte 108 is too late, so is no CRLF in 107 or 108 bytes. With 106
  // bytes and no CR, byte 107 cannot complete a CRLF: invalid already.
  CHECK(status_of(unknown_padded(106) + "\r\n") == Status::invalid);
  const auto no_crlf = parse(unknown_padded(107));
  CHECK(no_crlf.result.status == Status::invalid);
  CHECK(std::string_view(no_crlf.result.reason) == "v1 header without CRLF in 107 bytes");
  CHECK(status_of(unknown_padded(108)) == Status::invalid);
  CHECK(status_of(unknown_padded(106)) == Status::invalid);
}

TEST_CASE("v1 rejects leading zeros in addresses and ports", "[proxy_header][v1]") {
  CHECK(status_of("PROXY TCP4 192.168.0.01 192.168.0.11 56324 443\r\n") == Status::invalid);
  CHECK(status_of("PROXY TCP4 192.168.00.1 192.168.0.11 56324 443\r\n") == Status::invalid);
  CHECK(status_of("PROXY TCP4 010.0.0.1 192.168.0.11 56324 443\r\n") == Status::invalid);
  CHECK(status_of("PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n") == Status::invalid);
  CHECK(status_of("PROXY TCP4 192.168.0.1 192.168.0.11 56324 0443\r\n") == Status::invalid);
  CHECK(status_of("PROXY TCP4 192.168.0.1 192.168.0.11 00 443\r\n") == Status::invalid);
  // A lone 0 is a number, not a leading zero.
  CHECK(status_of("PROXY TCP4 0.0.0.0 10.0.0.0 0 0\r\n") == Status::complete);
}

TEST_CASE("v1 wants IPv4 addresses as exactly four decimal numbers 0..255", "[proxy_header][v1]") {
  for (const std::string address : {"256.1.1.1", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "+1.2.3.4",
                                    "1.2.3.4a", "0x1.2.3.4", "1.2.3.-4", "1000.2.3.4", "", "localhost"}) {
    INFO(address);
    CHECK(status_of("PROXY TCP4 " + address + " 192.168.0.11 56324 443\r\n") == Status::invalid);
    CHECK(status_of("PROXY TCP4 192.168.0.11 " + address + " 56324 443\r\n") == Status::invalid);
  }
}

TEST_CASE("v1 rejects ports out of 0..65535 or not decimal", "[proxy_header][v1]") {
  for (const std::string port : {"65536", "99999", "123456", "-1", "+1", "1a", "0x10", ""}) {
    INFO(port);
    CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 " + port + " 443\r\n") == Status::invalid);
    CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 443 " + port + "\r\n") == Status::invalid);
  }
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 65535 65535\r\n") == Status::complete);
}

TEST_CASE("v1 rejects a line ended by a lone CR or a lone LF", "[proxy_header][v1]") {
  const auto lf = parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nGET");
  CHECK(lf.result.status == Status::invalid);
  CHECK(std::string_view(lf.result.reason) == "v1 header with a lone LF");
  const auto cr = parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET");
  CHECK(cr.result.status == Status::invalid);
  CHECK(std::string_view(cr.result.reason) == "v1 header with a lone CR");
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n") == Status::invalid);
  CHECK(status_of("PROXY UNKNOWN\n") == Status::invalid);
  CHECK(status_of("PROXY UNKNOWN junk\rmore\r\n") == Status::invalid);
  CHECK(status_of("PROXY UNKNOWN junk\nmore\r\n") == Status::invalid);
  CHECK(status_of("PROXY \r\n") == Status::invalid);
}

TEST_CASE("v1 wants exactly one space between fields", "[proxy_header][v1]") {
  for (const std::string line : {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
                                 "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n",
                                 "PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
                                 "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
                                 "PROXY  UNKNOWN\r\n", "PROXY\tUNKNOWN\r\n"}) {
    INFO(line);
    CHECK(status_of(line) == Status::invalid);
  }
}

TEST_CASE("v1 addresses must be of the protocol's family", "[proxy_header][v1]") {
  CHECK(status_of("PROXY TCP4 ::1 ::1 1 2\r\n") == Status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 ::1 1 2\r\n") == Status::invalid);
  CHECK(status_of("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n") == Status::invalid);
  CHECK(status_of("PROXY TCP6 ::1 5.6.7.8 1 2\r\n") == Status::invalid);
  // Not IPv6 text: a zone, brackets, a host name, a bad group.
  for (const std::string address : {"fe80::1%eth0", "[::1]", "localhost", "1:2:3:4:5:6:7:8:9", "12345::", ":::", ""}) {
    INFO(address);
    CHECK(status_of("PROXY TCP6 " + address + " ::1 1 2\r\n") == Status::invalid);
  }
}

TEST_CASE("v1 rejects unknown protocols and missing or extra fields", "[proxy_header][v1]") {
  for (const std::string line :
       {"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4\r\n", "PROXY TCP4 1.2.3.4\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "PROXY TCP6 ::1 ::2 1\r\n", "PROXY\r\n", "PROXY TCP4 \r\n"}) {
    INFO(line);
    CHECK(status_of(line) == Status::invalid);
  }
}

TEST_CASE("every beginning of a valid v1 header is incomplete; the bytes after it are not counted",
          "[proxy_header][v1]") {
  for (const std::string& line :
       {std::string("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
        std::string("PROXY TCP6 2001:db8::1 ::1 0 65535\r\n"), std::string("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n"),
        std::string("PROXY UNKNOWN\r\n"), std::string("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"), v1_worst_case}) {
    INFO(line);
    CHECK(first_prefix_not_incomplete(line) == line.size());
    const auto p = parse(line + "PROXY TCP4 9.9.9.9 9.9.9.9 9 9\r\n");
    CHECK(p.result.status == Status::complete);
    CHECK(p.result.size == line.size());
  }
}

TEST_CASE("a v1 line is invalid as soon as the byte that spoils it arrives", "[proxy_header][v1]") {
  for (const std::string beginning :
       {"PROXY TCP7", "PROXY TCP4 1.2.3.4  ", "PROXY TCP4 01", "PROXY TCP4 1.2.3.256", "PROXY TCP4 1.2.3.4.",
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", "PROXY TCP6 ::g", "PROXY TCP4 1.2.3.4\r",
        "PROXY UNKNOWNX", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"}) {
    INFO(beginning);
    CHECK(status_of(beginning) == Status::invalid);
  }
}

TEST_CASE("bytes that cannot begin either header are invalid on the first one", "[proxy_header]") {
  const auto get = parse("G");
  CHECK(get.result.status == Status::invalid);
  CHECK(std::string_view(get.result.reason) == "not a PROXY protocol header");
  CHECK(status_of("GET / HTTP/1.1\r\n") == Status::invalid);
  CHECK(status_of("\x16\x03\x01") == Status::invalid);  // a TLS ClientHello
  CHECK(status_of("p") == Status::invalid);
  CHECK(status_of("PROXX") == Status::invalid);
  CHECK(status_of("PROXY\r\n") == Status::invalid);
  CHECK(status_of("\r\n\r\nX") == Status::invalid);
  CHECK(status_of(std::string("\r\n\r\n\0\r\nQUIT\r", 12)) == Status::invalid);

  CHECK(status_of("") == Status::incomplete);
  CHECK(status_of("P") == Status::incomplete);
  CHECK(status_of("PROXY ") == Status::incomplete);
  CHECK(status_of("\r") == Status::incomplete);
  CHECK(status_of(signature) == Status::incomplete);
}

TEST_CASE("a header that is not complete leaves the ProxyHeader as it was", "[proxy_header]") {
  ProxyHeader header;
  REQUIRE(socketserver::parse_proxy_header("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", cap, header).status ==
          Status::complete);
  CHECK(socketserver::parse_proxy_header("PROXY TCP4 9.9.9.9 ", cap, header).status == Status::incomplete);
  CHECK(socketserver::parse_proxy_header("PROXY TCP4 9.9.9.9 5.6.7.8 1 99999\r\n", cap, header).status ==
        Status::invalid);
  CHECK(socketserver::parse_proxy_header(v2(0x21, 0x31, std::string(400, 'x')), 0, header).status == Status::too_large);
  CHECK(header.source() == Address("1.2.3.4", 1));
}

TEST_CASE("v2 PROXY TCP over IPv4", "[proxy_header][v2]") {
  const std::string header = v2(0x21, 0x11, inet_block);
  const auto p = parse(header + "GET / HTTP/1.1\r\n");
  REQUIRE(p.result.status == Status::complete);
  CHECK(p.result.size == 28);
  CHECK(p.header.version() == 2);
  CHECK(p.header.command() == Command::proxy);
  CHECK(p.header.family() == Family::inet);
  CHECK(p.header.source() == Address("192.0.2.1", 56324));
  CHECK(p.header.destination() == Address("198.51.100.2", 443));
  CHECK(p.header.tlv_bytes().empty());
}

TEST_CASE("v2 PROXY TCP over IPv6", "[proxy_header][v2]") {
  const auto p = parse(v2(0x21, 0x21, inet6_block));
  REQUIRE(p.result.status == Status::complete);
  CHECK(p.result.size == 52);
  CHECK(p.header.family() == Family::inet6);
  CHECK(p.header.source() == Address("2001:db8::1", 40000));
  CHECK(p.header.destination() == Address("2001:db8::2:1", 8443));
}

TEST_CASE("v2 PROXY over a Unix stream socket: each path is up to its first NUL", "[proxy_header][v2]") {
  const auto p = parse(v2(0x21, 0x31, unix_block("/run/client.sock", "/run/app.sock")));
  REQUIRE(p.result.status == Status::complete);
  CHECK(p.result.size == 232);
  CHECK(p.header.command() == Command::proxy);
  CHECK(p.header.family() == Family::unix_socket);
  CHECK(p.header.source() == Address::from_path("/run/client.sock"));
  CHECK(p.header.destination() == Address::from_path("/run/app.sock"));

  // A path of all 108 bytes has no NUL; an unnamed peer's is all NULs; junk after a NUL is not
  // part of the path.
  const std::string full(108, 'p');
  std::string block = unix_block(full, "");
  const auto f = parse(v2(0x21, 0x31, block));
  REQUIRE(f.result.status == Status::complete);
  CHECK(f.header.source().path() == full);
  CHECK(f.header.destination().empty());
  block.replace(108, 7, std::string("/a\0junk", 7));
  CHECK(parse(v2(0x21, 0x31, block)).header.destination() == Address::from_path("/a"));
}

TEST_CASE("v2 LOCAL is skipped whatever its length and content", "[proxy_header][v2]") {
  const auto empty = parse(v2(0x20, 0x00, "") + "data");
  REQUIRE(empty.result.status == Status::complete);
  CHECK(empty.result.size == 16);
  CHECK(empty.header.version() == 2);
  CHECK(empty.header.command() == Command::local);
  CHECK(empty.header.source().empty());

  // §2.2: receivers "must not assume zero is presented for LOCAL connections".
  const std::string junk = std::string("\x03\xFF\xFF", 3) + std::string(297, '\xEE');  // a TLV that runs off the end
  for (const unsigned char family : {0x00, 0x11, 0x21, 0x31, 0x12}) {
    INFO(static_cast<int>(family));
    const auto p = parse(v2(0x20, family, junk) + "data");
    REQUIRE(p.result.status == Status::complete);
    CHECK(p.result.size == 16 + junk.size());
    CHECK(p.header.command() == Command::local);
    CHECK(p.header.family() == Family::unspec);
    CHECK(p.header.source().empty());
    CHECK(p.header.destination().empty());
    CHECK(p.header.tlv_bytes().empty());
  }
  // An address block too short for its family is no matter either.
  CHECK(status_of(v2(0x20, 0x31, "abc")) == Status::complete);
}

TEST_CASE("v2 PROXY with an UNSPEC family or transport is local", "[proxy_header][v2]") {
  for (const unsigned char family : {0x00, 0x01, 0x10, 0x20, 0x30}) {
    INFO(static_cast<int>(family));
    const auto p = parse(v2(0x21, family, inet_block + "junk"));
    REQUIRE(p.result.status == Status::complete);
    CHECK(p.result.size == 16 + 16);
    CHECK(p.header.command() == Command::local);
    CHECK(p.header.source().empty());
  }
  CHECK(status_of(v2(0x21, 0x00, "")) == Status::complete);
}

TEST_CASE("v2 PROXY over DGRAM is invalid on these stream servers, as soon as its 14th byte arrives",
          "[proxy_header][v2]") {
  for (const unsigned char family : {0x02, 0x12, 0x22, 0x32}) {
    INFO(static_cast<int>(family));
    const std::string header = v2(0x21, family, unix_block("a", "b"));
    CHECK(status_of(header) == Status::invalid);
    CHECK(first_prefix_not_incomplete(header) == 14);
  }
}

TEST_CASE("v2 version, command, family and transport outside the spec are invalid at once", "[proxy_header][v2]") {
  for (unsigned version = 0; version < 16; ++version) {
    if (version == 2) continue;
    INFO(version);
    const std::string header = v2(static_cast<unsigned char>(version << 4 | 1), 0x11, inet_block);
    CHECK(first_prefix_not_incomplete(header) == 13);
    CHECK(std::string_view(parse(header).result.reason) == "v2 header with a version other than 2");
  }
  for (unsigned command = 2; command < 16; ++command) {
    INFO(command);
    CHECK(first_prefix_not_incomplete(v2(static_cast<unsigned char>(0x20 | command), 0x11, inet_block)) == 13);
  }
  for (unsigned family = 4; family < 16; ++family) {
    INFO(family);
    CHECK(first_prefix_not_incomplete(v2(0x21, static_cast<unsigned char>(family << 4 | 1), inet_block)) == 14);
    CHECK(first_prefix_not_incomplete(v2(0x20, static_cast<unsigned char>(family << 4), "")) == 14);
  }
  for (unsigned transport = 3; transport < 16; ++transport) {
    INFO(transport);
    CHECK(first_prefix_not_incomplete(v2(0x21, static_cast<unsigned char>(0x10 | transport), inet_block)) == 14);
    CHECK(first_prefix_not_incomplete(v2(0x20, static_cast<unsigned char>(transport), "")) == 14);
  }
}

TEST_CASE("v2 length at the cap is taken; one over is too_large with only the 16 fixed bytes",
          "[proxy_header][v2][limits]") {
  constexpr std::size_t max_tlv = 100;
  const std::string noop = tlv(0x04, std::string(max_tlv - 3, '\0'));  // exactly max_tlv bytes of TLVs
  const std::string at_cap = v2(0x21, 0x31, unix_block("a", "b") + noop);
  REQUIRE(at_cap.size() == socketserver::max_proxy_header_size(max_tlv));
  const auto p = parse(at_cap, max_tlv);
  CHECK(p.result.status == Status::complete);
  CHECK(p.result.size == at_cap.size());

  const std::string over = v2(0x21, 0x31, unix_block("a", "b") + noop + "x");
  const auto fixed_only = parse(over.substr(0, 16), max_tlv);
  CHECK(fixed_only.result.status == Status::too_large);
  CHECK(std::string_view(fixed_only.result.reason) == "v2 header larger than the TLV cap");
  CHECK(status_of(over, max_tlv) == Status::too_large);
  CHECK(status_of(over.substr(0, 15), max_tlv) == Status::incomplete);

  // Any family, LOCAL too, counts against the same cap; 0 leaves room for the address block only.
  CHECK(status_of(v2(0x20, 0x00, std::string(217, 'x')).substr(0, 16), 0) == Status::too_large);
  CHECK(status_of(v2(0x20, 0x00, std::string(216, 'x')), 0) == Status::complete);
  CHECK(status_of(v2(0x21, 0x11, inet_block + tlv(0x04, std::string(201, 'x'))), 0) == Status::complete);
  CHECK(status_of(std::string(signature) + "\x21\x11\xFF\xFF", 0) == Status::too_large);
  CHECK(status_of(std::string(signature) + "\x21\x11\xFF\xFF", 65535) == Status::incomplete);
}

TEST_CASE("v2 address block shorter than its family's is invalid with the 16 fixed bytes", "[proxy_header][v2]") {
  CHECK(first_prefix_not_incomplete(v2(0x21, 0x11, inet_block.substr(0, 11))) == 16);
  CHECK(first_prefix_not_incomplete(v2(0x21, 0x21, inet6_block.substr(0, 35))) == 16);
  CHECK(first_prefix_not_incomplete(v2(0x21, 0x31, unix_block("a", "b").substr(0, 215))) == 16);
  CHECK(std::string_view(parse(v2(0x21, 0x11, "")).result.reason) == "v2 address block shorter than its family's");
}

TEST_CASE("every beginning of a valid v2 header is incomplete; the bytes after it are not counted",
          "[proxy_header][v2]") {
  const std::string crc_tlv = tlv(0x03, std::string(4, '\0'));
  for (const std::string& header :
       {v2(0x21, 0x11, inet_block), v2(0x21, 0x21, inet6_block), v2(0x21, 0x31, unix_block("/a", "/b")),
        v2(0x20, 0x00, ""), v2(0x20, 0x00, "junk"), v2(0x21, 0x00, "junk"),
        inet_with(tlv(0x01, "h2") + tlv(0x20, std::string("\x01\0\0\0\0", 5) + tlv(0x21, "TLSv1.3"))),
        checksummed(inet_with(crc_tlv), 16 + 12 + 3)}) {
    INFO(header.size());
    CHECK(first_prefix_not_incomplete(header) == header.size());
    const auto p = parse(header + v2(0x21, 0x11, inet_block));
    CHECK(p.result.status == Status::complete);
    CHECK(p.result.size == header.size());
  }
}

TEST_CASE("v2 TLVs: ALPN, AUTHORITY, UNIQUE_ID, NOOP and a custom type", "[proxy_header][v2][tlv]") {
  const std::string tlvs = tlv(0x04, "") + tlv(0x01, "h2") + tlv(0x02, "example.com") +
                           tlv(0x05, std::string(128, 'u')) + tlv(0xE0, std::string("\0bin\xFF", 5)) +
                           tlv(0x01, "http/1.1") + tlv(0x04, "padding");
  const auto p = parse(inet_with(tlvs));
  REQUIRE(p.result.status == Status::complete);
  CHECK(p.header.source() == Address("192.0.2.1", 56324));
  CHECK(p.header.alpn() == "h2");  // the first of two
  CHECK(p.header.authority() == "example.com");
  CHECK(p.header.unique_id() == std::string(128, 'u'));
  CHECK(p.header.tlv(0xE0) == std::string("\0bin\xFF", 5));
  CHECK(p.header.tlv(0x04) == "");
  CHECK_FALSE(p.header.tlv(0xE1));
  CHECK_FALSE(p.header.ssl());
  CHECK_FALSE(p.header.ssl_verify());
  CHECK_FALSE(p.header.ssl_version());
  CHECK(p.header.tlv_bytes() == tlvs);

  std::vector<std::pair<int, std::string>> seen;
  p.header.for_each_tlv([&](std::uint8_t type, std::string_view value) { seen.emplace_back(type, value); });
  REQUIRE(seen.size() == 7);
  CHECK(seen[1] == std::pair<int, std::string>(0x01, "h2"));
  CHECK(seen[5] == std::pair<int, std::string>(0x01, "http/1.1"));

  // The TLVs are copied: the header outlives the bytes it came from.
  ProxyHeader kept;
  {
    std::string bytes = inet_with(tlv(0x02, "copied.example"));
    REQUIRE(socketserver::parse_proxy_header(bytes, cap, kept).status == Status::complete);
    bytes.assign(bytes.size(), 'z');
  }
  CHECK(kept.authority() == "copied.example");

  // IPv6 and Unix headers carry TLVs after their longer blocks.
  CHECK(parse(v2(0x21, 0x21, inet6_block + tlv(0x01, "h2"))).header.alpn() == "h2");
  CHECK(parse(v2(0x21, 0x31, unix_block("a", "b") + tlv(0x02, "u"))).header.authority() == "u");
}

TEST_CASE("v2 SSL TLV: client flags, verify and its sub-TLVs", "[proxy_header][v2][tlv]") {
  const std::string sub = tlv(0x21, "TLSv1.3") + tlv(0x22, "client.example.com") +
                          tlv(0x23, "ECDHE-RSA-AES128-GCM-SHA256") + tlv(0x24, "RSA-SHA256") + tlv(0x25, "RSA2048");
  const auto p = parse(inet_with(tlv(0x01, "h2") + tlv(0x20, std::string("\x07\0\0\0\0", 5) + sub)));
  REQUIRE(p.result.status == Status::complete);
  CHECK(p.header.ssl());
  CHECK(p.header.ssl_client() == 0x07);
  CHECK(p.header.ssl_verify() == 0U);
  CHECK(p.header.ssl_version() == "TLSv1.3");
  CHECK(p.header.ssl_cn() == "client.example.com");
  CHECK(p.header.ssl_cipher() == "ECDHE-RSA-AES128-GCM-SHA256");
  CHECK(p.header.ssl_tlv(0x24) == "RSA-SHA256");
  CHECK(p.header.ssl_tlv(0x25) == "RSA2048");
  CHECK_FALSE(p.header.ssl_tlv(0x26));
  CHECK_FALSE(p.header.tlv(0x21));  // sub-TLVs are not top-level TLVs
  CHECK(p.header.alpn() == "h2");

  // Not over TLS (no PP2_CLIENT_SSL bit), a failed verification, no sub-TLVs.
  const auto plain = parse(inet_with(tlv(0x20, std::string("\x02\x00\x00\x01\x02", 5))));
  REQUIRE(plain.result.status == Status::complete);
  CHECK_FALSE(plain.header.ssl());
  CHECK(plain.header.ssl_client() == 0x02);
  CHECK(plain.header.ssl_verify() == 0x0102U);
  CHECK_FALSE(plain.header.ssl_version());
}

TEST_CASE("malformed v2 TLVs are invalid", "[proxy_header][v2][tlv]") {
  const auto truncated = parse(inet_with(tlv(0x01, "h2").substr(0, 4)));
  CHECK(truncated.result.status == Status::invalid);
  CHECK(std::string_view(truncated.result.reason) == "v2 TLV runs past the end of the header");
  CHECK(status_of(inet_with(tlv(0x01, "h2") + "\x02")) == Status::invalid);  // 1 byte of a TLV header
  CHECK(status_of(inet_with(tlv(0x01, "h2") + std::string("\x02\x00", 2))) == Status::invalid);  // 2 bytes of one
  CHECK(status_of(inet_with(std::string("\x02\x00\x01", 3))) == Status::invalid);                // no value byte

  CHECK(status_of(inet_with(tlv(0x05, std::string(129, 'u')))) == Status::invalid);
  CHECK(std::string_view(parse(inet_with(tlv(0x05, std::string(129, 'u')))).result.reason) ==
        "v2 UNIQUE_ID TLV longer than 128 bytes");

  for (const std::string& value : {std::string(""), std::string("\x01\0\0\0", 4),
                                   std::string("\x01\0\0\0\0", 5) + tlv(0x21, "TLSv1.3").substr(0, 6),
                                   std::string("\x01\0\0\0\0", 5) + tlv(0x21, "TLSv1.3") + "\x22"}) {
    INFO(value.size());
    const auto p = parse(inet_with(tlv(0x20, value)));
    CHECK(p.result.status == Status::invalid);
    CHECK(std::string_view(p.result.reason) == "malformed v2 SSL TLV");
  }
}

TEST_CASE("a CRC32C TLV that matches is taken; one that does not is invalid", "[proxy_header][v2][tlv][crc32c]") {
  const std::size_t at = 16 + 12 + 3;  // the value of a first TLV after an IPv4 block
  const std::string zero = tlv(0x03, std::string(4, '\0'));

  // Checked against a bitwise CRC32C computed apart from this library.
  const std::string alone = checksummed(inet_with(zero), at);
  CHECK(alone.substr(at, 4) == be32(0x20EC9549U));
  const auto p = parse(alone);
  REQUIRE(p.result.status == Status::complete);
  CHECK(p.header.tlv(0x03) == be32(0x20EC9549U));

  const std::string with_more = checksummed(inet_with(zero + tlv(0x01, "h2") + tlv(0x05, "id")), at);
  CHECK(status_of(with_more) == Status::complete);

  std::string flipped = with_more;
  flipped.back() = static_cast<char>(flipped.back() ^ 1);  // a bit of the UNIQUE_ID
  const auto bad = parse(flipped);
  CHECK(bad.result.status == Status::invalid);
  CHECK(std::string_view(bad.result.reason) == "bad CRC32C");

  std::string wrong_order = alone;  // the checksum is big endian: little endian does not match
  std::swap(wrong_order[at], wrong_order[at + 3]);
  std::swap(wrong_order[at + 1], wrong_order[at + 2]);
  CHECK(status_of(wrong_order) == Status::invalid);

  // The signature, the fixed bytes and the addresses are covered too.
  std::string moved = alone;
  moved[16] = '\x0A';
  CHECK(status_of(moved) == Status::invalid);

  CHECK(status_of(inet_with(tlv(0x03, "abc"))) == Status::invalid);
  CHECK(std::string_view(parse(inet_with(tlv(0x03, "abcde"))).result.reason) == "v2 CRC32C TLV not 4 bytes long");
  CHECK(status_of(checksummed(inet_with(zero + zero), at)) == Status::invalid);  // two of them
}
