// proxy_report: answers each connection with one line describing the PROXY protocol header it
// began with, then closes it; for tests/examples/check_proxy_protocol.py.
//   proxy_report --port 0 --proxy-protocol 127.0.0.2/32 [--concurrency threading|async]
// The line: client=ADDRESS version=N command=proxy|local alpn=... authority=... ssl=0|1
// ssl_version=... cn=... crc32c=0|1, a missing value as "-" (version=none without a header).
#include <socketserver/async.hpp>
#include <socketserver/socketserver.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "example_support.hpp"

namespace {

constexpr std::uint8_t pp2_type_crc32c = 0x03;

std::string_view or_dash(std::optional<std::string_view> value) { return value ? *value : "-"; }

std::string describe(const socketserver::Address& client, const socketserver::ProxyHeader* header) {
  if (header == nullptr)
    return fmt::format("client={} version=none command=- alpn=- authority=- ssl=0 ssl_version=- cn=- crc32c=0\n",
                       client);
  const bool local = header->command() == socketserver::ProxyHeader::Command::local;
  return fmt::format("client={} version={} command={} alpn={} authority={} ssl={} ssl_version={} cn={} crc32c={}\n",
                     client, header->version(), local ? "local" : "proxy", or_dash(header->alpn()),
                     or_dash(header->authority()), header->ssl() ? 1 : 0, or_dash(header->ssl_version()),
                     or_dash(header->ssl_cn()), header->tlv(pp2_type_crc32c) ? 1 : 0);
}

struct Report : socketserver::StreamRequestHandler {
  void handle() override { wfile.write(describe(client_address, request->proxy_header())); }
};

struct AsyncReport : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    const std::string line = describe(client_address, request->proxy_header());  // named: see below
    co_await wfile.write(line);  // never co_await a write of a temporary: GCC 12 miscompiles it
  }
};

}  // namespace

int main(int argc, char** argv) try {
  const auto options = examples::parse_options(argc, argv, "Reports the PROXY protocol header of each connection.", 0,
                                               examples::with_concurrency);
  const socketserver::Address address(options.host, options.port);
  switch (options.concurrency) {
    case examples::Concurrency::threading: {
      socketserver::ThreadingTCPServer<Report> server(address);
      return examples::serve(server, options, "proxy_report");
    }
    case examples::Concurrency::async: {
      socketserver::AsyncTCPServer<AsyncReport> server(address);
      if (options.threads > 0) server.threads = options.threads;
      return examples::serve(server, options, "proxy_report");
    }
    default:
      fmt::print(stderr, "proxy_report: --concurrency threading or async only\n");
      return 2;
  }
} catch (const std::exception& e) {
  fmt::print(stderr, "proxy_report: {}\n", e.what());
  return 1;
}
