// server.proxy_protocol over loopback, for every stream server kind: the header is required from
// trusted proxies and never read from others, the handler, the per-IP limit, the logs and stats
// see the proxied client, no byte after the header is lost, and the header has its own timeout.
// (Against HAProxy itself: tests/examples/check_proxy_protocol.py.)
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/forking_servers.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/thread_pool_mixin.hpp>
#include <socketserver/threading_servers.hpp>
#include <socketserver/unix_stream_server.hpp>

#include "log_capture.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using socketserver::AccessList;
using socketserver::Address;

namespace {

// Echoes each line after the client address the handler was given, and what the PROXY header
// told: "<client> v<version> <authority or -> <line>".
std::string describe(const Address& client, const socketserver::ProxyHeader* header, std::string_view line) {
  std::string text = client.to_string() + " v" + std::to_string(header != nullptr ? header->version() : 0) + " ";
  text += header != nullptr ? std::string(header->authority().value_or("-")) : "-";
  return text + " " + std::string(line);
}

struct WhoEcho : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) wfile.write(describe(client_address, request->proxy_header(), *line));
  }
};

struct AsyncWhoEcho : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    while (auto line = co_await rfile.readline()) {
      const std::string reply = describe(client_address, request->proxy_header(), *line);
      co_await wfile.write(reply);
    }
  }
};

// A server that trusts 127.0.0.2 as a proxy, configured before it starts serving.
template <class Server>
struct Proxied {
  explicit Proxied(socketserver::Seconds header_timeout = 5s) {
    if constexpr (requires { server.threads; }) server.threads = 1;
    server.proxy_protocol.trusted = AccessList({"127.0.0.2"});
    server.proxy_protocol.header_timeout = header_timeout;
    log.attach(server.logger);
  }
  void start() { serving.emplace(server); }
  test::Client from(const char* source) {
    auto client = test::Client::unconnected(source);
    client.connect_to(server.server_address());
    return client;
  }
  test::LogCapture log;
  Server server{{"127.0.0.1", 0}};
  std::optional<test::ServerThread> serving;
};

// The connection ended without a reply: end of stream, or a reset for the bytes it left unread.
bool closed_unanswered(test::Client& client) {
  try {
    return client.recv().empty();
  } catch (const std::system_error& e) {
    return e.code() == std::errc::connection_reset;
  }
}

// A v2 PROXY header for TCP over IPv4 from 192.0.2.1:4242 to 198.51.100.1:443, with an AUTHORITY
// TLV.
std::string v2_header(std::string_view authority) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += '\x21';  // v2, PROXY
  h += '\x11';  // INET, STREAM
  const std::size_t length = 12 + 3 + authority.size();
  h += static_cast<char>(length >> 8);
  h += static_cast<char>(length & 0xff);
  h += std::string("\xc0\x00\x02\x01", 4);  // 192.0.2.1
  h += std::string("\xc6\x33\x64\x01", 4);  // 198.51.100.1
  h += std::string("\x10\x92", 2);          // 4242
  h += std::string("\x01\xbb", 2);          // 443
  h += '\x02';                              // PP2_TYPE_AUTHORITY
  h += static_cast<char>(authority.size() >> 8);
  h += static_cast<char>(authority.size() & 0xff);
  h += authority;
  return h;
}

const std::string v1 = "PROXY TCP4 192.0.2.7 198.51.100.1 5555 443\r\n";

template <class Server>
void check_proxied_client() {
  Proxied<Server> p;
  p.start();
  {
    auto client = p.from("127.0.0.2");
    client.send(v1 + "first\nsecond\nthird\n");  // one packet: the lines after the header are not lost
    CHECK(client.recv_line() == "192.0.2.7:5555 v1 - first\n");
    CHECK(client.recv_line() == "192.0.2.7:5555 v1 - second\n");
    CHECK(client.recv_line() == "192.0.2.7:5555 v1 - third\n");
    client.shutdown_write();  // a FIN, whatever copies of the socket a forked child holds
  }
  {
    auto client = p.from("127.0.0.2");
    client.send(v2_header("example.test") + "tlv\n");
    CHECK(client.recv_line() == "192.0.2.1:4242 v2 example.test tlv\n");
    client.shutdown_write();
  }
  REQUIRE(test::eventually([&] { return p.server.stats().active == 0; }));
  const auto stats = p.server.stats();
  if constexpr (!requires { p.server.active_children; }) {  // a forked child counts in its own copy
    CHECK(stats.proxy.v1 == 1);
    CHECK(stats.proxy.v2 == 1);
    CHECK(p.log.contains(socketserver::LogCategory::access, "192.0.2.7:5555 closed"));
    CHECK(p.log.contains(socketserver::LogCategory::security, "PROXY v1 header from 127.0.0.2:"));
  }
}

}  // namespace

