#ifndef SOCKETSERVER_IO_DETAIL_READINESS_HPP
#define SOCKETSERVER_IO_DETAIL_READINESS_HPP

namespace socketserver::detail {

// What a non-blocking socket is known to allow: the event loop sets a flag on each edge it
// reports, and the SocketStream clears it when a read or write finds the socket drained or full.
// While a flag is clear, the stream returns would_block without a system call.
struct Readiness {
  bool readable = false;  // data that came with a new connection is an edge too: EPOLL_CTL_ADD reports it
  bool writable = true;
  bool hangup = false;  // the peer closed or the socket failed: a short read no longer means drained
};

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_IO_DETAIL_READINESS_HPP
