#ifndef SOCKETSERVER_UDP_SERVER_HPP
#define SOCKETSERVER_UDP_SERVER_HPP

#include <string>
#include <utility>

#include <asio/ip/udp.hpp>

#include <socketserver/address.hpp>
#include <socketserver/datagram_server.hpp>
#include <socketserver/detail/config.hpp>

namespace socketserver {

/// A UDP server that runs one `Handler` per request on the serving thread (Python's UDPServer).
///
/// Layer ThreadingMixIn or ForkingMixIn on it to serve requests concurrently, or use the
/// ready combinations (ThreadingUDPServer, ForkingUDPServer).
template <DatagramHandler Handler>
class UDPServer : public BasicDatagramServer<Handler, asio::ip::udp> {
 public:
  /// Binds to `server_address`, unless `bind_and_activate` is false.
  explicit UDPServer(Address server_address, bool bind_and_activate = true)
      : BasicDatagramServer<Handler, asio::ip::udp>(std::move(server_address), bind_and_activate) {}
};

#if defined(SOCKETSERVER_SEPARATE_COMPILATION)
// Compiled once, in src/socketserver.cpp.
namespace detail {
extern template asio::ip::udp::endpoint to_endpoint<asio::ip::udp>(const Address&, asio::io_context&);
extern template Address to_address(const asio::ip::udp::endpoint&);
}  // namespace detail
#endif

}  // namespace socketserver

#endif  // SOCKETSERVER_UDP_SERVER_HPP
