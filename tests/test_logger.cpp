// Logger: level filtering before formatting, what the sink receives, the default stderr line,
// level off, a throwing sink; and the lines a real server writes: one access line per
// connection at level info, a handler's error as a server error.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <socketserver/address.hpp>
#include <socketserver/logger.hpp>
#include <socketserver/threading_servers.hpp>

#include "echo_handlers.hpp"
#include "log_capture.hpp"
#include "test_support.hpp"

using socketserver::LogCategory;
using socketserver::Logger;
using socketserver::LogLevel;

namespace {

using Line = test::LogCapture::Line;
using Server = socketserver::ThreadingTCPServer<test::RaisingLineEcho>;

// Counts how often fmt formats it: a dropped line must not be formatted at all.
struct Counted {};
std::atomic<int> formatted{0};

}  // namespace

template <>
struct fmt::formatter<Counted> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const Counted& /*counted*/, FormatContext& ctx) const {
    ++formatted;
    return fmt::formatter<std::string_view>::format("counted", ctx);
  }
};

TEST_CASE("lines below the level are dropped before they are formatted", "[logger]") {
  Logger logger;
  CHECK(logger.level == LogLevel::warning);  // the default
  int calls = 0;
  logger.sink = [&](LogLevel, LogCategory, std::string_view) { ++calls; };
  formatted = 0;

  logger.log(LogLevel::debug, LogCategory::server, "{}", Counted{});
  logger.log(LogLevel::info, LogCategory::access, "{}", Counted{});
  CHECK(formatted == 0);
  CHECK(calls == 0);

  logger.log(LogLevel::warning, LogCategory::security, "{}", Counted{});
  logger.log(LogLevel::error, LogCategory::server, "{}", Counted{});
  CHECK(formatted == 2);
  CHECK(calls == 2);
}

TEST_CASE("the sink receives the level, the category and the formatted message", "[logger]") {
  Logger logger;
  logger.level = LogLevel::debug;
  test::LogCapture lines;
  logger.sink = lines.sink();

  logger.log(LogLevel::debug, LogCategory::access, "{} + {} = {}", 1, 2, 3);
  logger.log(LogLevel::warning, LogCategory::security, "from {}", socketserver::Address("127.0.0.1", 4242));
  logger.log(LogLevel::error, LogCategory::server, "no arguments");

  const auto got = lines.get();
  REQUIRE(got.size() == 3);
  CHECK(got[0].level == LogLevel::debug);
  CHECK(got[0].category == LogCategory::access);
  CHECK(got[0].text == "1 + 2 = 3");
  CHECK(got[1].level == LogLevel::warning);
  CHECK(got[1].category == LogCategory::security);
  CHECK(got[1].text == "from 127.0.0.1:4242");
  CHECK(got[2].level == LogLevel::error);
  CHECK(got[2].category == LogCategory::server);
  CHECK(got[2].text == "no arguments");
}

TEST_CASE("enabled() says which levels pass", "[logger]") {
  Logger logger;
  logger.level = LogLevel::info;
  CHECK_FALSE(logger.enabled(LogLevel::debug));
  CHECK(logger.enabled(LogLevel::info));
  CHECK(logger.enabled(LogLevel::warning));
  CHECK(logger.enabled(LogLevel::error));
  logger.level = LogLevel::error;
  CHECK_FALSE(logger.enabled(LogLevel::warning));
  CHECK(logger.enabled(LogLevel::error));
}

TEST_CASE("level off drops everything, errors included", "[logger]") {
  Logger logger;
  logger.level = LogLevel::off;
  int calls = 0;
  logger.sink = [&](LogLevel, LogCategory, std::string_view) { ++calls; };
  formatted = 0;
  for (const LogLevel level : {LogLevel::debug, LogLevel::info, LogLevel::warning, LogLevel::error, LogLevel::off}) {
    CHECK_FALSE(logger.enabled(level));
    logger.log(level, LogCategory::server, "{}", Counted{});
  }
  CHECK(calls == 0);
  CHECK(formatted == 0);

  // And without a sink nothing reaches stderr.
  logger.sink = nullptr;
  test::StderrCapture capture;
  logger.log(LogLevel::error, LogCategory::server, "dropped");
  CHECK(capture.finish().empty());
}

TEST_CASE("without a sink, lines go to stderr as 'socketserver: [category] level: message'", "[logger]") {
  Logger logger;
  test::StderrCapture capture;
  logger.log(LogLevel::warning, LogCategory::security, "read timeout from {}",
             socketserver::Address("127.0.0.1", 4242));
  logger.log(LogLevel::info, LogCategory::access, "not written at the default level");
  logger.log(LogLevel::error, LogCategory::server, "{} {}", "two", "args");
  CHECK(capture.finish() ==
        "socketserver: [security] warning: read timeout from 127.0.0.1:4242\n"
        "socketserver: [server] error: two args\n");
}

