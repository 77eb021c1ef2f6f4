#ifndef SOCKETSERVER_ASYNC_TCP_SERVER_HPP
#define SOCKETSERVER_ASYNC_TCP_SERVER_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <utility>

#include <asio/ip/tcp.hpp>

#include <socketserver/address.hpp>
#include <socketserver/async/stream_server.hpp>
#include <socketserver/detail/config.hpp>

namespace socketserver {

/// A TCP server whose handlers are coroutines (AsyncStreamRequestHandler), many connections per
/// thread on `threads` event loops. No Python counterpart; everything else is TCPServer's.
template <AsyncStreamHandler Handler>
class AsyncTCPServer : public BasicAsyncStreamServer<Handler, asio::ip::tcp> {
 public:
  /// Binds to `server_address` (`{"127.0.0.1", 0}`, `{"::1", 8080}`) and listens, unless
  /// `bind_and_activate` is false.
  explicit AsyncTCPServer(Address server_address, bool bind_and_activate = true)
      : BasicAsyncStreamServer<Handler, asio::ip::tcp>(std::move(server_address), bind_and_activate) {}
};

#if defined(SOCKETSERVER_SEPARATE_COMPILATION)
// Compiled once, in src/socketserver.cpp.
extern template class StreamSocketServer<asio::ip::tcp, AsyncStreamRequest>;
#endif

}  // namespace socketserver

#endif  // SOCKETSERVER_ASYNC_TCP_SERVER_HPP
