#ifndef SOCKETSERVER_IO_TLS_STREAM_HPP
#define SOCKETSERVER_IO_TLS_STREAM_HPP

#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <socketserver/detail/config.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/stream_layer.hpp>
#include <socketserver/seconds.hpp>
#include <socketserver/tls_context.hpp>

struct bio_st;

namespace socketserver {

/// The certificate a TLS client presented (mutual TLS), as the handler reads it.
struct PeerCertificate {
  std::string subject;                    ///< RFC 2253, e.g. "CN=alice,O=Example"
  std::string issuer;                     ///< RFC 2253
  std::vector<std::string> dns_names;     ///< subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  ///< subjectAltName IP entries, as text
  std::vector<std::string> emails;        ///< subjectAltName email entries
  std::vector<std::string> uris;          ///< subjectAltName URI entries (SPIFFE IDs, ...)
  std::string sha256;                     ///< SHA-256 of the DER, lowercase hex
  std::vector<std::string> chain;         ///< the chain as sent, PEM, this certificate first
  bool verified = false;                  ///< verified against TlsSettings::ca_file
};

/// The TLS layer (OpenSSL): the server side of a TLS connection over the stream below it, which
/// it owns. Servers put it on a connection when `server.tls` is set, above the PROXY layer and
/// under the user's layers; the handler's rfile and wfile then carry plaintext.
///
/// The handshake runs in handshake(), on the connection's own thread or event loop. OpenSSL
/// reads and writes through the stream below (a BIO of ours), so the layer works under both
/// modes: under a coroutine handler it returns would_block with the direction OpenSSL waits
/// for (a read may wait to write); under a blocking one it waits with poll() on the socket,
/// holding no lock, so one thread may write while another waits to read (full duplex: OpenSSL
/// allows one call at a time, which a mutex keeps). Read-ahead makes one recv() take what has
/// come; records are sealed as large as the writes (a flushed wfile is one record up to 16 KiB);
/// record buffers are released while the connection is idle.
///
/// The end of the stream: read_some() returns 0 after the peer's close_notify, and also when the
/// peer closed without one; truncated() then says so, and the readers treat it as
/// errc::truncated_frame inside a line or frame (an attacker who cuts the connection cannot pass
/// a partial request off as whole), as a clean end between them. close_handshake() sends our
/// close_notify and waits, until its deadline, for the peer's.
///
/// Failures throw std::system_error: errc::tls_handshake_failed (failure() says why),
/// errc::handshake_timeout, errc::client_hello_too_large, errc::tls_error after the handshake,
/// std::errc::timed_out when a read or write waits past the stream's timeout, and what the
/// stream below throws (a reset).
class TlsStream final : public StreamLayer {
 public:
  /// Takes `next` and starts a server-side connection on `context` as it is now (a later
  /// reload() does not change it). Throws std::runtime_error when OpenSSL cannot.
  TlsStream(std::unique_ptr<ByteStream> next, const TlsContext& context);
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  /// The TLS handshake, after the stream below's; a blocking stream waits until `deadline` at
  /// most (then errc::handshake_timeout).
  bool handshake(Clock::time_point deadline) override;

  std::size_t read_some(std::span<char> buffer) override;
  std::size_t write_some(std::span<const char> data) override;
  Direction blocked_on() const noexcept override { return blocked_on_; }

  /// Sends close_notify and a FIN, then waits until `deadline` at most for the peer's
  /// close_notify or its end of stream, discarding what it still sends. True when done (or
  /// when there is nothing to do: no handshake, a failed connection); a non-blocking stream
  /// returns false when it must wait for blocked_on().
  bool close_handshake(Clock::time_point deadline) override;

  /// Sends close_notify if close_handshake() has not (without waiting), then the FIN.
  void shutdown_write() noexcept override;

  /// The stream's own timeouts: the socket below is driven without waiting in the kernel.
  std::optional<Seconds> timeout(Direction direction) const noexcept override;
  void set_timeout(Direction direction, std::optional<Seconds> limit) noexcept override;
  using ByteStream::set_timeout;

  /// The limits of the context the connection was made with (TlsSettings).
  Seconds handshake_timeout() const noexcept { return settings_->handshake_timeout; }
  Seconds close_notify_timeout() const noexcept { return settings_->close_notify_timeout; }

