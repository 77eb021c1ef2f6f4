#ifndef SOCKETSERVER_IO_DATAGRAM_SOCKET_HPP
#define SOCKETSERVER_IO_DATAGRAM_SOCKET_HPP

#include <string_view>

#include <socketserver/address.hpp>

namespace socketserver {

/// The datagram server's own socket, as a datagram handler sees it: where replies are sent from.
///
/// Owned by the server; valid while the server is open. Thread safety: sendto() may be called
/// from several handler threads at once (each call is one system call).
class DatagramSocket {
 public:
  virtual ~DatagramSocket() = default;

  /// Sends `data` as one datagram to `address`, waiting while the socket's buffer is full.
  /// Throws std::system_error on failure.
  virtual void sendto(std::string_view data, const Address& address) = 0;

  /// The socket descriptor (Python's fileno()).
  virtual int native_handle() const noexcept = 0;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_IO_DATAGRAM_SOCKET_HPP
