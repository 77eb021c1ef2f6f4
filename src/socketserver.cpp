// The compiled part of socketserver, for SOCKETSERVER_SEPARATE_COMPILATION (CMake: the option of
// that name and the target socketserver::compiled; by hand: compile this file once and every
// translation unit of the program with -DSOCKETSERVER_SEPARATE_COMPILATION). It compiles the
// headers' non-template definitions (include/socketserver/detail/config.hpp) and the template
// instantiations the headers declare extern: the socket half of each stream server, the address
// conversions of each protocol, and the fmt formatter of Address. The coroutines (async/) stay in
// the headers: how they wait depends on SOCKETSERVER_PORTABLE_COROUTINES, which each translation
// unit may choose (async/detail/awaitable_thread.hpp).

#ifndef SOCKETSERVER_SEPARATE_COMPILATION
#define SOCKETSERVER_SEPARATE_COMPILATION
#endif
#define SOCKETSERVER_SOURCE

#include <socketserver/async.hpp>  // first: it sets up asio's coroutines (async/detail/coroutine.hpp)
#include <socketserver/socketserver.hpp>
#include <socketserver/testing.hpp>

namespace socketserver {

template class StreamSocketServer<asio::ip::tcp, StreamRequest>;
template class StreamSocketServer<asio::local::stream_protocol, StreamRequest>;
template class StreamSocketServer<asio::ip::tcp, AsyncStreamRequest>;
template class StreamSocketServer<asio::local::stream_protocol, AsyncStreamRequest>;

namespace detail {

template asio::ip::tcp::endpoint to_endpoint<asio::ip::tcp>(const Address&, asio::io_context&);
template asio::ip::udp::endpoint to_endpoint<asio::ip::udp>(const Address&, asio::io_context&);
template asio::local::stream_protocol::endpoint to_endpoint<asio::local::stream_protocol>(const Address&,
                                                                                          asio::io_context&);
template asio::local::datagram_protocol::endpoint to_endpoint<asio::local::datagram_protocol>(const Address&,
                                                                                              asio::io_context&);

template Address to_address(const asio::ip::tcp::endpoint&);
template Address to_address(const asio::ip::udp::endpoint&);
template Address to_address(const asio::local::stream_protocol::endpoint&);
template Address to_address(const asio::local::datagram_protocol::endpoint&);

}  // namespace detail

}  // namespace socketserver

template auto fmt::formatter<socketserver::Address>::format(const socketserver::Address&, fmt::format_context&) const
    -> fmt::format_context::iterator;