  /// Whether the handshake is done.
  bool established() const noexcept { return established_; }
  /// Why the handshake failed, after it threw.
  TlsFailure failure() const noexcept { return failure_; }
  /// After read_some() returned 0: whether the peer closed without close_notify.
  bool truncated() const noexcept override { return truncated_; }

  /// After the handshake: the protocol ("TLSv1.3"), the cipher suite (OpenSSL's name), the
  /// protocol ALPN chose (empty without one), the name the client asked for (SNI; empty without
  /// one), and whether the session was resumed.
  std::string protocol() const;
  std::string cipher() const;
  std::string alpn() const;
  std::string server_name() const;
  bool resumed() const noexcept;

  /// The client's certificate, or null when it sent none (client_auth none never asks).
  const PeerCertificate* peer_certificate() const;

 private:
  friend struct TlsStreamBio;

  // The outcome of one OpenSSL call, taken under the lock.
  struct Step {
    int result = 0;
    int error = 0;             // SSL_get_error()
    unsigned long reason = 0;  // OpenSSL's first queued error, when it failed
    std::string message;       // what OpenSSL said
    Direction wait = Direction::read;
    bool would_block = false;        // the stream below returned would_block (coroutine mode)
    bool eof = false;                // the stream below has ended
    std::exception_ptr below_error;  // what the stream below threw
  };

  template <class Call>
  Step step(Call call);

  // Runs `call` (SSL_read, SSL_write) until it moves bytes or fails for good. A blocking stream
  // waits for the socket, at most the stream's timeout in `direction` from the first wait (then
  // std::errc::timed_out, naming `what`); a non-blocking one sets `blocked` instead.
  template <class Call>
  Step transfer(Call call, Direction direction, const char* what, bool& blocked);

  // Blocking only: waits until the socket is ready for `direction` or `deadline` passes.
  bool wait(Direction direction, Clock::time_point deadline) const;

  // The deadline of one read or write from the stream's timeout in `direction`.
  Clock::time_point deadline_for(Direction direction) const noexcept;

  // For a failure in `step`: rethrows what the stream below threw, else throws `code`.
  [[noreturn]] void fail(const Step& step, std::error_code code, const char* what);

  TlsFailure classify(const Step& step) const noexcept;

  // close_handshake()'s own part: close_notify out, the peer's in.
  bool close_tls(Clock::time_point deadline);

  int bio_read(bio_st* bio, char* data, int size) noexcept;
  int bio_write(bio_st* bio, const char* data, int size) noexcept;

