// Tutorial, chapter 1: a TCP server that echoes what one client sends, one client at a time.
//   build/examples/tutorial/01_echo &   printf 'hi\n' | nc -N 127.0.0.1 9000
#include <socketserver/socketserver.hpp>

#include <string>

struct Echo : socketserver::BaseRequestHandler {
  void handle() override {
    // recv() returns what has arrived (at most 4096 bytes), and "" once the client has closed.
    for (std::string data = request->recv(4096); !data.empty(); data = request->recv(4096)) request->sendall(data);
  }
};

int main() {
  socketserver::TCPServer<Echo> server({"127.0.0.1", 9000});
  server.serve_forever();
}
