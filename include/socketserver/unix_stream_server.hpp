#ifndef SOCKETSERVER_UNIX_STREAM_SERVER_HPP
#define SOCKETSERVER_UNIX_STREAM_SERVER_HPP

#include <string>
#include <utility>

#include <asio/local/stream_protocol.hpp>

#include <socketserver/address.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/stream_server.hpp>

namespace socketserver {

/// A Unix stream-socket server that runs one `Handler` per request on the serving thread (Python's UnixStreamServer).
///
/// Layer ThreadingMixIn or ForkingMixIn on it to serve requests concurrently, or use the
/// ready combinations (ThreadingUnixStreamServer, ForkingUnixStreamServer).
template <StreamHandler Handler>
class UnixStreamServer : public BasicStreamServer<Handler, asio::local::stream_protocol> {
 public:
  /// Binds to the socket file `path` and listens, unless `bind_and_activate` is false. The file
  /// must not exist yet (bind fails with EADDRINUSE); server_close() removes it.
  explicit UnixStreamServer(std::string path, bool bind_and_activate = true)
      : BasicStreamServer<Handler, asio::local::stream_protocol>(Address::from_path(std::move(path)),
                                                                 bind_and_activate) {}
};

#if defined(SOCKETSERVER_SEPARATE_COMPILATION)
// Compiled once, in src/socketserver.cpp.
extern template class StreamSocketServer<asio::local::stream_protocol, StreamRequest>;
namespace detail {
extern template asio::local::stream_protocol::endpoint to_endpoint<asio::local::stream_protocol>(const Address&,
                                                                                                 asio::io_context&);
extern template Address to_address(const asio::local::stream_protocol::endpoint&);
}  // namespace detail
#endif

}  // namespace socketserver

#endif  // SOCKETSERVER_UNIX_STREAM_SERVER_HPP
