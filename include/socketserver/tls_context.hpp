#ifndef SOCKETSERVER_TLS_CONTEXT_HPP
#define SOCKETSERVER_TLS_CONTEXT_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <socketserver/detail/config.hpp>
#include <socketserver/seconds.hpp>

// OpenSSL's own names for its types, so that this header needs none of OpenSSL's.
struct ssl_st;
struct ssl_ctx_st;

namespace socketserver {

namespace detail {
class TicketKeys;
}

/// Whether a TLS server asks its clients for a certificate (mutual TLS).
enum class ClientAuth : unsigned char {
  none,      ///< never asks (the default)
  optional,  ///< asks; a client may send none, but one it sends must verify against ca_file
  required,  ///< the handshake fails without a certificate that verifies against ca_file
};

/// The oldest TLS version a server accepts.
enum class TlsVersion : unsigned char { tls1_2, tls1_3 };

/// Why a TLS handshake failed: ServerStats::Tls counts each.
enum class TlsFailure : unsigned char {
  none,
  eof_before_hello,        ///< closed (or reset) before sending a byte: a scanner, a health probe
  not_tls,                 ///< the first bytes were not TLS (plaintext, HTTP)
  protocol_version,        ///< no version in common (a client of TLS 1.1 or older)
  no_shared_cipher,        ///< no cipher suite, group or signature algorithm in common
  bad_certificate,         ///< the client's certificate failed (or was missing), or it refused ours
  client_hello_too_large,  ///< over max_client_hello
  timed_out,               ///< not done within handshake_timeout
  unknown_server_name,     ///< strict_sni: the client asked for a name no certificate serves
  other,                   ///< anything else (the client closed inside the handshake, ...)
};
inline constexpr std::size_t tls_failure_count = 10;

/// What a TlsContext is made of: the certificate and key, whom to ask for a certificate, and the
/// protocol's settings, each with a default safe to face the Internet (docs/tls.md says why).
struct TlsSettings {
  /// TLS 1.2 cipher suites (OpenSSL's names): forward secret (ECDHE) AEADs only, no CBC, no RSA
  /// key exchange, no DHE.
  static constexpr std::string_view default_ciphers =
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
      "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
  /// TLS 1.3 cipher suites: all three of the standard's AEADs.
  static constexpr std::string_view default_ciphersuites =
      "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

  /// The certificate chain, PEM, the server's own certificate first.
  std::string cert_file;
  /// The private key of that certificate, PEM (not encrypted).
  std::string key_file;
  /// The CA certificates (PEM) that clients' certificates must verify against; needed by
  /// client_auth optional and required.
  std::string ca_file;
  ClientAuth client_auth = ClientAuth::none;

  /// A further certificate, chosen by the name a client asks for (SNI).
  struct Certificate {
    std::string cert_file;
    std::string key_file;
    /// The names it serves, exact ("example.com") or one label's wildcard ("*.example.com").
    /// Empty: the DNS names of its subjectAltName.
    std::vector<std::string> names;
  };
  /// Certificates by server name. An exact name wins over a wildcard, and a name none serves,
  /// or no name at all, gets cert_file (whose own DNS names count as its names).
  std::vector<Certificate> sni;
  /// Refuses a client that asks for a name no certificate serves, with the alert
  /// unrecognized_name (a client that names none still gets cert_file).
  bool strict_sni = false;

  /// TLS 1.2 by default (as Go, Netty, nginx and HAProxy): SSL 3.0, TLS 1.0 and 1.1 are refused.
  /// TLS 1.3 is preferred whenever the client offers it.
  TlsVersion minimum_version = TlsVersion::tls1_2;
  std::string ciphers{default_ciphers};
  std::string ciphersuites{default_ciphersuites};
  /// The key exchange groups, preferred first.
  std::string groups = "X25519:P-256";

  /// Application protocols (ALPN), preferred first, e.g. {"h2", "http/1.1"}. Empty: no ALPN. A
  /// client that offers ALPN but none of these is refused (no_application_protocol), as Go does.
  std::vector<std::string> alpn;

