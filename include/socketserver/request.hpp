#ifndef SOCKETSERVER_REQUEST_HPP
#define SOCKETSERVER_REQUEST_HPP

#include <memory>
#include <utility>

#include <socketserver/detail/connection_tracker.hpp>

namespace socketserver {

namespace detail {
struct RequestAccess;
}

/// One request, as the server's hooks see it (Python's `request`): what every kind has.
///
/// Each server makes requests of its own kind, and its handlers see that kind: a StreamRequest
/// (a blocking connection), an AsyncStreamRequest (a connection served by a coroutine, with no
/// blocking call to make) or a DatagramRequest (a packet and the socket to answer from). The
/// hooks (verify_request(), process_request(), shutdown_request(), handle_error(), ...) take
/// this base, as Python's take any request.
///
/// Ownership: the serving loop owns each request until process_request(); a mixin that hands
/// it to a thread or a child process moves it there. Move-only.
class Request {
 public:
  virtual ~Request() = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  /// Python's request.fileno(): the connection's (or datagram socket's) descriptor, or -1.
  virtual int fileno() const noexcept = 0;

  /// Closes a stream request's connection; nothing for a datagram request. The server's
  /// accounting of the connection (stats(), the access log) ends here.
  virtual void close() noexcept = 0;

  /// True unless empty (what a moved-from request becomes).
  explicit operator bool() const noexcept { return !empty(); }

 protected:
  Request() = default;
  Request(Request&&) noexcept = default;
  Request& operator=(Request&&) noexcept = default;

  virtual bool empty() const noexcept = 0;

  // Ends the server's record of the connection: first, because the server may shut the
  // descriptor down while it is tracked.
  void end_record() noexcept { record_.reset(); }

 private:
  friend struct detail::RequestAccess;

  std::unique_ptr<detail::ConnectionRecord> record_;  // a stream request served by a server
};

namespace detail {
// The server's record of a stream request's connection (nullptr when it has none: a datagram, or
// a handler driven by a test without a server).
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
  // The client's address as the handler sees it: the PROXY header's once it has been read.
  static const Address& client_address(const Request& request, const Address& peer) noexcept {
    return request.record_ ? request.record_->peer() : peer;
  }
};
}  // namespace detail

}  // namespace socketserver

#endif  // SOCKETSERVER_REQUEST_HPP
