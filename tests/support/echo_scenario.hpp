// CPython's echo scenario, for any server type: a client of the right kind, and the round trip
// that every server and mixin test runs.
#ifndef SOCKETSERVER_TESTS_ECHO_SCENARIO_HPP
#define SOCKETSERVER_TESTS_ECHO_SCENARIO_HPP

#include <catch2/catch.hpp>

#include <chrono>
#include <concepts>
#include <string>
#include <string_view>

#include <socketserver/address.hpp>
#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/stream_request_handler.hpp>

#include "echo_handlers.hpp"
#include "test_support.hpp"

namespace test {

// A client of the right kind for a server: a connected stream socket or a datagram socket
// (bound to a path of its own for a Unix datagram server, so that replies can come back).
struct Peer {
  Client client;
  bool stream;
  void send(std::string_view text) { client.send(text); }
  std::string reply() { return stream ? client.recv_line() : client.recv(); }
};

template <class Server>
Peer connect_to(Server& server, const TempDir& dir, const std::string& name) {
  const socketserver::Address& address = server.server_address();
  using Handler = typename Server::handler_type;
  if constexpr (std::derived_from<Handler, socketserver::StreamRequestHandler> ||
                std::derived_from<Handler, socketserver::AsyncStreamRequestHandler>)
    return Peer{Client::connect(address), true};
  else
    return Peer{Client::datagram(address, address.is_unix() ? dir.path(name) : std::string()), false};
}

// CPython's scenario for every server: serve in a thread with a 10 ms poll, three clients each
// get their line echoed, shutdown, server_close; the socket is closed, then `after_close` checks
// what the server type leaves behind (threads, children).
template <class Server, class AfterClose>
void check_echo_scenario(Server& server, const TempDir& dir, AfterClose after_close) {
  {
    ServerThread serving(server, std::chrono::milliseconds(10));
    for (int i = 0; i < 3; ++i) {
      auto peer = connect_to(server, dir, "client" + std::to_string(i));
      peer.send("line " + std::to_string(i) + "\n");
      CHECK(peer.reply() == "line " + std::to_string(i) + "\n");
    }
    serving.stop();
  }
  server.server_close();
  CHECK(server.fileno() == -1);
  after_close();
}

}  // namespace test

#endif  // SOCKETSERVER_TESTS_ECHO_SCENARIO_HPP