  /// From accept() to the end of the handshake; a connection still shaking hands is then closed
  /// with errc::handshake_timeout (counted as a timeout). A slow ClientHello holds nothing more.
  Seconds handshake_timeout = Seconds(10);
  /// On an orderly close the server sends its close_notify, then waits this long at most for the
  /// peer's (or its end of stream) before it closes the socket; 0 does not wait.
  Seconds close_notify_timeout = Seconds(1);
  /// The most bytes a client may send before its ClientHello is whole; more is refused with
  /// errc::client_hello_too_large.
  std::size_t max_client_hello = std::size_t{16} * 1024;

  /// Resumption: session tickets (stateless, TLS 1.3 and 1.2) and a TLS 1.2 session cache of at
  /// most session_cache_size sessions (for clients without tickets). The tickets' keys live in
  /// memory only, random, shared by reloads, and rotate every ticket_key_rotation: a ticket
  /// stays good for two periods (renewed in the second), then costs a full handshake.
  bool session_tickets = true;
  std::size_t session_cache_size = 20480;
  Seconds ticket_key_rotation = Seconds(3600);

  /// Called with each secret line in NSS key log format (for Wireshark), when set: the only way
  /// to log keys. No environment variable turns it on.
  std::function<void(std::string_view line)> keylog;
};

/// A server's TLS configuration, loaded and checked: `server.tls`. Python's ssl.SSLContext for
/// the server side, as the servers use it.
///
/// ```
/// socketserver::TlsSettings tls;
/// tls.cert_file = "server.pem";
/// tls.key_file = "server.key";
/// server.tls = std::make_shared<socketserver::TlsContext>(tls);
/// ```
/// The constructor loads the files and checks that the key matches the certificate, throwing
/// std::runtime_error (what OpenSSL said, with the file) or std::invalid_argument (settings that
/// cannot work). reload() does the same on the side and swaps only what loaded: connections keep
/// the context they began with, new ones get the new one, and a failed reload keeps the old
/// context (and is counted).
///
/// Thread safety: every member may be called from any thread; reload() is atomic for the
/// connections, which take the context as it is when they are accepted.
class TlsContext {
 public:
  explicit TlsContext(TlsSettings settings);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  /// Loads the same files again (a renewed certificate), keeping the settings.
  void reload();
  /// Loads `settings` in place of the current ones.
  void reload(TlsSettings settings);

  /// The settings in use (a copy).
  TlsSettings settings() const;

  /// Successful reloads, and reloads that failed (the old context kept).
  std::uint64_t reloads() const noexcept { return reloads_.load(std::memory_order_relaxed); }
  std::uint64_t reload_failures() const noexcept { return reload_failures_.load(std::memory_order_relaxed); }

  /// Makes a new ticket key now (the server also does it every ticket_key_rotation): tickets
  /// sealed with the previous key still resume, older ones no longer do.
  void rotate_ticket_keys();

  /// For TlsStream: a new OpenSSL connection on the current context, server side. The caller
  /// owns it (SSL_free). Throws std::runtime_error when OpenSSL cannot make one.
  ssl_st* new_connection() const;

 private:
  ssl_ctx_st* build(const TlsSettings& settings) const;
  ssl_ctx_st* build_one(const TlsSettings& settings, const std::string& cert_file, const std::string& key_file) const;

