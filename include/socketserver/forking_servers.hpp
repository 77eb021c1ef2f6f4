#ifndef SOCKETSERVER_FORKING_SERVERS_HPP
#define SOCKETSERVER_FORKING_SERVERS_HPP

#include <socketserver/forking_mixin.hpp>
#include <socketserver/tcp_server.hpp>
#include <socketserver/udp_server.hpp>
#include <socketserver/unix_datagram_server.hpp>
#include <socketserver/unix_stream_server.hpp>

namespace socketserver {

/// A TCP server with a child process per connection.
template <class Handler>
using ForkingTCPServer = ForkingMixIn<TCPServer<Handler>>;
/// A UDP server with a child process per datagram.
template <class Handler>
using ForkingUDPServer = ForkingMixIn<UDPServer<Handler>>;
/// A Unix stream server with a child process per connection.
template <class Handler>
using ForkingUnixStreamServer = ForkingMixIn<UnixStreamServer<Handler>>;
/// A Unix datagram server with a child process per datagram.
template <class Handler>
using ForkingUnixDatagramServer = ForkingMixIn<UnixDatagramServer<Handler>>;

}  // namespace socketserver

#endif  // SOCKETSERVER_FORKING_SERVERS_HPP
