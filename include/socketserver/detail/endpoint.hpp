#ifndef SOCKETSERVER_DETAIL_ENDPOINT_HPP
#define SOCKETSERVER_DETAIL_ENDPOINT_HPP

#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/basic_resolver.hpp>
#include <asio/local/basic_endpoint.hpp>

#include <socketserver/address.hpp>
#include <socketserver/detail/system_error.hpp>

namespace socketserver::detail {

template <class Protocol>
inline constexpr bool is_local_protocol_v =
    std::is_same_v<typename Protocol::endpoint, asio::local::basic_endpoint<Protocol>>;

// Address -> Protocol::endpoint. IP hosts that are not literals are resolved (first result),
// as Python's bind() does through getaddrinfo.
template <class Protocol>
typename Protocol::endpoint to_endpoint(const Address& address, asio::io_context& context) {
  if constexpr (is_local_protocol_v<Protocol>) {
    if (!address.is_unix()) throw std::invalid_argument("a Unix socket server needs a path address");
    return typename Protocol::endpoint(address.path());
  } else {
    (void)context;
    if (!address.is_ip()) throw std::invalid_argument("an IP server needs a (host, port) address");
    if (address.host().empty()) return typename Protocol::endpoint(asio::ip::address_v4::any(), address.port());
    std::error_code ec;
    const auto ip = asio::ip::make_address(address.host(), ec);
    if (!ec) return typename Protocol::endpoint(ip, address.port());
    asio::ip::basic_resolver<Protocol> resolver(context);
    const auto results = resolver.resolve(address.host(), std::to_string(address.port()), ec);
    if (ec) throw_error(ec, "resolve " + address.host());
    if (results.empty())
      throw std::system_error(std::make_error_code(std::errc::host_unreachable), "resolve " + address.host());
    return results.begin()->endpoint();
  }
}

// Protocol::endpoint -> Address, for bound names and peers.
template <class Endpoint>
Address to_address(const Endpoint& endpoint) {
  if constexpr (requires { endpoint.path(); }) {
    return Address::from_path(endpoint.path());
  } else {
    return Address(endpoint.address().to_string(), endpoint.port());
  }
}

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_DETAIL_ENDPOINT_HPP
