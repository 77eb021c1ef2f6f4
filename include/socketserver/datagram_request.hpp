#ifndef SOCKETSERVER_DATAGRAM_REQUEST_HPP
#define SOCKETSERVER_DATAGRAM_REQUEST_HPP

#include <memory>
#include <string>
#include <utility>

#include <socketserver/io/datagram_socket.hpp>
#include <socketserver/request.hpp>

namespace socketserver {

/// The request of a datagram server (UDPServer, UnixDatagramServer): the packet received and the
/// server's socket to answer from (Python's `(data, socket)` pair).
///
/// Ownership: the request holds a copy of the packet; the socket is the server's, valid until
/// server_close().
class DatagramRequest final : public Request {
 public:
  /// An empty request.
  DatagramRequest() = default;
  /// `packet` as received, answered through `socket`.
  DatagramRequest(std::string packet, DatagramSocket& socket) : packet_(std::move(packet)), socket_(&socket) {}
  DatagramRequest(DatagramRequest&&) noexcept = default;
  DatagramRequest& operator=(DatagramRequest&&) noexcept = default;
  ~DatagramRequest() override = default;

  /// The datagram as received (Python's request[0]).
  const std::string& packet() const noexcept { return packet_; }

  /// The server socket to reply through (Python's request[1]).
  DatagramSocket& socket() const noexcept { return *socket_; }

  /// The server socket's descriptor, or -1 for an empty request.
  int fileno() const noexcept override { return socket_ ? socket_->native_handle() : -1; }

  /// A datagram has no connection to close.
  void close() noexcept override {}

 protected:
  bool empty() const noexcept override { return !socket_; }

 private:
  // The server's socket, not owned: a moved-from request is left without one.
  struct NotOwned {
    void operator()(DatagramSocket* /*socket*/) const noexcept {}
  };

  std::string packet_;
  std::unique_ptr<DatagramSocket, NotOwned> socket_;
};

}  // namespace socketserver

#endif  // SOCKETSERVER_DATAGRAM_REQUEST_HPP
