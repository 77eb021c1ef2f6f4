// Tutorial, chapter 3: the same handler under each kind of server, picked on the command line.
//   build/examples/tutorial/03_servers pool &   printf 'x\n' | nc -N 127.0.0.1 9000
#include <socketserver/socketserver.hpp>

#include <string>
#include <string_view>

struct Numbered : socketserver::StreamRequestHandler {
  void handle() override {
    int n = 0;
    while (auto line = rfile.readline()) wfile.write(std::to_string(++n) + ": " + *line);
  }
};

template <class Server>
void run(Server& server) {
  server.limits.max_connections = 100;  // the 101st waits in the kernel's queue
  socketserver::ShutdownOnSignals stop(server);
  server.serve_forever();
  server.server_close();  // lets connected clients finish, for limits.drain_timeout
}

int main(int argc, char** argv) {
  const std::string_view kind = argc > 1 ? argv[1] : "threading";
  const socketserver::Address address("127.0.0.1", 9000);
  if (kind == "plain") {
    socketserver::TCPServer<Numbered> server(address);  // one client at a time
    run(server);
  } else if (kind == "forking") {
    socketserver::ForkingTCPServer<Numbered> server(address);  // a process per client
    run(server);
  } else if (kind == "pool") {
    socketserver::ThreadPoolMixIn<socketserver::TCPServer<Numbered>> server(address);  // a bounded pool
    server.max_workers = 8;
    run(server);
  } else {
    socketserver::ThreadingTCPServer<Numbered> server(address);  // a thread per client
    run(server);
  }
}
