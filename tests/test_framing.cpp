// Framing: length-prefixed frames (read_frame, write_frame) and delimited records (the readers'
// read_until), blocking over memory and loopback, async through a real AsyncTCPServer; caps,
// truncation and clean end of stream.
#include <catch2/catch.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <socketserver/async/framing.hpp>
#include <socketserver/async/stream_request_handler.hpp>
#include <socketserver/async/tcp_server.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/buffered_writer.hpp>
#include <socketserver/io/framing.hpp>
#include <socketserver/io/memory_stream.hpp>
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/tcp_server.hpp>

#include "scripted_stream.hpp"
#include "test_support.hpp"

using socketserver::BufferedReader;
using socketserver::BufferedWriter;
using socketserver::LengthPrefix;
using socketserver::MemoryStream;

namespace {

// The bytes write_frame() produces for `body`.
std::string frame(const LengthPrefix& prefix, std::string_view body) {
  MemoryStream out;
  BufferedWriter writer(out);
  socketserver::write_frame(writer, prefix, body);
  writer.flush();
  return out.output();
}

// A stream that hands out `data` one byte per read_some().
test::ScriptedStream byte_by_byte(std::string_view data) {
  std::vector<std::string> chunks;
  for (const char c : data) chunks.emplace_back(1, c);
  return test::ScriptedStream(chunks);
}

// The errc a call throws as std::system_error, or std::nullopt when it throws nothing.
template <class F>
std::optional<socketserver::errc> error_of(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    if (e.code().category() == socketserver::error_category()) return static_cast<socketserver::errc>(e.code().value());
    throw;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("write_frame then read_frame round-trips each length size in both byte orders", "[framing]") {
  const std::size_t size = GENERATE(1, 2, 4, 8);
  const std::endian order = GENERATE(std::endian::big, std::endian::little);
  const LengthPrefix prefix{.length_size = size, .byte_order = order};
  const std::string long_body(200, 'x');

  std::string field(size, '\0');  // 5, in the field's size and byte order
  field[order == std::endian::big ? size - 1 : 0] = 5;
  CHECK(frame(prefix, "hello") == field + "hello");

  MemoryStream stream(frame(prefix, "hello") + frame(prefix, "") + frame(prefix, long_body));
  BufferedReader reader(stream);
  CHECK(socketserver::read_frame(reader, prefix) == "hello");
  CHECK(socketserver::read_frame(reader, prefix) == "");
  CHECK(socketserver::read_frame(reader, prefix) == long_body);
  CHECK(socketserver::read_frame(reader, prefix) == std::nullopt);
}

TEST_CASE("the length field is read in the byte order asked for", "[framing]") {
  const LengthPrefix big{.length_size = 2, .max_frame = 500};
  const LengthPrefix little{.length_size = 2, .byte_order = std::endian::little, .max_frame = 500};
  CHECK(frame(big, std::string(258, 'b')).substr(0, 2) == std::string("\x01\x02", 2));
  CHECK(frame(little, std::string(258, 'l')).substr(0, 2) == std::string("\x02\x01", 2));
  MemoryStream stream(std::string("\x00\x03", 2) + "abc");  // 768 little-endian, 3 big-endian
  BufferedReader reader(stream);
  CHECK(error_of([&] { (void)socketserver::read_frame(reader, little); }) == socketserver::errc::frame_too_large);
}

TEST_CASE("length_adjustment: a length that counts its own field", "[framing]") {
  const LengthPrefix prefix{.length_size = 4, .length_adjustment = -4};
  CHECK(frame(prefix, "abc") == std::string("\x00\x00\x00\x07", 4) + "abc");
  MemoryStream stream(frame(prefix, "abc") + std::string("\x00\x00\x00\x03", 4));  // 3 < the field itself
  BufferedReader reader(stream);
  CHECK(socketserver::read_frame(reader, prefix) == "abc");
  CHECK(error_of([&] { (void)socketserver::read_frame(reader, prefix); }) == socketserver::errc::frame_too_large);

  const LengthPrefix plus{.length_size = 1, .length_adjustment = 2};  // the field counts 2 bytes fewer
  CHECK(frame(plus, "abc") == std::string("\x01", 1) + "abc");
  CHECK(error_of([&] { (void)frame(plus, "a"); }) == socketserver::errc::frame_too_large);
}

TEST_CASE("a frame over max_frame throws frame_too_large without reading its body", "[framing][limits]") {
  const LengthPrefix prefix{.max_frame = 100};
  MemoryStream stream(std::string("\x00\x00\x00\x65", 4) + "body" + std::string(97, 'z'));  // 101 bytes
  BufferedReader reader(stream);
  CHECK(error_of([&] { (void)socketserver::read_frame(reader, prefix); }) == socketserver::errc::frame_too_large);
  CHECK(reader.read(4) == "body");  // still there: only the length field was read

  const LengthPrefix wide{.length_size = 8};  // a peer that claims 2^63 bytes
  MemoryStream huge(std::string("\x80\x00\x00\x00\x00\x00\x00\x00", 8));
  BufferedReader huge_reader(huge);
  CHECK(error_of([&] { (void)socketserver::read_frame(huge_reader, wide); }) == socketserver::errc::frame_too_large);

  MemoryStream exact(frame(prefix, std::string(100, 'e')));
  BufferedReader exact_reader(exact);
  CHECK(socketserver::read_frame(exact_reader, prefix) == std::string(100, 'e'));
}

TEST_CASE("write_frame refuses a body over max_frame or too long for its field, and writes nothing",
          "[framing][limits]") {
  MemoryStream out;
  BufferedWriter writer(out);
  CHECK(error_of([&] { socketserver::write_frame(writer, {.max_frame = 10}, std::string(11, 'x')); }) ==
        socketserver::errc::frame_too_large);
  CHECK(error_of([&] { socketserver::write_frame(writer, {.length_size = 1}, std::string(256, 'x')); }) ==
        socketserver::errc::frame_too_large);
  CHECK(error_of([&] {
          socketserver::write_frame(writer, {.length_size = 1, .length_adjustment = -1}, std::string(255, 'x'));
        }) == socketserver::errc::frame_too_large);
  CHECK(writer.buffered() == 0);
  writer.flush();
  CHECK(out.output().empty());
  socketserver::write_frame(writer, {.length_size = 1}, std::string(255, 'x'));  // the largest that fits
  CHECK(writer.buffered() == 256);
}

TEST_CASE("a length_size other than 1, 2, 4 or 8 throws invalid_argument", "[framing]") {
  MemoryStream stream(std::string(8, '\0'));
  BufferedReader reader(stream);
  BufferedWriter writer(stream);
  CHECK_THROWS_AS(socketserver::read_frame(reader, {.length_size = 3}), std::invalid_argument);
  CHECK_THROWS_AS(socketserver::write_frame(writer, {.length_size = 0}, "x"), std::invalid_argument);
  CHECK(reader.buffered() == 0);
  CHECK(writer.buffered() == 0);
}

TEST_CASE("a stream that ends inside the length field or the body throws truncated_frame", "[framing]") {
  const LengthPrefix prefix;
  MemoryStream empty;
  BufferedReader at_end(empty);
  CHECK(socketserver::read_frame(at_end, prefix) == std::nullopt);

  MemoryStream in_field(std::string("\x00\x00", 2));
  BufferedReader field_reader(in_field);
  CHECK(error_of([&] { (void)socketserver::read_frame(field_reader, prefix); }) == socketserver::errc::truncated_frame);

  MemoryStream in_body(std::string("\x00\x00\x00\x05", 4) + "abc");
  BufferedReader body_reader(in_body);
  CHECK(error_of([&] { (void)socketserver::read_frame(body_reader, prefix); }) == socketserver::errc::truncated_frame);
}

namespace {

// Echoes 4-byte big-endian frames until end of stream.
struct FrameEcho : socketserver::StreamRequestHandler {
  void handle() override {
    const LengthPrefix prefix;
    while (auto body = socketserver::read_frame(rfile, prefix)) socketserver::write_frame(wfile, prefix, *body);
  }
};

}  // namespace

TEST_CASE("blocking frames over loopback, up to max_frame", "[framing]") {
  socketserver::TCPServer<FrameEcho> server({"127.0.0.1", 0});
  test::ServerThread serving(server);
  auto client = test::Client::connect(server.server_address());
  const LengthPrefix prefix;
  // The largest frame last: the handler reads all of it before it answers, so neither side waits.
  const std::string frames =
      frame(prefix, "one") + frame(prefix, "") + frame(prefix, test::counting_bytes(prefix.max_frame));
  client.send(frames);
  client.shutdown_write();
  CHECK(client.recv_all() == frames);
}

TEST_CASE("read_until finds a multi-byte delimiter that straddles reads", "[framing][read_until]") {
  auto stream = byte_by_byte("ab\r\n\r\nc\r\n\rd\r\n\r\n");
  BufferedReader reader(stream);
  CHECK(reader.read_until("\r\n\r\n", 100) == "ab\r\n\r\n");
  CHECK(reader.read_until("\r\n\r\n", 100) == "c\r\n\rd\r\n\r\n");
  CHECK(reader.read_until("\r\n\r\n", 100) == std::nullopt);
  CHECK(stream.log.size() == 16);  // one read per byte, and one that found the end
}

TEST_CASE("read_until throws frame_too_large when no delimiter ends a record within max_size",
          "[framing][read_until][limits]") {
  auto stream = byte_by_byte("123456789\r\n" + std::string(1000, 'x'));
  BufferedReader reader(stream);
  CHECK(reader.read_until("\r\n", 11) == "123456789\r\n");  // exactly max_size
  CHECK(error_of([&] { (void)reader.read_until("\r\n", 11); }) == socketserver::errc::frame_too_large);
  CHECK(reader.buffered() == 11);  // it stopped reading at the cap

  MemoryStream late("123456789\r\n");  // the delimiter's last byte is one past the cap
  BufferedReader late_reader(late);
  CHECK(error_of([&] { (void)late_reader.read_until("\r\n", 10); }) == socketserver::errc::frame_too_large);
}

TEST_CASE("read_until at end of stream: nothing left is std::nullopt, a partial record throws truncated_frame",
          "[framing][read_until]") {
  MemoryStream stream("one;two");
  BufferedReader reader(stream);
  CHECK(reader.read_until(";", 64) == "one;");
  CHECK(error_of([&] { (void)reader.read_until(";", 64); }) == socketserver::errc::truncated_frame);

  MemoryStream empty;
  BufferedReader at_end(empty);
  CHECK(at_end.read_until(";", 64) == std::nullopt);
  CHECK_THROWS_AS(at_end.read_until("", 64), std::invalid_argument);
}

TEST_CASE("read_until flushes the writer before it waits for input", "[framing][read_until]") {
  test::ScriptedStream stream({"rec;"});
  BufferedWriter writer(stream);
  BufferedReader reader(stream, &writer);
  writer.write("reply");
  CHECK(reader.read_until(";", 64) == "rec;");
  CHECK(stream.log == std::vector<std::string>{"write 5", "read"});
}

// The async side, through a real server.

namespace {

template <class Handler>
using Served = test::Served<socketserver::AsyncTCPServer<Handler>>;

// Reads its prefix from the first two bytes ('1'..'8', then 'b' or 'l'), then echoes frames and
// says "EOF\n" at end of stream. On an error it says "!" and the error, then echoes the next
// "\r\n" record (or "none"): what is left of the stream.
struct AsyncFrameEcho : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    const std::string_view config = co_await rfile.read(2);
    if (config.size() < 2) co_return;
    const LengthPrefix prefix{.length_size = static_cast<std::size_t>(config[0] - '0'),
                              .byte_order = config[1] == 'l' ? std::endian::little : std::endian::big};
    std::string error;
    try {
      while (auto body = co_await socketserver::read_frame(rfile, prefix))
        co_await socketserver::write_frame(wfile, prefix, *body);
      co_await wfile.write("EOF\n");
      co_return;
    } catch (const std::system_error& e) {
      error = "!" + e.code().message() + "\n";
    }
    co_await wfile.write(error);
    const auto rest = co_await rfile.read_until("\r\n", 64);
    co_await wfile.write(rest.value_or("none"));
  }
};

}  // namespace

