#ifndef SOCKETSERVER_TCP_SERVER_HPP
#define SOCKETSERVER_TCP_SERVER_HPP

#include <string>
#include <utility>

#include <asio/ip/tcp.hpp>

#include <socketserver/address.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/stream_server.hpp>

namespace socketserver {

/// A TCP/IPv4-or-IPv6 stream server that runs one `Handler` per request on the serving thread (Python's TCPServer).
///
/// Layer ThreadingMixIn or ForkingMixIn on it to serve requests concurrently, or use the
/// ready combinations (ThreadingTCPServer, ForkingTCPServer).
template <StreamHandler Handler>
class TCPServer : public BasicStreamServer<Handler, asio::ip::tcp> {
 public:
  /// Binds to `server_address` (`{"127.0.0.1", 0}`, `{"::1", 8080}`) and listens, unless
  /// `bind_and_activate` is false.
  explicit TCPServer(Address server_address, bool bind_and_activate = true)
      : BasicStreamServer<Handler, asio::ip::tcp>(std::move(server_address), bind_and_activate) {}
};

#if defined(SOCKETSERVER_SEPARATE_COMPILATION)
// Compiled once, in src/socketserver.cpp.
extern template class StreamSocketServer<asio::ip::tcp, StreamRequest>;
namespace detail {
extern template asio::ip::tcp::endpoint to_endpoint<asio::ip::tcp>(const Address&, asio::io_context&);
extern template Address to_address(const asio::ip::tcp::endpoint&);
}  // namespace detail
#endif

}  // namespace socketserver

#endif  // SOCKETSERVER_TCP_SERVER_HPP