  mutable std::mutex mutex_;
  TlsSettings settings_;
  ssl_ctx_st* context_ = nullptr;  // OpenSSL counts its references: connections hold theirs
  std::atomic<std::uint64_t> reloads_{0};
  std::atomic<std::uint64_t> reload_failures_{0};
  std::shared_ptr<detail::TicketKeys> ticket_keys_;  // kept across reloads
};

namespace detail {
// What a connection reads from its context's settings, kept with the OpenSSL context (whose
// life connections extend past a reload).
struct TlsConnectionSettings {
  Seconds handshake_timeout{};
  Seconds close_notify_timeout{};
  std::size_t max_client_hello = 0;
};
// The settings of the context `ssl` was made from.
const TlsConnectionSettings& tls_connection_settings(const ssl_st* ssl) noexcept;
// Where a connection's callbacks say why they refused it (a TlsStream's own TlsFailure).
void set_tls_failure_slot(ssl_st* ssl, TlsFailure* slot) noexcept;
// OpenSSL's queued errors as one message (and the queue cleared); `fallback` when it is empty.
std::string take_openssl_errors(std::string_view fallback);
}  // namespace detail

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace socketserver {

namespace detail {
// Kept in the OpenSSL context's extra data, freed with it.
struct TlsContextData {
  TlsContextData() = default;
  TlsContextData(const TlsContextData&) = delete;
  TlsContextData& operator=(const TlsContextData&) = delete;
  ~TlsContextData() {
    for (SSL_CTX* context : owned) SSL_CTX_free(context);
  }

  // The context serving `name` (lowercase): an exact name first, then one label's wildcard;
  // null when none does.
  SSL_CTX* serving(std::string_view name) const noexcept {
    for (const auto& [pattern, context] : names) {
      if (pattern == name) return context;
    }
    const std::size_t dot = name.find('.');
    if (dot == std::string_view::npos || dot == 0) return nullptr;
    for (const auto& [pattern, context] : names) {
      if (pattern.size() == name.size() - dot + 1 && pattern.starts_with("*.") &&
          std::string_view(pattern).substr(1) == name.substr(dot))
        return context;
    }
    return nullptr;
  }

  TlsConnectionSettings connection;
  std::string alpn;  // the server's protocols in ALPN's wire form
  std::function<void(std::string_view)> keylog;
  std::vector<std::pair<std::string, SSL_CTX*>> names;  // SNI: lowercase name or "*.rest", and its context
  std::vector<SSL_CTX*> owned;                          // the SNI certificates' contexts
  bool strict_sni = false;
  std::shared_ptr<TicketKeys> ticket_keys;
};

inline int tls_failure_slot_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

SOCKETSERVER_DECL void set_tls_failure_slot(ssl_st* ssl, TlsFailure* slot) noexcept {
  SSL_set_ex_data(ssl, tls_failure_slot_index(), slot);
}

inline std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  return out;
}

// The DNS names of the subjectAltName of `context`'s certificate.
inline std::vector<std::string> dns_names(SSL_CTX* context) {
  std::vector<std::string> out;
  X509* certificate = SSL_CTX_get0_certificate(context);
  if (certificate == nullptr) return out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_STRING* text = name->d.dNSName;
    out.push_back(lowercase({reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                             static_cast<std::size_t>(ASN1_STRING_length(text))}));
  }
  GENERAL_NAMES_free(names);
  return out;
}

inline int tls_context_data_index() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr,
                               [](void* /*parent*/, void* data, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                                  void* /*argp*/) { delete static_cast<TlsContextData*>(data); });
  return index;
}

inline const TlsContextData& tls_context_data(const SSL_CTX* context) noexcept {
  return *static_cast<const TlsContextData*>(SSL_CTX_get_ex_data(context, tls_context_data_index()));
}

SOCKETSERVER_DECL const TlsConnectionSettings& tls_connection_settings(const ssl_st* ssl) noexcept {
  return tls_context_data(SSL_get_SSL_CTX(ssl)).connection;
}

SOCKETSERVER_DECL std::string take_openssl_errors(std::string_view fallback) {
  std::string message;
  while (const unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!message.empty()) message += "; ";
    message += text;
  }
  if (message.empty()) message = fallback;
  return message;
}

