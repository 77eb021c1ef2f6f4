#ifndef SOCKETSERVER_DATAGRAM_REQUEST_HANDLER_HPP
#define SOCKETSERVER_DATAGRAM_REQUEST_HANDLER_HPP

#include <memory>
#include <string_view>

#include <socketserver/base_request_handler.hpp>
#include <socketserver/datagram_request.hpp>
#include <socketserver/detail/config.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/buffered_writer.hpp>
#include <socketserver/io/datagram_socket.hpp>
#include <socketserver/io/memory_stream.hpp>

namespace socketserver {

/// A handler for datagram servers (UDP, Unix datagram): `rfile` reads the packet, and what is
/// written to `wfile` is sent back to the peer as one datagram when the handler finishes.
///
/// Difference from Python: an empty reply is not sent (Python sends an empty datagram).
class DatagramRequestHandler : public BasicRequestHandler<DatagramRequest> {
 public:
  /// The datagram received; valid until the handler is destroyed.
  std::string_view packet;
  /// The server's socket, for replies beyond the one wfile sends.
  DatagramSocket* socket = nullptr;

  /// Reads the packet.
  BufferedReader rfile;
  /// Collects the reply.
  BufferedWriter wfile;

  /// Attaches packet, socket, rfile and wfile. An override must call it.
  void setup() override;

  /// Sends what was written to wfile to client_address, unless nothing was. An override must
  /// call it.
  void finish() override;

 private:
  std::unique_ptr<MemoryStream> in_, out_;
};

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <string>

#include <socketserver/io/detail/io_access.hpp>

namespace socketserver {

SOCKETSERVER_DECL void DatagramRequestHandler::setup() {
  packet = request->packet();
  socket = &request->socket();
  in_ = std::make_unique<MemoryStream>(std::string(packet));
  out_ = std::make_unique<MemoryStream>();
  detail::IoAccess::attach(rfile, *in_);
  detail::IoAccess::attach(wfile, *out_);
}

SOCKETSERVER_DECL void DatagramRequestHandler::finish() {
  wfile.flush();
  if (!out_->output().empty()) socket->sendto(out_->output(), client_address);
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_DATAGRAM_REQUEST_HANDLER_HPP
