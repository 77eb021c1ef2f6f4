// TlsContext and the TLS layer under blocking and coroutine servers: settings that cannot work,
// reloads, what the handler reads of the session and the client's certificate, and the
// handshake failures counted by reason. Certificates come from the openssl command; the client
// is OpenSSL's own, on a blocking socket.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>
#include <socketserver/async.hpp>
#include <socketserver/socketserver.hpp>

#include "test_support.hpp"
#include "tls_support.hpp"

namespace {

using test::certificates;
using test::Certificates;
using test::Client;
using test::eventually;
using test::Served;
using test::TempDir;
using test::TlsClient;

// Writes back what the handler reads of its TLS session and of the client's certificate.
std::string describe(const socketserver::TlsStream* tls) {
  if (tls == nullptr) return "plain\n";
  std::string out = tls->protocol() + " " + (tls->established() ? "established" : "not established");
  if (const socketserver::PeerCertificate* peer = tls->peer_certificate()) {
    out += " subject=" + peer->subject + " dns=" + (peer->dns_names.empty() ? "" : peer->dns_names[0]) +
           " uri=" + (peer->uris.empty() ? "" : peer->uris[0]) + " sha256=" + peer->sha256 +
           " verified=" + (peer->verified ? "yes" : "no") + " chain=" + std::to_string(peer->chain.size());
  } else {
    out += " no certificate";
  }
  return out + "\n";
}

// Answers one line with the ALPN protocol chosen, then returns: the server then closes with
// close_notify.
struct OneAnswer : socketserver::StreamRequestHandler {
  void handle() override {
    if (auto line = rfile.readline()) wfile.write("alpn=" + request->tls()->alpn() + "\n");
  }
};

// The name the client asked for (SNI), as the handler reads it.
struct ServerName : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) wfile.write(request->tls()->server_name() + "\n");
  }
};

struct Describe : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) wfile.write(describe(request->tls()));
  }
};

struct AsyncDescribe : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    while (auto line = co_await rfile.readline()) {
      const std::string answer = describe(request->tls());
      co_await wfile.write(answer);
    }
  }
};

// docs/tls.md's handler that admits clients by name: only alice.example... here client.test.
struct Admit : socketserver::StreamRequestHandler {
  void setup() override {
    const socketserver::PeerCertificate* peer = request->tls()->peer_certificate();
    if (peer == nullptr || std::ranges::find(peer->dns_names, "client.test") == peer->dns_names.end())
      throw std::runtime_error("not an admitted client");  // logged; the connection closes
    StreamRequestHandler::setup();
  }
  void handle() override {
    while (auto line = rfile.readline()) wfile.write("admitted\n");
  }
};

template <class Server>
void check_session(bool mutual) {
  Certificates& certs = certificates();
  Served<Server> served;
  socketserver::TlsSettings tls = certs.settings();
  if (mutual) {
    tls.ca_file = certs.ca;
    tls.client_auth = socketserver::ClientAuth::required;
  }
  served.server.tls = std::make_shared<socketserver::TlsContext>(tls);
  TlsClient client(served.server.server_address(), certs, mutual);
  client.send("who\n");
  const std::string answer = client.readline();
  if (mutual) {
    CHECK(answer ==
          "TLSv1.3 established subject=CN=client.test dns=client.test uri=spiffe://example.test/client "
          "sha256=" +
              certs.client_fingerprint() + " verified=yes chain=2\n");  // OpenSSL's client sends its CA too
  } else {
    CHECK(answer == "TLSv1.3 established no certificate\n");
  }
  client.close_notify();
  CHECK(eventually([&] { return served.server.stats().tls.handshakes == 1; }));
}

}  // namespace

TEST_CASE("TlsContext refuses settings and files that cannot work, naming them") {
  Certificates& certs = certificates();
  socketserver::TlsSettings missing = certs.settings();
  missing.cert_file = certs.dir.path("nowhere.crt");
  CHECK_THROWS_WITH(socketserver::TlsContext(missing), Catch::Contains("nowhere.crt"));

  socketserver::TlsSettings mismatch = certs.settings();
  mismatch.key_file = certs.client_key;
  CHECK_THROWS_WITH(socketserver::TlsContext(mismatch), Catch::Contains("does not match"));

  socketserver::TlsSettings no_ca = certs.settings();
  no_ca.client_auth = socketserver::ClientAuth::required;
  CHECK_THROWS_AS(socketserver::TlsContext(no_ca), std::invalid_argument);

  socketserver::TlsSettings bad_ciphers = certs.settings();
  bad_ciphers.ciphers = "NO-SUCH-CIPHER";
  CHECK_THROWS_WITH(socketserver::TlsContext(bad_ciphers), Catch::Contains("NO-SUCH-CIPHER"));

  socketserver::TlsSettings empty;
  CHECK_THROWS_AS(socketserver::TlsContext(empty), std::invalid_argument);
}

