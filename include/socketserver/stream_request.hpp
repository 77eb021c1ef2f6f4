#ifndef SOCKETSERVER_STREAM_REQUEST_HPP
#define SOCKETSERVER_STREAM_REQUEST_HPP

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/tls_stream.hpp>
#include <socketserver/proxy_header.hpp>
#include <socketserver/request.hpp>

namespace socketserver {

namespace detail {
struct StreamRequestAccess;
}

/// What the requests of stream servers share, blocking or not: the connection, as the stack of
/// streams its server put on the socket, what a PROXY header said about it, and its TLS layer.
///
/// Ownership: the request owns the connection and closes it when it is closed or destroyed.
class BasicStreamRequest : public Request {
 public:
  ~BasicStreamRequest() override = default;
  BasicStreamRequest(const BasicStreamRequest&) = delete;
  BasicStreamRequest& operator=(const BasicStreamRequest&) = delete;

  int fileno() const noexcept override { return stream_ ? stream_->native_handle() : -1; }

  void close() noexcept override {
    end_record();
    if (stream_) stream_->close();
  }

  /// Ends the sending direction (TCP FIN), as Python's shutdown_request() does.
  void shutdown_write() noexcept {
    if (stream_) stream_->shutdown_write();
  }

  /// The PROXY protocol header the connection began with (server.proxy_protocol), or null when
  /// it came straight from its peer.
  const ProxyHeader* proxy_header() const noexcept {
    const detail::ConnectionRecord* record = detail::RequestAccess::record(*this);
    return record != nullptr ? record->proxy_header() : nullptr;
  }

  /// The connection's TLS layer (server.tls): the protocol, the cipher, ALPN, SNI, resumption
  /// and the client's certificate. Null on a plain connection.
  const TlsStream* tls() const noexcept { return stream_ ? tls_ : nullptr; }

 protected:
  BasicStreamRequest() = default;
  explicit BasicStreamRequest(std::unique_ptr<ByteStream> stream) noexcept : stream_(std::move(stream)) {}
  BasicStreamRequest(BasicStreamRequest&&) noexcept = default;
  BasicStreamRequest& operator=(BasicStreamRequest&&) noexcept = default;

  bool empty() const noexcept override { return stream_ == nullptr; }

  ByteStream& top() const {
    if (!stream_) throw std::logic_error("empty request");
    return *stream_;
  }

 private:
  friend struct detail::StreamRequestAccess;

  std::unique_ptr<ByteStream> stream_;  // the top of the connection's streams
  TlsStream* tls_ = nullptr;            // one of them, when the connection is TLS (while stream_ is set)
};

/// The request of a blocking stream server (TCPServer, UnixStreamServer and their mixins): a
/// connection a handler may read and write directly, as Python's socket, besides rfile and wfile.
class StreamRequest final : public BasicStreamRequest {
 public:
  /// An empty request.
  StreamRequest() = default;
  /// A request owning `stream` (a SocketStream, a test's MemoryPipe end, ...).
  explicit StreamRequest(std::unique_ptr<ByteStream> stream) noexcept : BasicStreamRequest(std::move(stream)) {}
  StreamRequest(StreamRequest&&) noexcept = default;
  StreamRequest& operator=(StreamRequest&&) noexcept = default;
  ~StreamRequest() override = default;

  /// The connection (Python's StreamRequestHandler.connection): the top of its streams.
  ByteStream& stream() const { return top(); }

  /// Python's request.recv(n): up to `n` bytes, empty at end of stream.
  std::string recv(std::size_t n) const { return top().recv(n); }

  /// Python's request.sendall(data).
  void sendall(std::string_view data) const { top().sendall(data); }
};

namespace detail {
// How servers build and replace a connection's stack of streams.
struct StreamRequestAccess {
  static std::unique_ptr<ByteStream>& stream(BasicStreamRequest& request) noexcept { return request.stream_; }
  static ByteStream* top(const BasicStreamRequest& request) noexcept { return request.stream_.get(); }
  static TlsStream*& tls(BasicStreamRequest& request) noexcept { return request.tls_; }
};
}  // namespace detail

}  // namespace socketserver

#endif  // SOCKETSERVER_STREAM_REQUEST_HPP