TEMPLATE_TEST_CASE("a trusted proxy's client is the handler's client_address, and no byte after the header is lost",
                   "[proxy]", socketserver::TCPServer<WhoEcho>, socketserver::ThreadingTCPServer<WhoEcho>,
                   socketserver::ThreadPoolMixIn<socketserver::TCPServer<WhoEcho>>,
                   socketserver::ForkingTCPServer<WhoEcho>, socketserver::AsyncTCPServer<AsyncWhoEcho>) {
  check_proxied_client<TestType>();
}

TEMPLATE_TEST_CASE("a header split one byte per packet is read whole", "[proxy]",
                   socketserver::ThreadingTCPServer<WhoEcho>, socketserver::AsyncTCPServer<AsyncWhoEcho>) {
  Proxied<TestType> p;
  p.start();
  auto client = p.from("127.0.0.2");
  for (const char c : v1) client.send(std::string(1, c));
  client.send("split\n");
  CHECK(client.recv_line() == "192.0.2.7:5555 v1 - split\n");
}

TEMPLATE_TEST_CASE("a trusted proxy must send a header: data, garbage or a late header close the connection", "[proxy]",
                   socketserver::ThreadingTCPServer<WhoEcho>, socketserver::AsyncTCPServer<AsyncWhoEcho>) {
  Proxied<TestType> p(0.3s);
  p.start();
  {
    auto no_header = p.from("127.0.0.2");
    no_header.send("hello\n");
    CHECK(closed_unanswered(no_header));
  }
  {
    auto bad = p.from("127.0.0.2");
    bad.send("PROXY TCP4 192.0.2.7 198.51.100.1 05555 443\r\nhello\n");  // a leading zero
    CHECK(closed_unanswered(bad));
  }
  {
    auto huge = p.from("127.0.0.2");
    std::string header = v2_header("");
    header[14] = '\x7f';  // announces 32,000 bytes and more: refused with only the fixed part read
    huge.send(header.substr(0, 16));
    CHECK(closed_unanswered(huge));
  }
  {
    auto slow = p.from("127.0.0.2");
    const auto start = std::chrono::steady_clock::now();
    slow.send(v1.substr(0, 10));
    CHECK(closed_unanswered(slow));
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= 0.29s);
    CHECK(took < 2.3s);
  }
  REQUIRE(test::eventually([&] { return p.server.stats().active == 0; }));
  const auto stats = p.server.stats();
  CHECK(stats.proxy.invalid == 3);
  CHECK(stats.proxy.timed_out == 1);
  CHECK(stats.timed_out == 1);
  CHECK(stats.limit_exceeded == 1);  // the one over max_tlv_size
  CHECK(p.log.contains(socketserver::LogCategory::security, "PROXY"));
}

TEMPLATE_TEST_CASE("an untrusted peer is refused unread, or served directly without its bytes read as a header",
                   "[proxy]", socketserver::ThreadingTCPServer<WhoEcho>, socketserver::AsyncTCPServer<AsyncWhoEcho>) {
  Proxied<TestType> p;
  SECTION("refused, by default") {
    p.start();
    auto client = p.from("127.0.0.1");
    client.send(v1 + "spoofed\n");
    CHECK(closed_unanswered(client));
    REQUIRE(test::eventually([&] { return p.server.stats().refused == 1; }));
    CHECK(p.server.stats().proxy.untrusted_refused == 1);
    CHECK(p.log.contains(socketserver::LogCategory::security, "refused connection from 127.0.0.1:"));
  }
  SECTION("served as a direct connection") {
    p.server.proxy_protocol.untrusted = socketserver::ProxyProtocol::Untrusted::direct;
    p.start();
    auto client = p.from("127.0.0.1");
    client.send(v1 + "spoofed\n");
    const std::string line = client.recv_line();
    CHECK(line.starts_with("127.0.0.1:"));  // the real peer: the header was only data
    CHECK(line.ends_with(" v0 - " + v1));
    CHECK(p.server.stats().proxy.untrusted_direct == 1);
  }
}

TEST_CASE("a LOCAL header keeps the real addresses", "[proxy]") {
  Proxied<socketserver::ThreadingTCPServer<WhoEcho>> p;
  p.start();
  auto client = p.from("127.0.0.2");
  std::string local("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x03xyz", 19);  // LOCAL, 3 bytes the receiver skips
  client.send(local + "health\n");
  const std::string line = client.recv_line();
  CHECK(line.starts_with("127.0.0.2:"));
  CHECK(line.ends_with(" v2 - health\n"));
  CHECK(test::eventually([&] { return p.server.stats().proxy.local == 1; }));
}