TEST_CASE("async read_frame and write_frame round-trip each length size in both byte orders", "[framing][async]") {
  Served<AsyncFrameEcho> s;
  for (const char size : {'1', '2', '4', '8'}) {
    for (const char order : {'b', 'l'}) {
      const LengthPrefix prefix{.length_size = static_cast<std::size_t>(size - '0'),
                                .byte_order = order == 'l' ? std::endian::little : std::endian::big};
      const std::string frames = frame(prefix, "hello") + frame(prefix, "") + frame(prefix, std::string(255, 'x'));
      auto client = test::Client::connect(s.server.server_address());
      client.send(std::string{size, order} + frames);
      client.shutdown_write();
      CHECK(client.recv_all() == frames + "EOF\n");
    }
  }
}

TEST_CASE("async read_frame reads frames larger than the loop's 64 KiB buffer, up to max_frame", "[framing][async]") {
  Served<AsyncFrameEcho> s;
  auto client = test::Client::connect(s.server.server_address());
  const LengthPrefix prefix;
  const std::string first = frame(prefix, test::counting_bytes(300000));
  client.send("4b" + first);
  CHECK(test::recv_exact(client, first.size()) == first);
  const std::string largest = frame(prefix, test::counting_bytes(prefix.max_frame)) + frame(prefix, "after");
  client.send(largest);
  client.shutdown_write();
  CHECK(client.recv_all() == largest + "EOF\n");
}

