// Address: the one value type for IP and Unix addresses.
#include <catch2/catch.hpp>

#include <sstream>

#include <fmt/format.h>

#include <socketserver/address.hpp>

using socketserver::Address;

TEST_CASE("an IP address has a host and a port and prints as host:port", "[address]") {
  const Address a{"127.0.0.1", 9999};
  CHECK(a.is_ip());
  CHECK_FALSE(a.is_unix());
  CHECK_FALSE(a.empty());
  CHECK(a.host() == "127.0.0.1");
  CHECK(a.port() == 9999);
  CHECK(a.path().empty());
  CHECK(a.to_string() == "127.0.0.1:9999");
  CHECK(fmt::format("{}", a) == "127.0.0.1:9999");
  std::ostringstream os;
  os << a;
  CHECK(os.str() == "127.0.0.1:9999");
}

TEST_CASE("an IPv6 address prints in brackets", "[address]") { CHECK(Address("::1", 80).to_string() == "[::1]:80"); }

TEST_CASE("a Unix address has a path and no host", "[address]") {
  const Address a = Address::from_path("/run/app.sock");
  CHECK(a.is_unix());
  CHECK(a.path() == "/run/app.sock");
  CHECK(a.host().empty());
  CHECK(a.port() == 0);
  CHECK(a.to_string() == "/run/app.sock");
}

TEST_CASE("empty addresses: default and unnamed Unix peers", "[address]") {
  CHECK(Address().empty());
  CHECK(Address::from_path("").empty());
  CHECK(Address().to_string() == "<unnamed>");
}

TEST_CASE("addresses compare by kind and value", "[address]") {
  CHECK(Address("127.0.0.1", 1) == Address("127.0.0.1", 1));
  CHECK(Address("127.0.0.1", 1) != Address("127.0.0.1", 2));
  CHECK(Address("x", 0) != Address::from_path("x"));
}