  mutable std::mutex mutex_;  // one OpenSSL call at a time
  ssl_st* ssl_ = nullptr;
  const detail::TlsConnectionSettings* settings_;
  std::exception_ptr below_error_;  // what the stream below threw inside an OpenSSL call
  std::size_t received_ = 0;        // bytes read before the ClientHello was whole
  bool polls_;                      // blocking mode waits with poll() on the socket
  bool would_block_ = false;        // in the current call: the stream below returned would_block
  bool eof_ = false;                // the stream below ended
  bool hello_done_ = false;         // the server has answered the ClientHello
  bool hello_too_large_ = false;
  bool established_ = false;
  bool failed_ = false;  // a fatal error: no close_notify may follow
  bool ended_ = false;   // read_some() returned 0
  bool truncated_ = false;
  bool close_notify_sent_ = false;
  bool closing_done_ = false;
  TlsFailure failure_ = TlsFailure::none;
  Direction blocked_on_ = Direction::read;
  double timeouts_[2] = {-1.0, -1.0};  // blocking mode's own timeouts; negative: none
  mutable std::unique_ptr<PeerCertificate> peer_;
  mutable bool peer_read_ = false;
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <socketserver/error.hpp>

namespace socketserver {

// OpenSSL's entry points into the layer: the stream below, as a BIO.
struct TlsStreamBio {
  static TlsStream& self(BIO* bio) noexcept { return *static_cast<TlsStream*>(BIO_get_data(bio)); }
  static BIO_METHOD* method() {
    static BIO_METHOD* const made = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "socketserver::TlsStream");
      if (m == nullptr) return m;
      BIO_meth_set_write(m, [](BIO* bio, const char* data, int size) { return self(bio).bio_write(bio, data, size); });
      BIO_meth_set_read(m, [](BIO* bio, char* data, int size) { return self(bio).bio_read(bio, data, size); });
      BIO_meth_set_ctrl(m, [](BIO* /*bio*/, int cmd, long /*num*/, void* /*ptr*/) -> long {
        return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // writes go straight to the stream below
      });
      BIO_meth_set_create(m, [](BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
      });
      return m;
    }();
    return made;
  }
};

SOCKETSERVER_DECL TlsStream::TlsStream(std::unique_ptr<ByteStream> next, const TlsContext& context)
    : StreamLayer(std::move(next)), polls_(StreamLayer::native_handle() >= 0) {
  BIO_METHOD* method = TlsStreamBio::method();
  if (method == nullptr) throw std::runtime_error(detail::take_openssl_errors("TLS: BIO_meth_new failed"));
  ssl_ = context.new_connection();
  settings_ = &detail::tls_connection_settings(ssl_);
  BIO* bio = BIO_new(method);
  if (bio == nullptr) {
    SSL_free(ssl_);
    throw std::runtime_error(detail::take_openssl_errors("TLS: BIO_new failed"));
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_accept_state(ssl_);
  detail::set_tls_failure_slot(ssl_, &failure_);
  if (polls_) {
    // The socket never waits in the kernel: this layer waits with poll(), without the lock.
    StreamLayer::set_timeout(Direction::read, Seconds(0));
    StreamLayer::set_timeout(Direction::write, Seconds(0));
  }
}

SOCKETSERVER_DECL TlsStream::~TlsStream() { SSL_free(ssl_); }

template <class Call>
TlsStream::Step TlsStream::step(Call call) {
  Step out;
  const std::lock_guard lock(mutex_);
  // SSL_get_error() reads the thread's error queue, which a failure below leaves empty (its
  // errors are taken into the message): clearing it costs more than looking (5% of a TLS
  // ping-pong's instructions), so it is cleared only when something else left errors there.
  if (ERR_peek_error() != 0) ERR_clear_error();
  below_error_ = nullptr;
  would_block_ = false;
  out.result = call(ssl_);
  if (out.result > 0) return out;
  out.error = SSL_get_error(ssl_, out.result);
  out.would_block = would_block_;
  out.eof = eof_;
  out.below_error = std::exchange(below_error_, nullptr);
  if (out.error == SSL_ERROR_WANT_READ || out.error == SSL_ERROR_WANT_WRITE) {
    out.wait = out.error == SSL_ERROR_WANT_READ ? Direction::read : Direction::write;
    if (would_block_) out.wait = next().blocked_on();
    blocked_on_ = out.wait;
    return out;
  }
  if (out.error == SSL_ERROR_SSL || out.error == SSL_ERROR_SYSCALL) {
    out.reason = ERR_peek_error();
    out.message = detail::take_openssl_errors(eof_ ? "the peer closed the connection" : "TLS error");
    if (out.error == SSL_ERROR_SSL || out.below_error) failed_ = true;
  }
  return out;
}

SOCKETSERVER_DECL bool TlsStream::wait(Direction direction, Clock::time_point deadline) const {
  int timeout_ms = -1;
  if (deadline != Clock::time_point::max()) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) return false;
    timeout_ms =
        static_cast<int>(std::min<long long>(INT_MAX, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
  }
  pollfd entry{StreamLayer::native_handle(), static_cast<short>(direction == Direction::read ? POLLIN : POLLOUT), 0};
  for (;;) {
    const int n = ::poll(&entry, 1, timeout_ms);
    if (n > 0) return true;  // ready, or an error the next call reports
    if (n == 0) return false;
    if (errno != EINTR) return true;
    if (deadline != Clock::time_point::max() && Clock::now() >= deadline) return false;
  }
}

SOCKETSERVER_DECL ByteStream::Clock::time_point TlsStream::deadline_for(Direction direction) const noexcept {
  const double seconds = timeouts_[direction == Direction::read ? 0 : 1];
  if (seconds < 0) return Clock::time_point::max();
  return Clock::now() + std::chrono::ceil<Clock::duration>(Seconds(seconds));
}

SOCKETSERVER_DECL void TlsStream::fail(const Step& step, std::error_code code, const char* what) {
  if (step.below_error) std::rethrow_exception(step.below_error);
  throw std::system_error(code, std::string(what) + ": " + step.message);
}

SOCKETSERVER_DECL bool TlsStream::handshake(Clock::time_point deadline) {
  if (established_) return true;
  if (!StreamLayer::handshake(deadline)) return false;
  for (;;) {
    const Step s = step([](SSL* ssl) { return SSL_do_handshake(ssl); });
    if (s.result == 1) {
      established_ = true;
      return true;
    }
    if (s.error == SSL_ERROR_WANT_READ || s.error == SSL_ERROR_WANT_WRITE) {
      if (!polls_ || s.would_block) return false;
      if (wait(s.wait, deadline)) continue;
      failure_ = TlsFailure::timed_out;
      throw std::system_error(errc::handshake_timeout, "TLS handshake");
    }
    failed_ = true;
    if (failure_ == TlsFailure::none) failure_ = classify(s);  // a callback may have said why
    if (failure_ == TlsFailure::client_hello_too_large)
      throw std::system_error(errc::client_hello_too_large, "TLS handshake");
    if (s.below_error && failure_ != TlsFailure::eof_before_hello) std::rethrow_exception(s.below_error);
    fail(s, errc::tls_handshake_failed, "TLS handshake");
  }
}

SOCKETSERVER_DECL TlsFailure TlsStream::classify(const Step& s) const noexcept {
  if (hello_too_large_) return TlsFailure::client_hello_too_large;
  if (received_ == 0 && (s.eof || s.below_error)) return TlsFailure::eof_before_hello;
  if (ERR_GET_LIB(s.reason) != ERR_LIB_SSL) return TlsFailure::other;
  switch (ERR_GET_REASON(s.reason)) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
      return TlsFailure::not_tls;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      return TlsFailure::protocol_version;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
      return TlsFailure::no_shared_cipher;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return TlsFailure::bad_certificate;
    default:
      return TlsFailure::other;
  }
}

template <class Call>
TlsStream::Step TlsStream::transfer(Call call, Direction direction, const char* what, bool& blocked) {
  std::optional<Clock::time_point> deadline;
  for (;;) {
    Step s = step(call);
    if (s.result > 0 || (s.error != SSL_ERROR_WANT_READ && s.error != SSL_ERROR_WANT_WRITE)) return s;
    if (!polls_ || s.would_block) {
      blocked = true;
      return s;
    }
    if (!deadline) deadline = deadline_for(direction);
    if (!wait(s.wait, *deadline)) throw std::system_error(std::make_error_code(std::errc::timed_out), what);
  }
}

SOCKETSERVER_DECL std::size_t TlsStream::read_some(std::span<char> buffer) {
  if (buffer.empty()) return 0;
  if (ended_) return 0;
  const int size = static_cast<int>(std::min<std::size_t>(buffer.size(), INT_MAX));
  bool blocked = false;
  const Step s =
      transfer([&](SSL* ssl) { return SSL_read(ssl, buffer.data(), size); }, Direction::read, "recv", blocked);
  if (blocked) return would_block;
  if (s.result > 0) return static_cast<std::size_t>(s.result);
  if (s.error == SSL_ERROR_ZERO_RETURN) {  // the peer's close_notify
    ended_ = true;
    return 0;
  }
  if (!s.below_error && (s.eof || ERR_GET_REASON(s.reason) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    ended_ = truncated_ = true;  // closed without close_notify
    failed_ = true;
    return 0;
  }
  fail(s, errc::tls_error, "TLS read");
}

SOCKETSERVER_DECL std::size_t TlsStream::write_some(std::span<const char> data) {
  if (data.empty()) return 0;
  const int size = static_cast<int>(std::min<std::size_t>(data.size(), INT_MAX));
  bool blocked = false;
  const Step s =
      transfer([&](SSL* ssl) { return SSL_write(ssl, data.data(), size); }, Direction::write, "send", blocked);
  if (blocked) return would_block;
  if (s.result > 0) return static_cast<std::size_t>(s.result);
  if (s.error == SSL_ERROR_ZERO_RETURN || (!s.below_error && s.eof))
    throw std::system_error(std::make_error_code(std::errc::broken_pipe), "TLS write: the peer closed");
  fail(s, errc::tls_error, "TLS write");
}

SOCKETSERVER_DECL bool TlsStream::close_handshake(Clock::time_point deadline) {
  if (!closing_done_ && !close_tls(deadline)) return false;
  closing_done_ = true;
  return StreamLayer::close_handshake(deadline);
}

SOCKETSERVER_DECL bool TlsStream::close_tls(Clock::time_point deadline) {
  if (!established_ || failed_) return true;
  if (!close_notify_sent_) {
    for (;;) {
      const Step s = step([](SSL* ssl) { return SSL_shutdown(ssl); });
      if (s.result >= 0) break;  // sent (1: the peer's had come too)
      if (s.error != SSL_ERROR_WANT_WRITE && s.error != SSL_ERROR_WANT_READ) return true;
      if (!polls_ || s.would_block) return Clock::now() >= deadline;  // the loop waits, or it is too late
      if (!wait(s.wait, deadline)) return true;
    }
    close_notify_sent_ = true;
    StreamLayer::shutdown_write();
  }
  if ((SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0 || ended_) return true;
  char discard[4096];
  for (;;) {
    if (Clock::now() >= deadline) return true;
    const Step s = step([&](SSL* ssl) { return SSL_read(ssl, discard, sizeof discard); });
    if (s.result > 0) continue;
    if (s.error != SSL_ERROR_WANT_READ && s.error != SSL_ERROR_WANT_WRITE) return true;  // close_notify, EOF
    if (!polls_ || s.would_block) return false;
    if (!wait(s.wait, deadline)) return true;
  }
}

SOCKETSERVER_DECL void TlsStream::shutdown_write() noexcept {
  if (established_ && !failed_ && !close_notify_sent_) {
    close_notify_sent_ = true;
    try {
      step([](SSL* ssl) { return SSL_shutdown(ssl); });  // the socket below never waits
    } catch (...) {
    }
  }
  StreamLayer::shutdown_write();
}

SOCKETSERVER_DECL std::optional<Seconds> TlsStream::timeout(Direction direction) const noexcept {
  if (!polls_) return StreamLayer::timeout(direction);
  const double seconds = timeouts_[direction == Direction::read ? 0 : 1];
  if (seconds < 0) return std::nullopt;
  return Seconds(seconds);
}

SOCKETSERVER_DECL void TlsStream::set_timeout(Direction direction, std::optional<Seconds> limit) noexcept {
  if (!polls_) {
    StreamLayer::set_timeout(direction, limit);
    return;
  }
  timeouts_[direction == Direction::read ? 0 : 1] = limit ? std::max(limit->count(), 0.0) : -1.0;
}

SOCKETSERVER_DECL std::string TlsStream::protocol() const {
  const std::lock_guard lock(mutex_);
  return SSL_get_version(ssl_);
}

SOCKETSERVER_DECL std::string TlsStream::cipher() const {
  const std::lock_guard lock(mutex_);
  const char* name = SSL_get_cipher_name(ssl_);
  return name != nullptr ? name : "";
}

SOCKETSERVER_DECL std::string TlsStream::alpn() const {
  const std::lock_guard lock(mutex_);
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(ssl_, &data, &size);
  return data != nullptr ? std::string(reinterpret_cast<const char*>(data), size) : std::string();
}

SOCKETSERVER_DECL std::string TlsStream::server_name() const {
  const std::lock_guard lock(mutex_);
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? name : "";
}

SOCKETSERVER_DECL bool TlsStream::resumed() const noexcept {
  const std::lock_guard lock(mutex_);
  return SSL_session_reused(ssl_) == 1;
}

namespace detail {
inline std::string x509_name(X509_NAME* name) {
  std::string out;
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return out;
  if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    if (size > 0) out.assign(data, static_cast<std::size_t>(size));
  }
  BIO_free(bio);
  return out;
}

inline std::string x509_pem(X509* certificate) {
  std::string out;
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return out;
  if (PEM_write_bio_X509(bio, certificate) == 1) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    if (size > 0) out.assign(data, static_cast<std::size_t>(size));
  }
  BIO_free(bio);
  return out;
}

inline void read_subject_alt_names(X509* certificate, PeerCertificate& out) {
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return;
  const auto text = [](ASN1_STRING* s) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
  };
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) out.dns_names.push_back(text(name->d.dNSName));
    if (name->type == GEN_EMAIL) out.emails.push_back(text(name->d.rfc822Name));
    if (name->type == GEN_URI) out.uris.push_back(text(name->d.uniformResourceIdentifier));
    if (name->type == GEN_IPADD) {
      const int length = ASN1_STRING_length(name->d.iPAddress);
      char address[INET6_ADDRSTRLEN] = {};
      if ((length == 4 || length == 16) &&
          ::inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(name->d.iPAddress), address,
                      sizeof address) != nullptr)
        out.ip_addresses.emplace_back(address);
    }
  }
  GENERAL_NAMES_free(names);
}
}  // namespace detail