TEST_CASE("A failed reload keeps the context in use and is counted; a good one swaps it") {
  Certificates& certs = certificates();
  Served<socketserver::ThreadingTCPServer<Describe>> served;
  auto context = std::make_shared<socketserver::TlsContext>(certs.settings());
  served.server.tls = context;

  socketserver::TlsSettings broken = certs.settings();
  broken.key_file = certs.client_key;
  CHECK_THROWS(context->reload(broken));
  CHECK(context->reload_failures() == 1);
  CHECK(context->reloads() == 0);
  CHECK(context->settings().key_file == certs.server_key);
  {
    TlsClient client(served.server.server_address(), certs, false);  // still served
    client.send("x\n");
    CHECK(client.readline() == "TLSv1.3 established no certificate\n");
    client.close_notify();
  }
  context->reload();
  CHECK(context->reloads() == 1);
  TlsClient client(served.server.server_address(), certs, false);
  client.send("x\n");
  CHECK(client.readline() == "TLSv1.3 established no certificate\n");
  client.close_notify();
}

TEST_CASE("The handler reads its TLS session: blocking server") {
  check_session<socketserver::ThreadingTCPServer<Describe>>(false);
}

TEST_CASE("The handler reads the client's verified certificate: blocking server, mutual TLS") {
  check_session<socketserver::ThreadingTCPServer<Describe>>(true);
}

TEST_CASE("The handler reads the client's verified certificate: async server, mutual TLS") {
  check_session<socketserver::AsyncTCPServer<AsyncDescribe>>(true);
}

// What arrives until the server closes (a reset too: it may close with bytes unread).
std::string until_closed(Client& client) {
  std::string all;
  char buffer[4096];
  for (;;) {
    const ssize_t got = ::recv(client.fd(), buffer, sizeof buffer, 0);
    if (got <= 0) return all;
    all.append(buffer, static_cast<std::size_t>(got));
  }
}

template <class Server>
void check_failures_counted() {
  Certificates& certs = certificates();
  Served<Server> served;
  served.server.tls = std::make_shared<socketserver::TlsContext>(certs.settings());
  const socketserver::Address address = served.server.server_address();
  { Client::connect(address); }  // closed before a byte
  {
    Client plaintext = Client::connect(address);
    plaintext.send("hello\n");
    CHECK(until_closed(plaintext).find("HELLO") == std::string::npos);  // closed unanswered (an alert at most)
  }
  {
    // A handshake record announcing a 64 KiB ClientHello, then 20 KiB of it: over the 16 KiB
    // cap before OpenSSL would have the whole message.
    std::string hello("\x16\x03\x01\x40\x00\x01\x00\xff\xfc", 9);
    hello.append(std::size_t{20} * 1024, 'A');
    Client big = Client::connect(address);
    ::send(big.fd(), hello.data(), hello.size(), MSG_NOSIGNAL);  // the server may close before the end
    until_closed(big);
  }
  CHECK(eventually([&] {
    const socketserver::ServerStats stats = served.server.stats();
    return stats.tls.eof_before_hello == 1 && stats.tls.not_tls == 1 && stats.tls.client_hello_too_large == 1 &&
           stats.limit_exceeded == 1;  // counted when the connection closes
  }));
  const socketserver::ServerStats stats = served.server.stats();
  CHECK(stats.tls.failed() == 3);
  CHECK(stats.tls.handshakes == 0);
  CHECK(stats.limit_exceeded == 1);
}

TEST_CASE("Handshake failures are counted by reason: blocking server") {
  check_failures_counted<socketserver::ThreadingTCPServer<Describe>>();
}

TEST_CASE("Handshake failures are counted by reason: async server") {
  check_failures_counted<socketserver::AsyncTCPServer<AsyncDescribe>>();
}