TEST_CASE("a sink that throws loses the line, not the caller", "[logger]") {
  Logger logger;
  int calls = 0;
  logger.sink = [&](LogLevel, LogCategory, std::string_view) {
    ++calls;
    throw std::runtime_error("the sink failed");
  };
  CHECK_NOTHROW(logger.log(LogLevel::error, LogCategory::server, "lost"));
  CHECK(calls == 1);
}

TEST_CASE("levels and categories have their names", "[logger]") {
  CHECK(socketserver::to_string(LogLevel::debug) == "debug");
  CHECK(socketserver::to_string(LogLevel::info) == "info");
  CHECK(socketserver::to_string(LogLevel::warning) == "warning");
  CHECK(socketserver::to_string(LogLevel::error) == "error");
  CHECK(socketserver::to_string(LogLevel::off) == "off");
  CHECK(socketserver::to_string(LogCategory::server) == "server");
  CHECK(socketserver::to_string(LogCategory::access) == "access");
  CHECK(socketserver::to_string(LogCategory::security) == "security");
}

TEST_CASE("a ThreadingTCPServer writes one access line per connection at level info", "[logger][access][tcp]") {
  test::LogCapture lines;
  Server server({"127.0.0.1", 0});
  server.logger.level = LogLevel::info;
  server.logger.sink = lines.sink();
  test::ServerThread serving(server);

  // Two connections: their peers, and the bytes each sent and received.
  std::vector<std::tuple<std::string, std::size_t, std::size_t>> expected;
  for (const std::string text : {"hello\n", "a longer line of text\n"}) {
    auto client = test::Client::connect(server.server_address());
    const std::string peer = test::socket_name(client.fd()).to_string();
    std::size_t in = 0, out = 0;
    for (int i = 0; i < 2; ++i) {
      client.send(text);
      in += text.size();
      const std::string reply = client.recv_line();
      CHECK(reply == text);
      out += reply.size();
    }
    client.close();
    expected.emplace_back(peer, in, out);
  }
  REQUIRE(test::eventually([&] { return lines.of(LogCategory::access).size() == 2; }));

  const auto access = lines.of(LogCategory::access);
  for (const auto& [peer, in, out] : expected) {
    const std::string prefix = peer + " closed after ";
    const auto line =
        std::find_if(access.begin(), access.end(), [&](const Line& l) { return l.text.rfind(prefix, 0) == 0; });
    REQUIRE(line != access.end());
    INFO(line->text);
    CHECK(line->level == LogLevel::info);
    // "<peer> closed after <seconds> s, <in> bytes in, <out> bytes out: <reason>"
    double seconds = -1;
    unsigned long long bytes_in = 0, bytes_out = 0;
    int reason = -1;
    REQUIRE(std::sscanf(line->text.c_str() + prefix.size(), "%lf s, %llu bytes in, %llu bytes out: %n", &seconds,
                        &bytes_in, &bytes_out, &reason) == 3);
    REQUIRE(reason > 0);
    CHECK(seconds >= 0);
    CHECK(bytes_in == in);
    CHECK(bytes_out == out);
    CHECK(line->text.substr(prefix.size() + static_cast<std::size_t>(reason)) == "closed");
  }
  CHECK(lines.of(LogCategory::security).empty());
  CHECK(lines.of(LogCategory::server).empty());
}

TEST_CASE("at the default level a server writes no access line", "[logger][access][tcp]") {
  test::LogCapture lines;
  Server server({"127.0.0.1", 0});
  server.logger.sink = lines.sink();
  {
    test::ServerThread serving(server);
    auto client = test::Client::connect(server.server_address());
    client.send("hello\n");
    CHECK(client.recv_line() == "hello\n");
    client.close();
    REQUIRE(test::eventually([&] { return server.stats().active == 0; }));
  }
  CHECK(lines.get().empty());
}

TEST_CASE("a handler's exception is a server error naming the peer, and the close reason of its access line",
          "[logger][access][tcp]") {
  test::LogCapture lines;
  Server server({"127.0.0.1", 0});
  server.logger.level = LogLevel::info;
  server.logger.sink = lines.sink();
  test::ServerThread serving(server);

  auto client = test::Client::connect(server.server_address());
  const std::string peer = test::socket_name(client.fd()).to_string();
  client.send("raise\n");
  CHECK(client.recv_all().empty());
  REQUIRE(test::eventually([&] { return lines.of(LogCategory::access).size() == 1; }));

  const auto errors = lines.of(LogCategory::server);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].level == LogLevel::error);
  CHECK(errors[0].text == "error processing request from " + peer + ": raised by the handler");
  const auto access = lines.of(LogCategory::access);
  CHECK_THAT(access[0].text, Catch::StartsWith(peer + " closed after "));
  CHECK_THAT(access[0].text, Catch::EndsWith(", 6 bytes in, 0 bytes out: raised by the handler"));
}