TEMPLATE_TEST_CASE("max_connections_per_ip counts the proxied clients, not the proxy", "[proxy][limits]",
                   socketserver::ThreadingTCPServer<WhoEcho>, socketserver::AsyncTCPServer<AsyncWhoEcho>) {
  Proxied<TestType> p;
  p.server.limits.max_connections_per_ip = 1;
  p.start();
  auto first = p.from("127.0.0.2");
  first.send("PROXY TCP4 192.0.2.1 198.51.100.1 1000 443\r\none\n");
  CHECK(first.recv_line() == "192.0.2.1:1000 v1 - one\n");
  auto other_client = p.from("127.0.0.2");  // same proxy, another client: served
  other_client.send("PROXY TCP4 192.0.2.2 198.51.100.1 1000 443\r\ntwo\n");
  CHECK(other_client.recv_line() == "192.0.2.2:1000 v1 - two\n");
  auto same_client = p.from("127.0.0.2");  // a second connection of 192.0.2.1: over its limit
  same_client.send("PROXY TCP4 192.0.2.1 198.51.100.1 1001 443\r\nthree\n");
  CHECK(closed_unanswered(same_client));
  CHECK(p.log.contains(socketserver::LogCategory::security, "refused connection from 192.0.2.1:1001"));
  // Refused as the same client connecting directly would be: not accepted, no access line.
  REQUIRE(test::eventually([&] { return p.server.stats().refused == 1; }));
  first.close();
  other_client.close();
  REQUIRE(test::eventually([&] { return p.server.stats().active == 0; }));
  CHECK(p.server.stats().accepted == 2);
  CHECK_FALSE(p.log.contains(socketserver::LogCategory::access, "192.0.2.1:1001"));
}

TEST_CASE("a Unix stream server trusts its peers when told to", "[proxy][unix]") {
  test::TempDir dir;
  socketserver::ThreadingUnixStreamServer<WhoEcho> server(dir.path("proxied.sock"));
  server.proxy_protocol.trust_unix_peers = true;
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  client.send(v1 + "over unix\n");
  CHECK(client.recv_line() == "192.0.2.7:5555 v1 - over unix\n");
}

namespace {

template <class Server>
struct Listed {
  Listed() {
    if constexpr (requires { server.threads; }) server.threads = 1;
    log.attach(server.logger);
  }
  test::LogCapture log;
  Server server{{"127.0.0.1", 0}};
};

}  // namespace

TEMPLATE_TEST_CASE("the access list refuses denied peers right after accept, and can be replaced while serving",
                   "[access_list]", socketserver::ThreadingTCPServer<WhoEcho>,
                   socketserver::AsyncTCPServer<AsyncWhoEcho>, socketserver::ForkingTCPServer<WhoEcho>) {
  Listed<TestType> l;
  l.server.set_access_list(AccessList({"127.0.0.0/8"}, {"127.0.0.3"}));
  test::ServerThread serving(l.server);
  auto denied = test::Client::unconnected("127.0.0.3");
  denied.connect_to(l.server.server_address());
  denied.send("let me in\n");
  CHECK(closed_unanswered(denied));
  auto allowed = test::Client::unconnected("127.0.0.4");
  allowed.connect_to(l.server.server_address());
  allowed.send("hello\n");
  CHECK(allowed.recv_line().ends_with(" v0 - hello\n"));
  CHECK(l.server.stats().denied == 1);
  CHECK(l.server.stats().refused == 1);
  CHECK(l.log.contains(socketserver::LogCategory::security, "refused connection from 127.0.0.3:"));

  l.server.set_access_list(AccessList({}, {"127.0.0.4"}));  // from this thread, while it serves
  auto now_denied = test::Client::unconnected("127.0.0.4");
  now_denied.connect_to(l.server.server_address());
  now_denied.send("again\n");
  CHECK(closed_unanswered(now_denied));
  auto now_allowed = test::Client::unconnected("127.0.0.3");
  now_allowed.connect_to(l.server.server_address());
  now_allowed.send("me now\n");
  CHECK(now_allowed.recv_line().ends_with(" v0 - me now\n"));
  CHECK(l.server.access_list().denied() == std::vector<std::string>{"127.0.0.4"});
  // A FIN, whatever copies of the sockets a forked child holds: the drain then has nothing to
  // wait for.
  allowed.shutdown_write();
  now_allowed.shutdown_write();
}

TEST_CASE("with PROXY on, the access list still judges the real peer", "[access_list][proxy]") {
  Proxied<socketserver::ThreadingTCPServer<WhoEcho>> p;
  p.server.set_access_list(AccessList({}, {"192.0.2.0/24"}));  // the proxied clients' network
  p.start();
  auto client = p.from("127.0.0.2");
  client.send(v1 + "through\n");
  CHECK(client.recv_line() == "192.0.2.7:5555 v1 - through\n");
}
