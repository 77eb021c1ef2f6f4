// MemoryStream: a ByteStream over a string, for datagram handlers and handler unit tests.
#include <catch2/catch.hpp>

#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/memory_stream.hpp>
#include <socketserver/stream_request_handler.hpp>

TEST_CASE("reads return the input, then end of stream", "[memory_stream]") {
  socketserver::MemoryStream stream("abc");
  char buf[2];
  CHECK(stream.read_some(buf) == 2);
  CHECK(stream.read_some(buf) == 1);
  CHECK(buf[0] == 'c');
  CHECK(stream.read_some(buf) == 0);
  CHECK(stream.native_handle() == -1);
}

TEST_CASE("writes collect in output", "[memory_stream]") {
  socketserver::MemoryStream stream;
  stream.sendall("hello ");
  stream.sendall("world");
  CHECK(stream.output() == "hello world");
}

TEST_CASE("a stream handler's logic runs over memory, without a network", "[memory_stream][handler]") {
  struct Reverse : socketserver::StreamRequestHandler {
    void handle() override {
      while (auto line = rfile.readline()) wfile.write(std::string(line->rbegin() + 1, line->rend()) + "\n");
    }
  };
  auto stream = std::make_unique<socketserver::MemoryStream>("abc\nxyz\n");
  auto& memory = *stream;
  socketserver::StreamRequest request(std::move(stream));
  Reverse handler;
  handler.request = &request;
  handler.setup();
  handler.handle();
  handler.finish();
  CHECK(memory.output() == "cba\nzyx\n");
}
