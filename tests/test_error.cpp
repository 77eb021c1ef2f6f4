// socketserver::errc: the library's own error codes.
#include <catch2/catch.hpp>

#include <string>
#include <system_error>

#include <socketserver/error.hpp>

TEST_CASE("errc values are std::error_codes of the socketserver category", "[error]") {
  const std::error_code ec = socketserver::errc::line_too_long;
  CHECK(std::string(ec.category().name()) == "socketserver");
  CHECK(ec.message() == "line too long");
  CHECK(ec == socketserver::make_error_code(socketserver::errc::line_too_long));
  CHECK(ec != std::make_error_code(std::errc::timed_out));
  const std::system_error e(ec, "readline");
  CHECK(std::string(e.what()) == "readline: line too long");
}
