// Serves one request with an installed socketserver and checks the reply.
#include <socketserver/socketserver.hpp>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <cstdio>
#include <string>
#include <thread>

struct Hello : socketserver::StreamRequestHandler {
  void handle() override {
    if (auto line = rfile.readline()) wfile.write("hello, " + *line);
  }
};

int main() {
  socketserver::TCPServer<Hello> server({"127.0.0.1", 0});
  std::thread serve([&] { server.handle_request(); });

  asio::io_context io;
  asio::ip::tcp::socket client(io);
  client.connect({asio::ip::make_address(server.server_address().host()), server.server_address().port()});
  asio::write(client, asio::buffer(std::string("consumer\n")));
  std::string reply;
  std::error_code ec;
  asio::read(client, asio::dynamic_buffer(reply), ec);  // until the server closes
  serve.join();

  std::printf("%s", reply.c_str());
  return reply == "hello, consumer\n" ? 0 : 1;
}
