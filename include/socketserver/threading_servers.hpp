#ifndef SOCKETSERVER_THREADING_SERVERS_HPP
#define SOCKETSERVER_THREADING_SERVERS_HPP

#include <socketserver/tcp_server.hpp>
#include <socketserver/threading_mixin.hpp>
#include <socketserver/udp_server.hpp>
#include <socketserver/unix_datagram_server.hpp>
#include <socketserver/unix_stream_server.hpp>

namespace socketserver {

/// A TCP server with a thread per connection.
template <class Handler>
using ThreadingTCPServer = ThreadingMixIn<TCPServer<Handler>>;
/// A UDP server with a thread per datagram.
template <class Handler>
using ThreadingUDPServer = ThreadingMixIn<UDPServer<Handler>>;
/// A Unix stream server with a thread per connection.
template <class Handler>
using ThreadingUnixStreamServer = ThreadingMixIn<UnixStreamServer<Handler>>;
/// A Unix datagram server with a thread per datagram.
template <class Handler>
using ThreadingUnixDatagramServer = ThreadingMixIn<UnixDatagramServer<Handler>>;

}  // namespace socketserver

#endif  // SOCKETSERVER_THREADING_SERVERS_HPP
