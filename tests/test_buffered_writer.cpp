// BufferedWriter (wfile): buffering, flushing, partial writes and errors.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <system_error>

#include <socketserver/io/buffered_writer.hpp>

#include "scripted_stream.hpp"

using socketserver::BufferedWriter;

TEST_CASE("write buffers and flush sends everything in one write", "[writer]") {
  test::ScriptedStream stream;
  BufferedWriter wfile(stream);
  wfile.write("hello ");
  wfile.write("world\n");
  CHECK(stream.written.empty());
  CHECK(wfile.buffered() == 12);
  wfile.flush();
  CHECK(stream.written == "hello world\n");
  CHECK(stream.writes() == 1);
  CHECK(wfile.buffered() == 0);
}

TEST_CASE("a full buffer is sent before more is added", "[writer]") {
  test::ScriptedStream stream;
  BufferedWriter wfile(stream);
  wfile.buffer_size = 8;
  wfile.write("12345");
  wfile.write("6789");  // would exceed 8: the first part goes out first
  CHECK(stream.written == "12345");
  CHECK(wfile.buffered() == 4);
}

TEST_CASE("a write larger than the buffer goes straight out, in order", "[writer]") {
  test::ScriptedStream stream;
  BufferedWriter wfile(stream);
  wfile.buffer_size = 8;
  wfile.write("ab");
  const std::string big(100, 'x');
  wfile.write(big);
  CHECK(stream.written == "ab" + big);
  CHECK(wfile.buffered() == 0);
}

TEST_CASE("a large write that finds the buffer empty goes straight out, without a copy", "[writer]") {
  test::ScriptedStream stream;
  BufferedWriter wfile(stream);
  const std::string large(BufferedWriter::direct_write_size, 'L');
  wfile.write(large);
  CHECK(wfile.buffered() == 0);
  CHECK(stream.written == large);
  wfile.write("small");  // a small one is buffered as ever
  CHECK(wfile.buffered() == 5);
  wfile.write(large);  // and a large one joins it rather than cost a write of its own
  CHECK(wfile.buffered() == 5 + large.size());
  CHECK(stream.writes() == 1);
}

TEST_CASE("partial writes are continued until every byte is sent", "[writer]") {
  test::ScriptedStream stream;
  stream.max_write = 3;
  BufferedWriter wfile(stream);
  wfile.write("0123456789");
  wfile.flush();
  CHECK(stream.written == "0123456789");
  CHECK(stream.writes() == 4);
}

TEST_CASE("a failed flush keeps what was not sent and reports the error", "[writer]") {
  test::ScriptedStream stream;
  BufferedWriter wfile(stream);
  wfile.write("data");
  stream.fail_writes = true;
  CHECK_THROWS_AS(wfile.flush(), std::system_error);
  CHECK(wfile.buffered() == 4);
  stream.fail_writes = false;
  wfile.flush();
  CHECK(stream.written == "data");
}

TEST_CASE("an unattached writer says so", "[writer]") {
  BufferedWriter wfile;
  wfile.write("kept");
  CHECK_THROWS_AS(wfile.flush(), std::logic_error);
}
