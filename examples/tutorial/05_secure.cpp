// Tutorial, chapter 6: the chapter 2 server, hardened: TLS, tighter limits, an access list, a
// log line per connection, and coroutines for many idle clients.
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30
//     -subj /CN=localhost -keyout key.pem -out cert.pem        (one line)
//   build/examples/tutorial/05_secure cert.pem key.pem &
//   openssl s_client -quiet -connect 127.0.0.1:9443
#include <socketserver/async.hpp>
#include <socketserver/socketserver.hpp>

#include <memory>
#include <string>

struct Numbered : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    int n = 0;
    while (auto line = co_await rfile.readline()) {
      const std::string reply = std::to_string(++n) + ": " + std::string(*line);  // named first (GCC 12: below)
      co_await wfile.write(reply);
    }
  }
};

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  socketserver::AsyncTCPServer<Numbered> server({"127.0.0.1", 9443});
  socketserver::TlsSettings tls;
  tls.cert_file = argv[1];
  tls.key_file = argv[2];
  server.tls = std::make_shared<socketserver::TlsContext>(tls);  // TLS 1.2 and 1.3, AEAD only
  server.limits.max_line = 1024;                                 // a longer line closes the connection
  server.limits.idle_timeout = socketserver::Seconds(60);
  server.limits.max_connections = 10000;
  server.set_access_list(socketserver::AccessList({"127.0.0.0/8", "::1/128"}));
  server.logger.level = socketserver::LogLevel::info;  // an access line per connection, on stderr
  socketserver::ShutdownOnSignals stop(server);
  server.serve_forever();
  server.server_close();
}