// The session tickets' keys: the newest seals, it and the one before open; a key older than two
// rotation periods is gone. Shared by a TlsContext's OpenSSL contexts, old and new.
class TicketKeys {
 public:
  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
  };

  // The first key is made at once: a forking server's children then inherit it.
  explicit TicketKeys(Seconds rotation) : rotation_(std::chrono::duration_cast<Clock::duration>(rotation)) {
    rotate_locked();
  }

  void set_rotation(Seconds rotation) {
    const std::lock_guard lock(mutex_);
    rotation_ = std::chrono::duration_cast<Clock::duration>(rotation);
  }

  // The key that seals a new ticket; false when no random key could be made.
  bool sealing(Key& out) {
    const std::lock_guard lock(mutex_);
    if (count_ == 0 || Clock::now() - made_ >= rotation_) rotate_locked();
    if (count_ == 0) return false;
    out = keys_[0];
    return true;
  }

  // The key named `name`, and whether the ticket should be renewed (sealed with an older key).
  bool opening(const unsigned char* name, Key& out, bool& renew) {
    const std::lock_guard lock(mutex_);
    if (count_ > 0 && Clock::now() - made_ >= rotation_) rotate_locked();
    for (std::size_t i = 0; i < count_; ++i) {
      if (std::memcmp(keys_[i].name, name, sizeof keys_[i].name) == 0) {
        out = keys_[i];
        renew = i > 0;
        return true;
      }
    }
    return false;
  }

  void rotate() {
    const std::lock_guard lock(mutex_);
    rotate_locked();
  }

 private:
  using Clock = std::chrono::steady_clock;

  void rotate_locked() {
    Key fresh{};
    if (RAND_bytes(fresh.name, sizeof fresh.name) != 1 || RAND_priv_bytes(fresh.aes, sizeof fresh.aes) != 1 ||
        RAND_priv_bytes(fresh.hmac, sizeof fresh.hmac) != 1)
      return;
    keys_[1] = keys_[0];
    keys_[0] = fresh;
    count_ = std::min<std::size_t>(count_ + 1, 2);
    made_ = Clock::now();
    OPENSSL_cleanse(&fresh, sizeof fresh);
  }

  std::mutex mutex_;
  Key keys_[2]{};
  std::size_t count_ = 0;
  Clock::time_point made_{};
  Clock::duration rotation_;
};

// OpenSSL's ticket key callback over TicketKeys: AES-256-CBC and HMAC-SHA256, as OpenSSL's own.
inline int ticket_key_callback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                               EVP_MAC_CTX* mac, int seal);

struct SslCtxDeleter {
  void operator()(SSL_CTX* context) const noexcept { SSL_CTX_free(context); }
};
}  // namespace detail

SOCKETSERVER_DECL TlsContext::TlsContext(TlsSettings settings)
    : settings_(std::move(settings)),
      ticket_keys_(std::make_shared<detail::TicketKeys>(settings_.ticket_key_rotation)) {
  context_ = build(settings_);
}

SOCKETSERVER_DECL void TlsContext::rotate_ticket_keys() { ticket_keys_->rotate(); }

SOCKETSERVER_DECL TlsContext::~TlsContext() { SSL_CTX_free(context_); }

SOCKETSERVER_DECL void TlsContext::reload() { reload(settings()); }

