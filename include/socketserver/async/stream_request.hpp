#ifndef SOCKETSERVER_ASYNC_STREAM_REQUEST_HPP
#define SOCKETSERVER_ASYNC_STREAM_REQUEST_HPP

#include <memory>
#include <utility>

#include <socketserver/io/byte_stream.hpp>
#include <socketserver/stream_request.hpp>

namespace socketserver {

/// The request of an async stream server (AsyncTCPServer, AsyncUnixStreamServer): a connection
/// its coroutine handler reads and writes through rfile and wfile only. Unlike StreamRequest it
/// has no recv() or sendall(): a blocking call on an event loop would stall every connection
/// that shares it, so it does not compile.
class AsyncStreamRequest final : public BasicStreamRequest {
 public:
  /// An empty request.
  AsyncStreamRequest() = default;
  /// A request owning `stream`, the connection's socket.
  explicit AsyncStreamRequest(std::unique_ptr<ByteStream> stream) noexcept : BasicStreamRequest(std::move(stream)) {}
  AsyncStreamRequest(AsyncStreamRequest&&) noexcept = default;
  AsyncStreamRequest& operator=(AsyncStreamRequest&&) noexcept = default;
  ~AsyncStreamRequest() override = default;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_ASYNC_STREAM_REQUEST_HPP
