#ifndef SOCKETSERVER_REQUEST_HPP
#define SOCKETSERVER_REQUEST_HPP

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <socketserver/detail/connection_tracker.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/datagram_socket.hpp>

namespace socketserver {

namespace detail {
struct RequestAccess;
}

/// One request, as the server's hooks and the handler see it (Python's `request`).
///
/// A stream server's request owns the connection: a ByteStream, normally a SocketStream, closed
/// when the Request is closed or destroyed. A datagram server's request is the packet received
/// and the server's socket to answer from (Python's `(data, socket)` pair).
///
/// Ownership: the serving loop owns each Request until process_request(); a mixin that hands
/// the request to a thread or a child process moves it there, and the loop's copy is left
/// empty. Move-only.
class Request {
 public:
  /// An empty request (what a moved-from request becomes).
  Request() = default;

  /// A stream request owning `stream`.
  explicit Request(std::unique_ptr<ByteStream> stream) noexcept : stream_(std::move(stream)) {}

  /// A datagram request: `packet` as received, answered through `socket`.
  Request(std::string packet, DatagramSocket& socket)
      : datagram_(std::make_unique<Datagram>(Datagram{std::move(packet), &socket})) {}

  /// Leaves `other` empty.
  Request(Request&& other) noexcept = default;
  Request& operator=(Request&& other) noexcept = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  ~Request() = default;

  /// True for a stream request, false for a datagram or empty one.
  bool is_stream() const noexcept { return stream_ != nullptr; }

  /// True unless empty.
  explicit operator bool() const noexcept { return stream_ != nullptr || datagram_ != nullptr; }

  /// The connection of a stream request. Throws std::logic_error for any other request.
  ByteStream& stream() const {
    if (!stream_) throw std::logic_error("not a stream request");
    return *stream_;
  }

  /// The datagram of a datagram request (empty for a stream request).
  const std::string& packet() const noexcept { return datagram_ ? datagram_->packet : no_packet(); }

  /// The server socket of a datagram request. Throws std::logic_error for any other request.
  DatagramSocket& socket() const {
    if (!datagram_) throw std::logic_error("not a datagram request");
    return *datagram_->socket;
  }

  /// Python's request.recv(n) on a stream request.
  std::string recv(std::size_t n) const { return stream().recv(n); }

  /// Python's request.sendall(data) on a stream request.
  void sendall(std::string_view data) const { stream().sendall(data); }

  /// Python's request.fileno(): the connection's (or datagram socket's) descriptor, or -1.
  int fileno() const noexcept {
    if (stream_) return stream_->native_handle();
    return datagram_ ? datagram_->socket->native_handle() : -1;
  }

  /// Closes a stream request's connection; nothing for a datagram request. The server's
  /// accounting of the connection (stats(), the access log) ends here.
  void close() noexcept {
    record_.reset();  // first: the server may shut the descriptor down while it is tracked
    if (stream_) stream_->close();
  }

 private:
  struct Datagram {
    std::string packet;
    DatagramSocket* socket;
  };

  static const std::string& no_packet() noexcept {
    static const std::string empty;
    return empty;
  }

  friend struct detail::RequestAccess;

  // Pointers only: an async server keeps a Request in every connection's frame.
  std::unique_ptr<ByteStream> stream_;
  std::unique_ptr<Datagram> datagram_;
  std::unique_ptr<detail::ConnectionRecord> record_;  // after stream_: destroyed before it
};

namespace detail {
// The server's record of a stream request's connection (nullptr when it has none, e.g. a
// handler driven by a test without a server).
struct RequestAccess {
  static ConnectionRecord* record(const Request& request) noexcept { return request.record_.get(); }
  static void set_record(Request& request, std::unique_ptr<ConnectionRecord> record) noexcept {
    request.record_ = std::move(record);
  }
  static std::unique_ptr<ConnectionRecord> take_record(Request& request) noexcept { return std::move(request.record_); }
  // Inside a catch block: the exception becomes the connection's close reason.
  static void note_current_exception(const Request& request) noexcept {
    if (request.record_) request.record_->note_current_exception();
  }
};
}  // namespace detail

}  // namespace socketserver

#endif  // SOCKETSERVER_REQUEST_HPP