TEST_CASE("SNI chooses the certificate by name, exact before wildcard, the default otherwise") {
  Certificates& certs = certificates();
  Served<socketserver::ThreadingTCPServer<ServerName>> served;
  socketserver::TlsSettings tls = certs.settings();
  tls.sni.push_back({certs.dir.path("wildcard.crt"), certs.dir.path("wildcard.key"), {}});  // its SAN: *.example.test
  tls.sni.push_back({certs.dir.path("exact.crt"), certs.dir.path("exact.key"), {"exact.test", "A.Example.Test"}});
  served.server.tls = std::make_shared<socketserver::TlsContext>(tls);
  const socketserver::Address address = served.server.server_address();
  const auto common_name = [&](const std::string& name) {
    TlsClient client(address, certs, false, name);
    client.send("x\n");
    CHECK(client.readline() == name + "\n");  // what the handler reads
    std::string cn = client.peer_common_name();
    client.close_notify();
    return cn;
  };
  CHECK(common_name("b.example.test") == "wildcard");
  CHECK(common_name("exact.test") == "exact");
  CHECK(common_name("localhost") == "localhost");
  CHECK_THROWS(TlsClient(address, certs, false, "a.example.test"));    // exact: the cert for exact.test, which fails
                                                                       // the client's check of a.example.test
  CHECK_THROWS(TlsClient(address, certs, false, "x.y.example.test"));  // one label only: the default cert
}

TEST_CASE("strict_sni refuses a name no certificate serves, counted") {
  Certificates& certs = certificates();
  Served<socketserver::ThreadingTCPServer<ServerName>> served;
  socketserver::TlsSettings tls = certs.settings();
  tls.strict_sni = true;
  served.server.tls = std::make_shared<socketserver::TlsContext>(tls);
  const socketserver::Address address = served.server.server_address();
  {
    TlsClient known(address, certs, false, "localhost");
    known.send("x\n");
    CHECK(known.readline() == "localhost\n");
    known.close_notify();
  }
  CHECK_THROWS(TlsClient(address, certs, false, "unknown.test"));
  CHECK(eventually([&] { return served.server.stats().tls.unknown_server_name == 1; }));
  CHECK(served.server.stats().tls.handshakes == 1);
}

namespace {
// One line there and back on a new connection resuming `session` (or none); whether it was
// resumed, and the connection's session for the next one in `next`.
bool round_trip(const socketserver::Address& address, const TlsClient::Options& options, SSL_SESSION*& next) {
  TlsClient client(address, certificates(), options);
  client.send("x\n");
  CHECK(client.readline() == "localhost\n");
  const bool resumed = client.resumed();
  if (next != nullptr) SSL_SESSION_free(next);
  next = client.session();
  client.close_notify();
  return resumed;
}
}  // namespace

TEST_CASE("TLS 1.3 tickets resume; a ticket outlives one key rotation, not two") {
  Served<socketserver::ThreadingTCPServer<ServerName>> served;
  auto context = std::make_shared<socketserver::TlsContext>(certificates().settings());
  served.server.tls = context;
  const socketserver::Address address = served.server.server_address();
  SSL_SESSION* session = nullptr;
  CHECK_FALSE(round_trip(address, {}, session));
  TlsClient::Options resume;
  resume.resume = session;
  CHECK(round_trip(address, resume, session));
  context->rotate_ticket_keys();
  resume.resume = session;
  CHECK(round_trip(address, resume, session));  // sealed with the key before: still good, and renewed
  context->rotate_ticket_keys();
  context->rotate_ticket_keys();
  resume.resume = session;
  CHECK_FALSE(round_trip(address, resume, session));  // two rotations later: a full handshake
  SSL_SESSION_free(session);
  CHECK(eventually([&] {
    const socketserver::ServerStats stats = served.server.stats();
    return stats.tls.handshakes == 4 && stats.tls.resumed == 2;
  }));
}

TEST_CASE("TLS 1.2 resumes from the session cache when the client takes no tickets") {
  Served<socketserver::ThreadingTCPServer<ServerName>> served;
  served.server.tls = std::make_shared<socketserver::TlsContext>(certificates().settings());
  const socketserver::Address address = served.server.server_address();
  TlsClient::Options options;
  options.max_version = TLS1_2_VERSION;
  options.options = SSL_OP_NO_TICKET;
  SSL_SESSION* session = nullptr;
  CHECK_FALSE(round_trip(address, options, session));
  options.resume = session;
  CHECK(round_trip(address, options, session));
  SSL_SESSION_free(session);
  CHECK(eventually([&] { return served.server.stats().tls.resumed == 1; }));
}

