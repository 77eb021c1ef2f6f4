#ifndef SOCKETSERVER_UNIX_STREAM_SERVER_HPP
#define SOCKETSERVER_UNIX_STREAM_SERVER_HPP

#include <string>
#include <utility>

#include <asio/local/stream_protocol.hpp>

#include <socketserver/address.hpp>
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

}  // namespace socketserver

#endif  // SOCKETSERVER_UNIX_STREAM_SERVER_HPP
