#ifndef SOCKETSERVER_ASYNC_HPP
#define SOCKETSERVER_ASYNC_HPP

// The coroutine servers: handlers whose handle() is a C++20 coroutine, many connections per
// thread on event loops.

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <socketserver/async/buffered_reader.hpp>
#include <socketserver/async/buffered_writer.hpp>
#include <socketserver/async/framing.hpp>
#include <socketserver/async/stream_request.hpp>
#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/stream_server.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/async/unix_stream_server.hpp>

#endif  // SOCKETSERVER_ASYNC_HPP
