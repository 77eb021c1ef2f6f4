// Compression: compress()/decompress() round trips, the decompression cap against a zip bomb
// (one-shot and through the layer), corrupt input, and the compression layer under blocking and
// coroutine handlers, over TCP and over TLS.
#include <catch2/catch.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/compression.hpp>
#include <socketserver/io/memory_stream.hpp>
#include <socketserver/io/socket_stream.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/threading_servers.hpp>
#include <socketserver/tls_context.hpp>

#include "log_capture.hpp"
#include "test_support.hpp"
#include "tls_support.hpp"

using socketserver::Compression;
using socketserver::DecompressionLimits;
using socketserver::errc;

namespace {

// A zip bomb: `size` zeros, deflated (about 1029:1).
std::string bomb(std::size_t size, Compression format) {
  return socketserver::compress(std::string(size, '\0'), format, 9);
}

std::error_code error_of_decompress(std::string_view data, Compression format, const DecompressionLimits& limits = {}) {
  return test::error_of([&] { (void)socketserver::decompress(data, format, limits); });
}

struct Upper : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) {
      for (char& c : *line) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
      wfile.write(*line);
    }
  }
};

struct AsyncUpper : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    std::string upper;
    while (auto line = co_await rfile.readline()) {
      upper.assign(*line);
      for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
      co_await wfile.write(upper);
    }
  }
};

// The client's side of a compressed connection: a CompressionStream over its socket, or over
// its TLS connection.
class TlsClientStream final : public socketserver::ByteStream {
 public:
  explicit TlsClientStream(test::TlsClient& client) : client_(client) {}
  std::size_t read_some(std::span<char> buffer) override {
    if (pending_.empty()) pending_ = client_.recv_some();
    const std::size_t n = std::min(buffer.size(), pending_.size());
    pending_.copy(buffer.data(), n);
    pending_.erase(0, n);
    return n;
  }
  std::size_t write_some(std::span<const char> data) override {
    client_.send(std::string(data.data(), data.size()));
    return data.size();
  }
  void shutdown_write() noexcept override {}
  void close() noexcept override {}
  int native_handle() const noexcept override { return -1; }

 private:
  test::TlsClient& client_;
  std::string pending_;
};

std::string say(socketserver::ByteStream& client, const std::string& line) {
  client.sendall(line);
  std::string reply;
  char buffer[4096];
  while (reply.find('\n') == std::string::npos) {
    const std::size_t n = client.read_some(buffer);
    if (n == 0) break;
    reply.append(buffer, n);
  }
  return reply;
}