TEST_CASE("A handler admits clients by the names in their certificates (docs/tls.md)") {
  Certificates& certs = certificates();
  Served<socketserver::ThreadingTCPServer<Admit>> served;
  socketserver::TlsSettings tls = certs.settings();
  tls.ca_file = certs.ca;
  tls.client_auth = socketserver::ClientAuth::optional;
  served.server.tls = std::make_shared<socketserver::TlsContext>(tls);
  {
    TlsClient admitted(served.server.server_address(), certs, true);
    admitted.send("hello\n");
    CHECK(admitted.readline() == "admitted\n");
    admitted.close_notify();
  }
  TlsClient anonymous(served.server.server_address(), certs, false);  // optional: the handshake passes
  anonymous.send("hello\n");
  CHECK(anonymous.readline().empty());  // setup() refused it: closed unanswered
  CHECK(eventually([&] { return served.server.stats().errors == 1; }));
}

TEST_CASE("TLS on Unix stream servers, blocking and async") {
  Certificates& certs = certificates();
  TempDir dir;
  socketserver::ThreadingUnixStreamServer<Describe> blocking(dir.path("tls.sock"));
  socketserver::AsyncUnixStreamServer<AsyncDescribe> async(dir.path("tls-async.sock"));
  async.threads = 1;
  blocking.tls = async.tls = std::make_shared<socketserver::TlsContext>(certs.settings());
  test::ServerThread serving_blocking(blocking);
  test::ServerThread serving_async(async);
  for (socketserver::BaseServer* server :
       {static_cast<socketserver::BaseServer*>(&blocking), static_cast<socketserver::BaseServer*>(&async)}) {
    TlsClient client(server->server_address(), certs, false);
    client.send("who\n");
    CHECK(client.readline() == "TLSv1.3 established no certificate\n");
    client.close_notify();
  }
}

namespace {
// A client that sends `alpn` (wire form) and one line, and returns the answer.
std::string alpn_answer(const socketserver::Address& address, const std::string& wire) {
  Certificates& certs = certificates();
  TlsClient::Options options;
  options.alpn = wire;
  TlsClient client(address, certs, options);
  client.send("x\n");
  std::string answer = client.readline();
  client.close_notify();
  return answer;
}
}  // namespace

TEST_CASE("ALPN: the server's list picks the protocol the handler reads; a client with none in common is refused") {
  Served<socketserver::ThreadingTCPServer<OneAnswer>> served;
  socketserver::TlsSettings tls = certificates().settings();
  tls.alpn = {"x-chat", "http/1.1"};
  served.server.tls = std::make_shared<socketserver::TlsContext>(tls);
  const socketserver::Address address = served.server.server_address();
  CHECK(alpn_answer(address, std::string("\x08http/1.1\x06x-chat", 16)) == "alpn=x-chat\n");  // ours first
  CHECK(alpn_answer(address, std::string("\x08http/1.1", 9)) == "alpn=http/1.1\n");
  CHECK(alpn_answer(address, "") == "alpn=\n");  // no ALPN offered: none chosen
  CHECK_THROWS(alpn_answer(address, std::string("\x02h2", 3)));
}

TEST_CASE("The key log callback gets the secrets; nothing logs them without it") {
  std::mutex mutex;
  std::vector<std::string> lines;
  socketserver::TlsSettings tls = certificates().settings();
  tls.keylog = [&](std::string_view line) {
    const std::lock_guard lock(mutex);
    lines.emplace_back(line);
  };
  Served<socketserver::ThreadingTCPServer<OneAnswer>> served;
  served.server.tls = std::make_shared<socketserver::TlsContext>(tls);
  CHECK(alpn_answer(served.server.server_address(), "") == "alpn=\n");
  const std::lock_guard lock(mutex);
  CHECK(std::ranges::any_of(
      lines, [](const std::string& line) { return line.starts_with("CLIENT_HANDSHAKE_TRAFFIC_SECRET "); }));
}

TEST_CASE("A peer that never answers close_notify costs at most close_notify_timeout") {
  Certificates& certs = certificates();
  for (const double wait : {0.0, 0.4}) {
    Served<socketserver::ThreadingTCPServer<OneAnswer>> served;
    socketserver::TlsSettings tls = certs.settings();
    tls.close_notify_timeout = socketserver::Seconds(wait);
    served.server.tls = std::make_shared<socketserver::TlsContext>(tls);
    TlsClient client(served.server.server_address(), certs, false);
    client.send("x\n");
    CHECK(client.readline() == "alpn=\n");
    const auto start = std::chrono::steady_clock::now();
    // The handler has returned: the server's close_notify comes, and this client never answers it.
    CHECK(client.read_to_end() == 0);  // close_notify: the end of the stream
    CHECK(eventually([&] { return served.server.stats().active == 0; }));
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO("close_notify_timeout " << wait << " s: closed after " << took << " s");
    CHECK(took < wait + 1.0);
    if (wait > 0) CHECK(took >= wait * 0.9);  // it did wait for the peer's close_notify
  }
}