SOCKETSERVER_DECL const PeerCertificate* TlsStream::peer_certificate() const {
  const std::lock_guard lock(mutex_);
  if (peer_read_) return peer_.get();
  peer_read_ = true;
  X509* certificate = SSL_get1_peer_certificate(ssl_);
  if (certificate == nullptr) return nullptr;
  auto out = std::make_unique<PeerCertificate>();
  out->subject = detail::x509_name(X509_get_subject_name(certificate));
  out->issuer = detail::x509_name(X509_get_issuer_name(certificate));
  detail::read_subject_alt_names(certificate, *out);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (X509_digest(certificate, EVP_sha256(), digest, &size) == 1) {
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < size; ++i) {
      out->sha256 += hex[digest[i] >> 4];
      out->sha256 += hex[digest[i] & 15];
    }
  }
  out->verified = SSL_get_verify_result(ssl_) == X509_V_OK;
  // OpenSSL's server side may leave the client's own certificate out of the chain.
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl_);
  const int count = chain != nullptr ? sk_X509_num(chain) : 0;
  if (count == 0 || X509_cmp(sk_X509_value(chain, 0), certificate) != 0)
    out->chain.push_back(detail::x509_pem(certificate));
  for (int i = 0; i < count; ++i) out->chain.push_back(detail::x509_pem(sk_X509_value(chain, i)));
  X509_free(certificate);
  peer_ = std::move(out);
  return peer_.get();
}

