#ifndef SOCKETSERVER_UNIX_DATAGRAM_SERVER_HPP
#define SOCKETSERVER_UNIX_DATAGRAM_SERVER_HPP

#include <string>
#include <utility>

#include <asio/local/datagram_protocol.hpp>

#include <socketserver/address.hpp>
#include <socketserver/datagram_server.hpp>
#include <socketserver/detail/config.hpp>

namespace socketserver {

/// A Unix datagram-socket server that runs one `Handler` per request on the serving thread (Python's
/// UnixDatagramServer).
///
/// Layer ThreadingMixIn or ForkingMixIn on it to serve requests concurrently, or use the
/// ready combinations (ThreadingUnixDatagramServer, ForkingUnixDatagramServer).
template <DatagramHandler Handler>
class UnixDatagramServer : public BasicDatagramServer<Handler, asio::local::datagram_protocol> {
 public:
  /// Binds to the socket file `path`, unless `bind_and_activate` is false. server_close()
  /// removes the file. A peer that wants replies must bind its own socket to a path.
  explicit UnixDatagramServer(std::string path, bool bind_and_activate = true)
      : BasicDatagramServer<Handler, asio::local::datagram_protocol>(Address::from_path(std::move(path)),
                                                                     bind_and_activate) {}
};

#if defined(SOCKETSERVER_SEPARATE_COMPILATION)
// Compiled once, in src/socketserver.cpp.
namespace detail {
extern template asio::local::datagram_protocol::endpoint to_endpoint<asio::local::datagram_protocol>(const Address&,
                                                                                                     asio::io_context&);
extern template Address to_address(const asio::local::datagram_protocol::endpoint&);
}  // namespace detail
#endif

}  // namespace socketserver

#endif  // SOCKETSERVER_UNIX_DATAGRAM_SERVER_HPP
