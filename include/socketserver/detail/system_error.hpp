#ifndef SOCKETSERVER_DETAIL_SYSTEM_ERROR_HPP
#define SOCKETSERVER_DETAIL_SYSTEM_ERROR_HPP

#include <cerrno>
#include <string>
#include <system_error>

#include <socketserver/detail/config.hpp>

namespace socketserver::detail {

[[noreturn]] void throw_errno(const char* what, int error = errno);

// Throws `ec` as a std::system_error naming `what`. asio reports errno values in a category of
// its own that never compares equal to std::errc; they are rethrown in std::system_category, so
// `e.code() == std::errc::address_in_use` works as users expect.
[[noreturn]] void throw_error(std::error_code ec, const std::string& what);

}  // namespace socketserver::detail

#if SOCKETSERVER_DEFINITIONS
#include <asio/error.hpp>

namespace socketserver::detail {

SOCKETSERVER_DECL void throw_errno(const char* what, int error) {
  throw std::system_error(error, std::system_category(), what);
}

SOCKETSERVER_DECL void throw_error(std::error_code ec, const std::string& what) {
  if (ec.category() == asio::error::get_system_category()) ec = {ec.value(), std::system_category()};
  throw std::system_error(ec, what);
}

}  // namespace socketserver::detail
#endif

#endif  // SOCKETSERVER_DETAIL_SYSTEM_ERROR_HPP
