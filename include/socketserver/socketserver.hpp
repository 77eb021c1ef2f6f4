#ifndef SOCKETSERVER_SOCKETSERVER_HPP
#define SOCKETSERVER_SOCKETSERVER_HPP

// Everything: servers, mixins, handlers and the byte streams under them.

#include <socketserver/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <socketserver/address.hpp>
#include <socketserver/async_buffered_reader.hpp>
#include <socketserver/async_buffered_writer.hpp>
#include <socketserver/async_stream_request_handler.hpp>
#include <socketserver/async_stream_server.hpp>
#include <socketserver/async_tcp_server.hpp>
#include <socketserver/async_unix_stream_server.hpp>
#include <socketserver/base_request_handler.hpp>
#include <socketserver/base_server.hpp>
#include <socketserver/buffered_reader.hpp>
#include <socketserver/buffered_writer.hpp>
#include <socketserver/byte_stream.hpp>
#include <socketserver/datagram_request_handler.hpp>
#include <socketserver/datagram_server.hpp>
#include <socketserver/datagram_socket.hpp>
#include <socketserver/error.hpp>
#include <socketserver/forking_mixin.hpp>
#include <socketserver/forking_servers.hpp>
#include <socketserver/framing.hpp>
#include <socketserver/handler_test.hpp>
#include <socketserver/limits.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/memory_pipe.hpp>
#include <socketserver/memory_stream.hpp>
#include <socketserver/request.hpp>
#include <socketserver/seconds.hpp>
#include <socketserver/server_stats.hpp>
#include <socketserver/shutdown_on_signals.hpp>
#include <socketserver/socket_stream.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/stream_server.hpp>
#include <socketserver/stream_socket_server.hpp>
#include <socketserver/tcp_server.hpp>
#include <socketserver/test_client.hpp>
#include <socketserver/thread_pool_mixin.hpp>
#include <socketserver/threading_mixin.hpp>
#include <socketserver/threading_servers.hpp>
#include <socketserver/udp_server.hpp>
#include <socketserver/unix_datagram_server.hpp>
#include <socketserver/unix_stream_server.hpp>
#include <socketserver/version.hpp>

#endif  // SOCKETSERVER_SOCKETSERVER_HPP