SOCKETSERVER_DECL void TlsContext::reload(TlsSettings settings) {
  ssl_ctx_st* fresh = nullptr;
  try {
    fresh = build(settings);
  } catch (...) {
    reload_failures_.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
  ssl_ctx_st* old = nullptr;
  {
    const std::lock_guard lock(mutex_);
    old = context_;
    context_ = fresh;
    settings_ = std::move(settings);
  }
  SSL_CTX_free(old);  // live connections hold their own references
  ticket_keys_->set_rotation(settings_.ticket_key_rotation);
  reloads_.fetch_add(1, std::memory_order_relaxed);
}

SOCKETSERVER_DECL TlsSettings TlsContext::settings() const {
  const std::lock_guard lock(mutex_);
  return settings_;
}

SOCKETSERVER_DECL ssl_st* TlsContext::new_connection() const {
  SSL* ssl = nullptr;
  {
    const std::lock_guard lock(mutex_);
    ssl = SSL_new(context_);
  }
  if (ssl == nullptr) throw std::runtime_error(detail::take_openssl_errors("TLS: SSL_new failed"));
  return ssl;
}

SOCKETSERVER_DECL ssl_ctx_st* TlsContext::build(const TlsSettings& settings) const {
  if (settings.cert_file.empty() || settings.key_file.empty())
    throw std::invalid_argument("TLS: a certificate (cert_file) and its key (key_file) are needed");
  std::unique_ptr<SSL_CTX, detail::SslCtxDeleter> context(build_one(settings, settings.cert_file, settings.key_file));
  // The callback runs for every connection: its answer also keeps the name in the session, for
  // TlsStream::server_name() after a TLS 1.2 resumption.
  auto& data =
      *static_cast<detail::TlsContextData*>(SSL_CTX_get_ex_data(context.get(), detail::tls_context_data_index()));
  data.strict_sni = settings.strict_sni;
  for (const TlsSettings::Certificate& more : settings.sni) {
    if (more.cert_file.empty() || more.key_file.empty())
      throw std::invalid_argument("TLS: an SNI certificate needs cert_file and key_file");
    data.owned.push_back(build_one(settings, more.cert_file, more.key_file));
    SSL_CTX* serving = data.owned.back();
    std::vector<std::string> names;
    for (const std::string& name : more.names) names.push_back(detail::lowercase(name));
    if (names.empty()) names = detail::dns_names(serving);
    if (names.empty())
      throw std::invalid_argument("TLS: the SNI certificate " + more.cert_file + " names no DNS name: give its names");
    for (std::string& name : names) data.names.emplace_back(std::move(name), serving);
  }
  for (std::string& name : detail::dns_names(context.get())) data.names.emplace_back(std::move(name), context.get());
  SSL_CTX_set_tlsext_servername_callback(
      context.get(), +[](SSL* ssl, int* alert, void* /*arg*/) {
        const char* asked = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        if (asked == nullptr) return SSL_TLSEXT_ERR_NOACK;  // cert_file's
        const detail::TlsContextData& table = detail::tls_context_data(SSL_get_SSL_CTX(ssl));
        SSL_CTX* serving = table.serving(detail::lowercase(asked));
        if (serving == nullptr) {
          if (!table.strict_sni) return SSL_TLSEXT_ERR_OK;
          if (auto* why = static_cast<TlsFailure*>(SSL_get_ex_data(ssl, detail::tls_failure_slot_index())))
            *why = TlsFailure::unknown_server_name;
          *alert = SSL_AD_UNRECOGNIZED_NAME;
          return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
        if (serving != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, serving);
        return SSL_TLSEXT_ERR_OK;
      });
  return context.release();
}

SOCKETSERVER_DECL ssl_ctx_st* TlsContext::build_one(const TlsSettings& settings, const std::string& cert_file,
                                                    const std::string& key_file) const {
  const auto fail = [](const std::string& what) -> void {
    throw std::runtime_error("TLS: " + what + ": " + detail::take_openssl_errors("failed"));
  };
  if (settings.client_auth != ClientAuth::none && settings.ca_file.empty())
    throw std::invalid_argument("TLS: client_auth optional or required needs ca_file, the clients' CA");
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, detail::SslCtxDeleter> context(SSL_CTX_new(TLS_server_method()));
  if (!context) fail("SSL_CTX_new");
  SSL_CTX* ctx = context.get();
  const int floor = settings.minimum_version == TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx, floor) != 1) fail("minimum_version");
  // No renegotiation (a client-driven CPU sink and a source of attacks), no compression
  // (CRIME), and our cipher order.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               (settings.session_tickets ? 0 : SSL_OP_NO_TICKET));
  // Record buffers are released while a connection is idle; a write may return after a whole
  // record, and be retried from another address.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);  // one recv() takes what has come, not a record header first
  if (SSL_CTX_set_cipher_list(ctx, settings.ciphers.c_str()) != 1) fail("ciphers \"" + settings.ciphers + "\"");
  if (SSL_CTX_set_ciphersuites(ctx, settings.ciphersuites.c_str()) != 1)
    fail("ciphersuites \"" + settings.ciphersuites + "\"");
  if (SSL_CTX_set1_groups_list(ctx, settings.groups.c_str()) != 1) fail("groups \"" + settings.groups + "\"");
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
    fail("cannot load the certificate chain " + cert_file);
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
      fail("the key " + key_file + " does not match the certificate " + cert_file);
    fail("cannot load the private key " + key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) fail("the key " + key_file + " does not match the certificate " + cert_file);
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, settings.ca_file.c_str(), nullptr) != 1)
      fail("cannot load the CA certificates " + settings.ca_file);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.ca_file.c_str());
    if (names == nullptr) fail("no CA names in " + settings.ca_file);
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  int verify = SSL_VERIFY_NONE;
  if (settings.client_auth == ClientAuth::optional) verify = SSL_VERIFY_PEER;
  if (settings.client_auth == ClientAuth::required) verify = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx, verify, nullptr);
  static constexpr unsigned char session_context[] = "socketserver";
  SSL_CTX_set_session_id_context(ctx, session_context, sizeof session_context - 1);
  SSL_CTX_set_session_cache_mode(ctx, settings.session_cache_size > 0 ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
  SSL_CTX_sess_set_cache_size(ctx, static_cast<long>(settings.session_cache_size));

  auto data = std::make_unique<detail::TlsContextData>();
  data->connection = {settings.handshake_timeout, settings.close_notify_timeout, settings.max_client_hello};
  for (const std::string& protocol : settings.alpn) {
    if (protocol.empty() || protocol.size() > 255)
      throw std::invalid_argument("TLS: an ALPN protocol name is 1 to 255 bytes");
    data->alpn += static_cast<char>(protocol.size());
    data->alpn += protocol;
  }
  data->keylog = settings.keylog;
  data->ticket_keys = ticket_keys_;
  if (settings.session_tickets) SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, detail::ticket_key_callback);
  if (!data->alpn.empty()) {
    SSL_CTX_set_alpn_select_cb(
        ctx,
        [](SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
           void* /*arg*/) {
          const std::string& ours = detail::tls_context_data(SSL_get_SSL_CTX(ssl)).alpn;
          unsigned char* chosen = nullptr;
          if (SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(ours.data()),
                                    static_cast<unsigned int>(ours.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED)
            return SSL_TLSEXT_ERR_ALERT_FATAL;
          *out = chosen;
          return SSL_TLSEXT_ERR_OK;
        },
        nullptr);
  }
  if (data->keylog) {
    SSL_CTX_set_keylog_callback(ctx, [](const SSL* ssl, const char* line) {
      const auto& log = detail::tls_context_data(SSL_get_SSL_CTX(ssl)).keylog;
      try {
        log(line);
      } catch (...) {  // a callback's failure must not unwind through OpenSSL
      }
    });
  }
  if (SSL_CTX_set_ex_data(ctx, detail::tls_context_data_index(), data.get()) != 1) fail("SSL_CTX_set_ex_data");
  static_cast<void>(data.release());  // the context frees it
  return context.release();
}

namespace detail {
inline int ticket_key_callback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                               EVP_MAC_CTX* mac, int seal) {
  TicketKeys& keys = *tls_context_data(SSL_get_SSL_CTX(ssl)).ticket_keys;
  TicketKeys::Key key{};
  bool renew = false;
  if (seal == 1) {
    if (!keys.sealing(key) || RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(name, key.name, sizeof key.name);
  } else if (!keys.opening(name, key, renew)) {
    return 0;  // an unknown or expired key: a full handshake
  }
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof key.hmac),
                               OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  const int ok = EVP_MAC_CTX_set_params(mac, params) == 1 &&
                 (seal == 1 ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv)
                            : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv)) == 1;
  OPENSSL_cleanse(&key, sizeof key);
  if (!ok) return -1;
  return renew ? 2 : 1;
}
}  // namespace detail

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_TLS_CONTEXT_HPP
