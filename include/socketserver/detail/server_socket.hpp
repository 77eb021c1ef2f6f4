#ifndef SOCKETSERVER_DETAIL_SERVER_SOCKET_HPP
#define SOCKETSERVER_DETAIL_SERVER_SOCKET_HPP

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include <asio/socket_base.hpp>

#include <socketserver/address.hpp>
#include <socketserver/detail/endpoint.hpp>
#include <socketserver/detail/system_error.hpp>

namespace socketserver::detail {

// Python's server_bind() for a listening or datagram socket: the reuse options, bind(), and the
// bound name (port 0 becomes the real port). A Unix socket's file is recorded in `bound_path`
// so that close_server_socket() can remove it. `requested` names the address in errors.
template <class Socket, class Endpoint>
Address bind_server_socket(Socket& socket, const Endpoint& endpoint, bool reuse_address, bool reuse_port,
                           const Address& requested, std::string& bound_path) {
  std::error_code ec;
  if (reuse_address) socket.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse_port) {
    const int on = 1;
    if (::setsockopt(socket.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0)
      ec.assign(errno, std::system_category());
  }
  if (ec) throw_error(ec, "setsockopt");
  socket.bind(endpoint, ec);
  if (ec) throw_error(ec, "bind " + requested.to_string());
  if constexpr (requires { endpoint.path(); }) bound_path = endpoint.path();
  return to_address(socket.local_endpoint());
}

// Closes a server socket once, and removes the Unix socket file it created.
template <class Socket>
void close_server_socket(Socket& socket, std::string& bound_path) noexcept {
  if (!socket.is_open()) return;
  std::error_code ignored;
  socket.close(ignored);
  if (!bound_path.empty()) ::unlink(bound_path.c_str());
  bound_path.clear();
}

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_DETAIL_SERVER_SOCKET_HPP
