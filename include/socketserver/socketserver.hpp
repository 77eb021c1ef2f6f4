#ifndef SOCKETSERVER_SOCKETSERVER_HPP
#define SOCKETSERVER_SOCKETSERVER_HPP

// Python's socketserver: the servers, mixins and handlers, and the byte streams under them
// (io/). The coroutine servers are in <socketserver/async.hpp>, the test helpers in
// <socketserver/testing.hpp>.

#include <socketserver/access_list.hpp>
#include <socketserver/address.hpp>
#include <socketserver/base_request_handler.hpp>
#include <socketserver/base_server.hpp>
#include <socketserver/connection_group.hpp>
#include <socketserver/connection_handle.hpp>
#include <socketserver/datagram_request.hpp>
#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/datagram_server.hpp>
#include <socketserver/error.hpp>
#include <socketserver/forking_mixin.hpp>
#include <socketserver/forking_servers.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/buffered_writer.hpp>
#include <socketserver/io/byte_stream.hpp>
#include <socketserver/io/compression.hpp>
#include <socketserver/io/datagram_socket.hpp>
#include <socketserver/io/framing.hpp>
#include <socketserver/io/memory_stream.hpp>
#include <socketserver/io/proxy_stream.hpp>
#include <socketserver/io/socket_stream.hpp>
#include <socketserver/io/stream_layer.hpp>
#include <socketserver/io/tls_stream.hpp>
#include <socketserver/limits.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/proxy_header.hpp>
#include <socketserver/proxy_protocol.hpp>
#include <socketserver/request.hpp>
#include <socketserver/seconds.hpp>
#include <socketserver/server_stats.hpp>
#include <socketserver/shutdown_on_signals.hpp>
#include <socketserver/stream_request.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/stream_server.hpp>
#include <socketserver/stream_socket_server.hpp>
#include <socketserver/tcp_server.hpp>
#include <socketserver/thread_pool_mixin.hpp>
#include <socketserver/threading_mixin.hpp>
#include <socketserver/threading_servers.hpp>
#include <socketserver/tls_context.hpp>
#include <socketserver/udp_server.hpp>
#include <socketserver/unix_datagram_server.hpp>
#include <socketserver/unix_stream_server.hpp>
#include <socketserver/version.hpp>

#endif  // SOCKETSERVER_SOCKETSERVER_HPP
