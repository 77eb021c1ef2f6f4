// TLS in the tests: certificates made by the openssl command (a CA, a server certificate for
// localhost, client and SNI certificates signed by it), and OpenSSL's own client on a blocking
// socket.
#ifndef SOCKETSERVER_TESTS_TLS_SUPPORT_HPP
#define SOCKETSERVER_TESTS_TLS_SUPPORT_HPP

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>
#include <socketserver/address.hpp>
#include <socketserver/tls_context.hpp>

#include "test_support.hpp"

namespace test {

inline void run(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) FAIL("failed: " << command);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A CA, a server certificate for localhost and a client certificate, both signed by it.
struct Certificates {
  TempDir dir;
  std::string ca = dir.path("ca.crt");
  std::string server_cert = dir.path("server.crt");
  std::string server_key = dir.path("server.key");
  std::string client_cert = dir.path("client.crt");
  std::string client_key = dir.path("client.key");

  Certificates() {
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca -keyout " +
        dir.path("ca.key") + " -out " + ca);
    sign("server", "localhost", "DNS:localhost");
    sign("client", "client.test", "DNS:client.test,URI:spiffe://example.test/client");
    sign("wildcard", "wildcard", "DNS:*.example.test");
    sign("exact", "exact", "DNS:exact.test");
  }

  void sign(const std::string& name, const std::string& cn, const std::string& san) {
    const std::string ext = dir.path(name + ".ext");
    std::ofstream(ext) << "subjectAltName=" << san << "\n";
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + cn + " -keyout " +
        dir.path(name + ".key") + " -out " + dir.path(name + ".csr"));
    run("openssl x509 -req -in " + dir.path(name + ".csr") + " -CA " + ca + " -CAkey " + dir.path("ca.key") +
        " -CAcreateserial -days 2 -extfile " + ext + " -out " + dir.path(name + ".crt"));
  }

  // The client certificate's SHA-256 fingerprint as the openssl command prints it, lowercase
  // without colons.
  std::string client_fingerprint() {
    const std::string out = dir.path("fingerprint");
    run("openssl x509 -noout -fingerprint -sha256 -in " + client_cert + " -out " + out);
    std::string text = read_file(out);
    std::string hex;
    for (char c : text.substr(text.find('=') + 1)) {
      if (std::isxdigit(static_cast<unsigned char>(c))) hex += static_cast<char>(std::tolower(c));
    }
    return hex;
  }

  socketserver::TlsSettings settings() const {
    socketserver::TlsSettings tls;
    tls.cert_file = server_cert;
    tls.key_file = server_key;
    return tls;
  }
};

inline Certificates& certificates() {
  static Certificates made;
  return made;
}

// OpenSSL's client on a connected blocking socket: the handshake, then lines.
class TlsClient {
 public:
  // How a client connects beyond the defaults: its own certificate, the name it asks for, a
  // session to resume, the newest version it offers, OpenSSL options (SSL_OP_NO_TICKET).
  struct Options {
    bool with_certificate = false;
    std::string server_name = "localhost";
    SSL_SESSION* resume = nullptr;
    int max_version = 0;
    std::uint64_t options = 0;
    std::string alpn;  // the protocols offered, in ALPN's wire form
  };

  TlsClient(const socketserver::Address& address, const Certificates& certs, bool with_certificate,
            const std::string& server_name = "localhost")
      : TlsClient(address, certs, Options{with_certificate, server_name, nullptr, 0, 0, {}}) {}

  TlsClient(const socketserver::Address& address, const Certificates& certs, const Options& options)
      : socket_(Client::connect(address)), context_(SSL_CTX_new(TLS_client_method())) {
    const bool with_certificate = options.with_certificate;
    const std::string& server_name = options.server_name;
    if (options.max_version != 0) SSL_CTX_set_max_proto_version(context_.get(), options.max_version);
    SSL_CTX_set_options(context_.get(), options.options);
    if (!options.alpn.empty())
      SSL_CTX_set_alpn_protos(context_.get(), reinterpret_cast<const unsigned char*>(options.alpn.data()),
                              static_cast<unsigned>(options.alpn.size()));
    SSL_CTX_load_verify_locations(context_.get(), certs.ca.c_str(), nullptr);
    SSL_CTX_set_verify(context_.get(), SSL_VERIFY_PEER, nullptr);
    if (with_certificate) {
      SSL_CTX_use_certificate_file(context_.get(), certs.client_cert.c_str(), SSL_FILETYPE_PEM);
      SSL_CTX_use_PrivateKey_file(context_.get(), certs.client_key.c_str(), SSL_FILETYPE_PEM);
    }
    ssl_.reset(SSL_new(context_.get()));
    SSL_set_fd(ssl_.get(), socket_.fd());
    SSL_set_tlsext_host_name(ssl_.get(), server_name.c_str());
    SSL_set1_host(ssl_.get(), server_name.c_str());
    if (options.resume != nullptr) SSL_set_session(ssl_.get(), options.resume);
    if (SSL_connect(ssl_.get()) != 1) throw std::runtime_error("SSL_connect failed");
  }

  void send(const std::string& data) { REQUIRE(SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size())) > 0); }

  std::string readline() {
    std::string line;
    char c = 0;
    while (line.empty() || line.back() != '\n') {
      if (SSL_read(ssl_.get(), &c, 1) != 1) break;
      line += c;
    }
    return line;
  }

  // One SSL_read(): what came, empty at the end of the stream.
  std::string recv_some() {
    char buffer[16384];
    const int got = SSL_read(ssl_.get(), buffer, sizeof buffer);
    return got > 0 ? std::string(buffer, static_cast<std::size_t>(got)) : std::string();
  }

  void close_notify() { SSL_shutdown(ssl_.get()); }

  // Reads until the server's close_notify (or its end of stream); how many bytes came.
  std::size_t read_to_end() {
    std::size_t total = 0;
    char buffer[16384];
    for (int got = 0; (got = SSL_read(ssl_.get(), buffer, sizeof buffer)) > 0;) total += static_cast<std::size_t>(got);
    return total;
  }

  bool resumed() const { return SSL_session_reused(ssl_.get()) == 1; }

  // The session to resume later (TLS 1.3: its tickets came with the first answer). Owned by
  // the caller: SSL_SESSION_free().
  SSL_SESSION* session() const { return SSL_get1_session(ssl_.get()); }

  // The common name of the server's certificate.
  std::string peer_common_name() const {
    X509* certificate = SSL_get0_peer_certificate(ssl_.get());
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, sizeof name);
    return name;
  }

 private:
  struct CtxFree {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
  };
  struct SslFree {
    void operator()(SSL* s) const noexcept { SSL_free(s); }
  };
  Client socket_;
  std::unique_ptr<SSL_CTX, CtxFree> context_;
  std::unique_ptr<SSL, SslFree> ssl_;
};

}  // namespace test

#endif  // SOCKETSERVER_TESTS_TLS_SUPPORT_HPP