template <class Server>
void check_layer(Compression format, bool tls) {
  Server server({"127.0.0.1", 0});
  if constexpr (requires { server.threads; }) server.threads = 1;
  server.layers.push_back(socketserver::compression_layer(format));
  if (tls) server.tls = std::make_shared<socketserver::TlsContext>(test::certificates().settings());
  test::ServerThread serving(server);
  std::unique_ptr<socketserver::CompressionStream> client;
  std::optional<test::TlsClient> tls_client;
  if (tls) {
    tls_client.emplace(server.server_address(), test::certificates(), false);
    client = std::make_unique<socketserver::CompressionStream>(std::make_unique<TlsClientStream>(*tls_client), format);
  } else {
    test::Client raw = test::Client::connect(server.server_address());
    const int fd = ::dup(raw.fd());
    client =
        std::make_unique<socketserver::CompressionStream>(std::make_unique<socketserver::SocketStream>(fd), format);
  }
  CHECK(say(*client, "hello, compressed world\n") == "HELLO, COMPRESSED WORLD\n");
  const std::string text(50'000, 'a');  // compresses well: far fewer bytes on the wire
  CHECK(say(*client, text + "\n") == std::string(50'000, 'A') + "\n");
  CHECK(client->compressed_in() < 2'000);
  CHECK(client->plaintext_out() == 24 + 50'001);
}

}  // namespace

TEST_CASE("compress() and decompress() round-trip gzip and deflate", "[compression]") {
  const std::string text = "The quick brown fox jumps over the lazy dog. " + std::string(10'000, 'x');
  for (const Compression format : {Compression::gzip, Compression::deflate}) {
    const std::string packed = socketserver::compress(text, format);
    CHECK(packed.size() < text.size() / 10);
    CHECK(socketserver::decompress(packed, format) == text);
  }
  CHECK_FALSE(socketserver::compress("", Compression::gzip).empty());
  CHECK(socketserver::decompress(socketserver::compress("", Compression::gzip), Compression::gzip).empty());
}

TEST_CASE("decompress() refuses a 1029:1 zip bomb at its cap", "[compression][limits]") {
  const std::string packed = bomb(std::size_t{100} * 1024 * 1024, Compression::gzip);  // 100 MiB of zeros
  INFO("bomb of " << packed.size() << " bytes");
  CHECK(packed.size() < std::size_t{150} * 1024);
  CHECK(error_of_decompress(packed, Compression::gzip) == errc::decompression_limit);
  // A smaller cap, and no ratio allowance: refused at 64 KiB.
  CHECK(error_of_decompress(packed, Compression::gzip, {std::size_t{64} * 1024, 0}) == errc::decompression_limit);
  // What fits the cap passes: 512 KiB of zeros under the default 1 MiB.
  CHECK(socketserver::decompress(bomb(std::size_t{512} * 1024, Compression::gzip), Compression::gzip).size() ==
        std::size_t{512} * 1024);
}

TEST_CASE("decompress() refuses corrupt, truncated and mislabelled input", "[compression]") {
  const std::string packed = socketserver::compress("some text to compress, some text", Compression::gzip);
  CHECK(error_of_decompress("not compressed at all", Compression::gzip) == errc::bad_compressed_data);
  CHECK(error_of_decompress(packed.substr(0, packed.size() - 4), Compression::gzip) == errc::bad_compressed_data);
  CHECK(error_of_decompress(packed, Compression::deflate) == errc::bad_compressed_data);
  std::string flipped = packed;
  flipped[flipped.size() - 6] = static_cast<char>(flipped[flipped.size() - 6] ^ 0x55);  // the CRC no longer matches
  CHECK(error_of_decompress(flipped, Compression::gzip) == errc::bad_compressed_data);
  CHECK(error_of_decompress(packed + "trailing", Compression::gzip) == errc::bad_compressed_data);
}

TEST_CASE("the compression layer stops a zip bomb at its cap, having produced no more than it",
          "[compression][limits]") {
  // A peer that sends a deflate stream of 100 MiB of zeros.
  const std::string packed = bomb(std::size_t{100} * 1024 * 1024, Compression::deflate);
  auto layer = socketserver::CompressionStream(std::make_unique<socketserver::MemoryStream>(packed),
                                               Compression::deflate, {std::size_t{256} * 1024, 100});
  std::string sink(std::size_t{64} * 1024, '\0');
  const std::error_code code = test::error_of([&] {
    while (layer.read_some(sink) != 0) {
    }
  });
  CHECK(code == errc::decompression_limit);
  CHECK(layer.plaintext_out() >= std::size_t{256} * 1024);
  CHECK(layer.plaintext_out() <= std::max<std::size_t>(std::size_t{256} * 1024, 100 * layer.compressed_in()));
}

TEST_CASE("a bomb through a server's compression layer closes the connection at the cap", "[compression][limits]") {
  socketserver::ThreadingTCPServer<Upper> server({"127.0.0.1", 0});
  server.layers.push_back(socketserver::compression_layer(Compression::deflate));
  server.limits.max_line = 0;  // no line cap: the decompression cap is what stops it
  test::LogCapture log;
  log.attach(server.logger);
  test::ServerThread serving(server);
  test::Client client = test::Client::connect(server.server_address());
  const std::string packed = bomb(std::size_t{50} * 1024 * 1024, Compression::deflate);
  try {
    client.send(packed);
  } catch (const std::system_error&) {  // the server closed while we sent: it stopped reading
  }
  REQUIRE(test::eventually([&] { return server.stats().active == 0; }));
  CHECK(server.stats().limit_exceeded == 1);
  CHECK(server.stats().bytes_in <= std::size_t{2} * 1024 * 1024);  // plaintext through rfile: about the cap
  // The access line is written just after the connection stops counting as active.
  CHECK(test::eventually(
      [&] { return log.contains(socketserver::LogCategory::access, "decompressed data over its limit"); }));
}

TEST_CASE("the compression layer under a threading server", "[compression][layer]") {
  check_layer<socketserver::ThreadingTCPServer<Upper>>(Compression::deflate, false);
  check_layer<socketserver::ThreadingTCPServer<Upper>>(Compression::gzip, false);
}

TEST_CASE("the compression layer under an async server", "[compression][layer]") {
  check_layer<socketserver::AsyncTCPServer<AsyncUpper>>(Compression::deflate, false);
}

TEST_CASE("the compression layer on top of TLS", "[compression][layer][tls]") {
  check_layer<socketserver::ThreadingTCPServer<Upper>>(Compression::deflate, true);
  check_layer<socketserver::AsyncTCPServer<AsyncUpper>>(Compression::gzip, true);
}
