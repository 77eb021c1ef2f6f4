// The echo handlers the tests share: every line back, blocking and async; the same with a line
// that makes the handler throw; and the README's uppercase echo.
#ifndef SOCKETSERVER_TESTS_ECHO_HANDLERS_HPP
#define SOCKETSERVER_TESTS_ECHO_HANDLERS_HPP

#include <cctype>
#include <stdexcept>
#include <string>

#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/stream_request_handler.hpp>

namespace test {

// Echoes every line until the client closes.
struct LineEcho : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) wfile.write(*line);
  }
};

struct AsyncLineEcho : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    while (auto line = co_await rfile.readline()) co_await wfile.write(*line);
  }
};

// Echoes lines; the line "raise\n" throws std::runtime_error("raised by the handler") instead.
struct RaisingLineEcho : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) {
      if (*line == "raise\n") throw std::runtime_error("raised by the handler");
      wfile.write(*line);
    }
  }
};

struct AsyncRaisingLineEcho : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    while (auto line = co_await rfile.readline()) {
      if (*line == "raise\n") throw std::runtime_error("raised by the handler");
      co_await wfile.write(*line);
    }
  }
};

inline void to_upper(std::string& text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
}

// Every line back in upper case: the README's handler.
struct UpperEcho : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) {
      to_upper(*line);
      wfile.write(*line);
    }
  }
};

}  // namespace test

#endif  // SOCKETSERVER_TESTS_ECHO_HANDLERS_HPP