TEST_CASE("async read_frame: a frame over max_frame throws frame_too_large without reading its body",
          "[framing][async][limits]") {
  Served<AsyncFrameEcho> s;
  auto client = test::Client::connect(s.server.server_address());
  client.send("4b" + std::string("\x00\x10\x00\x01", 4) + "rest\r\n");  // 1 MiB + 1
  CHECK(client.recv_all() == "!frame too large\nrest\r\n");
}

TEST_CASE("async read_frame: a stream that ends inside the length field or the body throws truncated_frame",
          "[framing][async]") {
  Served<AsyncFrameEcho> s;
  auto in_field = test::Client::connect(s.server.server_address());
  in_field.send("4b" + std::string("\x00\x00", 2));
  in_field.shutdown_write();
  CHECK(in_field.recv_all() == "!stream ended inside a frame\nnone");

  auto in_body = test::Client::connect(s.server.server_address());
  in_body.send("2l" + std::string("\x05\x00", 2) + "abc");
  in_body.shutdown_write();
  CHECK(in_body.recv_all() == "!stream ended inside a frame\nnone");
}

namespace {

// write_frame with a body too long for a 1-byte field: says the error and what wfile holds.
struct AsyncWriteTooLarge : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    std::string reply;
    try {
      co_await socketserver::write_frame(wfile, {.length_size = 1}, std::string(256, 'x'));
    } catch (const std::system_error& e) {
      reply = e.code().message() + " " + std::to_string(wfile.buffered());
    }
    co_await wfile.write(reply);
  }
};

