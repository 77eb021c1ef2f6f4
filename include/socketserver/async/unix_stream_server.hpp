#ifndef SOCKETSERVER_ASYNC_UNIX_STREAM_SERVER_HPP
#define SOCKETSERVER_ASYNC_UNIX_STREAM_SERVER_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <string>
#include <utility>

#include <asio/local/stream_protocol.hpp>

#include <socketserver/address.hpp>
#include <socketserver/async/stream_server.hpp>
#include <socketserver/detail/config.hpp>

namespace socketserver {

/// A Unix stream-socket server whose handlers are coroutines (AsyncStreamRequestHandler), many
/// connections per thread on `threads` event loops. Everything else is UnixStreamServer's.
template <AsyncStreamHandler Handler>
class AsyncUnixStreamServer : public BasicAsyncStreamServer<Handler, asio::local::stream_protocol> {
 public:
  /// Binds to the socket file `path` and listens, unless `bind_and_activate` is false. The file
  /// must not exist yet (bind fails with EADDRINUSE); server_close() removes it.
  explicit AsyncUnixStreamServer(std::string path, bool bind_and_activate = true)
      : BasicAsyncStreamServer<Handler, asio::local::stream_protocol>(Address::from_path(std::move(path)),
                                                                      bind_and_activate) {}
};

#if defined(SOCKETSERVER_SEPARATE_COMPILATION)
// Compiled once, in src/socketserver.cpp.
extern template class StreamSocketServer<asio::local::stream_protocol, AsyncStreamRequest>;
#endif

}  // namespace socketserver

#endif  // SOCKETSERVER_ASYNC_UNIX_STREAM_SERVER_HPP
