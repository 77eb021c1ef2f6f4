#ifndef SOCKETSERVER_ERROR_HPP
#define SOCKETSERVER_ERROR_HPP

#include <string>
#include <system_error>
#include <type_traits>

namespace socketserver {

/// Conditions the library itself reports, thrown as std::system_error.
///
/// Socket failures keep their errno (std::system_category); a read that waits longer than the
/// stream's own timeout (StreamRequestHandler::timeout) throws std::errc::timed_out, like
/// Python's socket.timeout. The server's limits (socketserver::Limits) throw the codes below, so
/// that a log line can say which limit closed the connection.
enum class errc {
  /// A line grew past the reader's max_line before its newline arrived.
  line_too_long = 1,
  /// A frame (length-prefixed or delimited) is larger than its cap.
  frame_too_large,
  /// The stream ended inside a frame.
  truncated_frame,
  /// The peer sent nothing within Limits::first_byte_timeout of connecting.
  first_byte_timeout,
  /// The peer sent nothing for Limits::idle_timeout while the handler waited for input.
  idle_timeout,
  /// A read that had started (part of a line or frame had arrived) took longer than
  /// Limits::read_timeout: the peer sends too slowly.
  read_timeout,
  /// A write waited longer than Limits::write_timeout for the peer to take its bytes.
  write_timeout,
  /// The connection is older than Limits::connection_timeout.
  connection_timeout,
  /// A trusted proxy's connection did not begin with a valid PROXY protocol header.
  bad_proxy_header,
  /// A PROXY protocol v2 header announced more than ProxyProtocol::max_tlv_size of TLVs.
  proxy_header_too_large,
  /// No complete PROXY protocol header within ProxyProtocol::header_timeout.
  proxy_header_timeout,
  /// The TLS handshake did not end within TlsSettings::handshake_timeout of the connection.
  handshake_timeout,
  /// The TLS handshake failed (not TLS, no shared version or cipher, a bad certificate, ...).
  tls_handshake_failed,
  /// The TLS ClientHello was larger than TlsSettings::max_client_hello.
  client_hello_too_large,
  /// A TLS error after the handshake (a record that does not authenticate, a fatal alert).
  tls_error,
  /// The bytes queued through the connection's handle passed Limits::max_queued_bytes: the
  /// peer reads slower than it is sent to (a slow consumer).
  send_queue_full,
  /// Compressed input that does not decompress (not deflate or gzip, corrupt, a bad checksum).
  bad_compressed_data,
  /// Decompressed output past DecompressionLimits: more than max_output bytes, or more than
  /// max_ratio times the input (a zip bomb).
  decompression_limit,
};

namespace detail {
class ErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "socketserver"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::line_too_long:
        return "line too long";
      case errc::frame_too_large:
        return "frame too large";
      case errc::truncated_frame:
        return "stream ended inside a frame";
      case errc::first_byte_timeout:
        return "no data within the first-byte timeout";
      case errc::idle_timeout:
        return "idle timeout";
      case errc::read_timeout:
        return "read timeout: the peer sends too slowly";
      case errc::write_timeout:
        return "write timeout: the peer does not read";
      case errc::connection_timeout:
        return "connection timeout: the connection is too old";
      case errc::bad_proxy_header:
        return "invalid PROXY protocol header";
      case errc::proxy_header_too_large:
        return "PROXY protocol header too large";
      case errc::proxy_header_timeout:
        return "no PROXY protocol header within its timeout";
      case errc::handshake_timeout:
        return "no TLS handshake within its timeout";
      case errc::tls_handshake_failed:
        return "TLS handshake failed";
      case errc::client_hello_too_large:
        return "TLS ClientHello too large";
      case errc::tls_error:
        return "TLS error";
      case errc::send_queue_full:
        return "send queue over max_queued_bytes (a slow consumer)";
      case errc::bad_compressed_data:
        return "compressed data does not decompress";
      case errc::decompression_limit:
        return "decompressed data over its limit (a zip bomb?)";
    }
    return "unknown socketserver error";
  }
};
}  // namespace detail

/// The category of socketserver::errc values.
inline const std::error_category& error_category() noexcept {
  static const detail::ErrorCategory category;
  return category;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace socketserver

template <>
struct std::is_error_code_enum<socketserver::errc> : std::true_type {};

#endif  // SOCKETSERVER_ERROR_HPP