// Its first line is max_size; then it echoes "\r\n\r\n" records and says "EOF\n" at end of
// stream. On an error it reads to the end of the stream (closing with unread input would reset
// the connection), then says "!" and the error.
struct AsyncRecords : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    const auto first = co_await rfile.readline();
    if (!first) co_return;
    const std::size_t max_size = std::stoul(std::string(*first));
    std::string error;
    try {
      while (auto record = co_await rfile.read_until("\r\n\r\n", max_size)) co_await wfile.write(*record);
      co_await wfile.write("EOF\n");
      co_return;
    } catch (const std::system_error& e) {
      error = "!" + e.code().message() + "\n";
    }
    while (!(co_await rfile.read(std::size_t{64} * 1024)).empty()) {
    }
    co_await wfile.write(error);
  }
};

}  // namespace

TEST_CASE("async write_frame refuses a body too long for its field and writes nothing", "[framing][async][limits]") {
  Served<AsyncWriteTooLarge> s;
  auto client = test::Client::connect(s.server.server_address());
  CHECK(client.recv_all() == "frame too large 0");
}

TEST_CASE("async read_until finds a multi-byte delimiter that straddles reads", "[framing][async][read_until]") {
  Served<AsyncRecords> s;
  auto client = test::Client::connect(s.server.server_address());
  client.send("64\none\r\n\r\ntwo\r\n\r");
  // The reply comes when the handler waits for input, having scanned "two\r\n\r".
  CHECK(test::recv_exact(client, 7) == "one\r\n\r\n");
  client.send("\n");
  CHECK(test::recv_exact(client, 7) == "two\r\n\r\n");
  client.shutdown_write();
  CHECK(client.recv_all() == "EOF\n");
}

TEST_CASE("async read_until: a record larger than the loop's 64 KiB buffer, and one past the cap",
          "[framing][async][read_until][limits]") {
  Served<AsyncRecords> s;
  auto client = test::Client::connect(s.server.server_address());
  const std::string record = std::string(200000 - 4, 'r') + "\r\n\r\n";
  client.send("200000\n" + record);
  CHECK(test::recv_exact(client, record.size()) == record);
  client.send(std::string(200001, 'x'));
  client.shutdown_write();
  CHECK(client.recv_all() == "!frame too large\n");
}

TEST_CASE("async read_until at end of stream: nothing left is std::nullopt, a partial record throws truncated_frame",
          "[framing][async][read_until]") {
  Served<AsyncRecords> s;
  auto clean = test::Client::connect(s.server.server_address());
  clean.send("64\na\r\n\r\n");
  clean.shutdown_write();
  CHECK(clean.recv_all() == "a\r\n\r\nEOF\n");

  auto partial = test::Client::connect(s.server.server_address());
  partial.send("64\na\r\n\r\nb\r\n");
  partial.shutdown_write();
  CHECK(partial.recv_all() == "a\r\n\r\n!stream ended inside a frame\n");
}