SOCKETSERVER_DECL int TlsStream::bio_read(BIO* bio, char* data, int size) noexcept {
  BIO_clear_retry_flags(bio);
  try {
    const std::size_t n = next().read_some({data, static_cast<std::size_t>(size)});
    if (n == would_block) {
      would_block_ = true;
      BIO_set_retry_read(bio);
      return -1;
    }
    if (n == 0) {
      eof_ = true;
      return 0;
    }
    if (!hello_done_) {
      received_ += n;
      if (received_ > settings_->max_client_hello) {
        hello_too_large_ = true;
        return -1;
      }
    }
    return static_cast<int>(n);
  } catch (const std::system_error& e) {
    if (polls_ && e.code() == std::errc::timed_out) {  // EAGAIN: the socket below never waits
      BIO_set_retry_read(bio);
      return -1;
    }
    below_error_ = std::current_exception();
  } catch (...) {
    below_error_ = std::current_exception();
  }
  return -1;
}

SOCKETSERVER_DECL int TlsStream::bio_write(BIO* bio, const char* data, int size) noexcept {
  BIO_clear_retry_flags(bio);
  hello_done_ = true;  // the first bytes written answer a whole ClientHello
  try {
    const std::size_t n = next().write_some({data, static_cast<std::size_t>(size)});
    if (n == would_block) {
      would_block_ = true;
      BIO_set_retry_write(bio);
      return -1;
    }
    return static_cast<int>(n);
  } catch (const std::system_error& e) {
    if (polls_ && e.code() == std::errc::timed_out) {
      BIO_set_retry_write(bio);
      return -1;
    }
    below_error_ = std::current_exception();
  } catch (...) {
    below_error_ = std::current_exception();
  }
  return -1;
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_IO_TLS_STREAM_HPP
