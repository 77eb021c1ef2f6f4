// BufferedReader (rfile): lines, sizes, the line cap, and flushing the writer before a wait.
#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <socketserver/error.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/buffered_writer.hpp>

#include "scripted_stream.hpp"

using socketserver::BufferedReader;
using socketserver::BufferedWriter;

TEST_CASE("readline returns each line with its newline, then the unterminated rest, then nothing", "[reader]") {
  test::ScriptedStream stream({"one\ntw", "o\nthr", "ee"});
  BufferedReader rfile(stream);
  CHECK(rfile.readline() == "one\n");
  CHECK(rfile.readline() == "two\n");
  CHECK(rfile.readline() == "three");
  CHECK(rfile.readline() == std::nullopt);
  CHECK(rfile.readline() == std::nullopt);
}

TEST_CASE("an empty line is a line, distinct from end of stream", "[reader]") {
  test::ScriptedStream stream({"\n\n"});
  BufferedReader rfile(stream);
  CHECK(rfile.readline() == "\n");
  CHECK(rfile.readline() == "\n");
  CHECK_FALSE(rfile.readline());
}

TEST_CASE("a line longer than max_line throws line_too_long instead of growing", "[reader][limits]") {
  test::ScriptedStream stream({std::string(100, 'x') + "\n"});
  BufferedReader rfile(stream);
  rfile.max_line = 64;
  try {
    (void)rfile.readline();
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code() == socketserver::errc::line_too_long);
  }
}

TEST_CASE("a line of exactly max_line bytes is accepted", "[reader][limits]") {
  const std::string line = std::string(63, 'y') + "\n";
  test::ScriptedStream stream({line.substr(0, 10), line.substr(10)});
  BufferedReader rfile(stream);
  rfile.max_line = 64;
  CHECK(rfile.readline() == line);
}

TEST_CASE("the default max_line admits a 64 KiB line and refuses a longer one", "[reader][limits]") {
  const std::string fits = std::string(BufferedReader::default_max_line - 1, 'a') + "\n";
  test::ScriptedStream stream({fits, std::string(BufferedReader::default_max_line + 1, 'b')});
  BufferedReader rfile(stream);
  CHECK(rfile.readline() == fits);
  CHECK_THROWS_AS(rfile.readline(), std::system_error);
}

TEST_CASE("readline(limit) returns at most limit bytes, like Python's readline(size)", "[reader]") {
  test::ScriptedStream stream({"abcdef\ngh\n"});
  BufferedReader rfile(stream);
  CHECK(rfile.readline(4) == "abcd");
  CHECK(rfile.readline(4) == "ef\n");
  CHECK(rfile.readline(0) == "");
  CHECK(rfile.readline(100) == "gh\n");
  CHECK(rfile.readline(100) == std::nullopt);
}

TEST_CASE("read(n) returns exactly n bytes across chunks, fewer only at end of stream", "[reader]") {
  test::ScriptedStream stream({"ab", "cde", "fghij"});
  BufferedReader rfile(stream);
  CHECK(rfile.readline(1) == "a");
  CHECK(rfile.read(6) == "bcdefg");
  CHECK(rfile.read(10) == "hij");
  CHECK(rfile.read(10).empty());
}

TEST_CASE("read(n) of a large size reads it all", "[reader]") {
  const std::string big(1 << 20, 'z');
  test::ScriptedStream stream({"x", big.substr(0, 1000), big.substr(1000)});
  BufferedReader rfile(stream);
  CHECK(rfile.read(1) == "x");
  CHECK(rfile.read(big.size()) == big);
}

TEST_CASE("read() returns everything up to end of stream", "[reader]") {
  test::ScriptedStream stream({"first\n", "second", " third"});
  BufferedReader rfile(stream);
  CHECK(rfile.readline() == "first\n");
  CHECK(rfile.read() == "second third");
  CHECK(rfile.read().empty());
}

TEST_CASE("range-for iterates over lines until end of stream", "[reader]") {
  test::ScriptedStream stream({"a\nb", "\nc"});
  BufferedReader rfile(stream);
  std::vector<std::string> lines;
  for (const auto& line : rfile) lines.push_back(line);
  CHECK(lines == std::vector<std::string>{"a\n", "b\n", "c"});
}

TEST_CASE("the reader flushes its writer before it waits for more input", "[reader][writer]") {
  test::ScriptedStream stream({"q1\n", "q2\n"});
  BufferedWriter wfile(stream);
  BufferedReader rfile(stream, &wfile);
  CHECK(rfile.readline() == "q1\n");
  wfile.write("a1\n");
  CHECK(stream.written.empty());  // buffered until the reader must wait
  CHECK(rfile.readline() == "q2\n");
  CHECK(stream.written == "a1\n");
  CHECK(stream.log == std::vector<std::string>{"read", "write 3", "read"});
}

TEST_CASE("pipelined requests are answered with one write per batch", "[reader][writer]") {
  std::string batch;
  for (int i = 0; i < 16; ++i) batch += "request " + std::to_string(i) + "\n";
  test::ScriptedStream stream({batch});
  BufferedWriter wfile(stream);
  BufferedReader rfile(stream, &wfile);
  while (auto line = rfile.readline()) wfile.write("reply to " + *line);
  wfile.flush();
  CHECK(stream.writes() == 1);
  CHECK(stream.written.find("reply to request 15\n") != std::string::npos);
}

TEST_CASE("an unattached reader says so", "[reader]") {
  BufferedReader rfile;
  CHECK_THROWS_AS(rfile.readline(), std::logic_error);
}
