// libFuzzer harness for the http_server example's request parser (examples/http_request.hpp),
// fed the way the handler feeds it: the input is split into lines, the first is the request
// line, the next ones header lines up to an empty one, capped as the handler caps them. Every
// header value then goes through the target, Range, Accept-Encoding and date parsers. The
// sanitizers catch a read out of bounds or an exception; the checks below trap when an answer
// breaks what the server relies on:
//   - a target path never holds a ".." segment, a NUL, a backslash, an empty or "." segment,
//     and never starts or ends with '/': it stays under the served directory;
//   - a satisfiable range lies within the file, first <= last;
//   - a parsed date prints back to the same text (IMF-fixdate is one form);
//   - percent_encode() then percent_decode() gives the text back.
//
// Build and run (corpus: fuzz/corpus/http_request):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iexamples fuzz/fuzz_http_request.cpp -o fuzz_http
//   ./fuzz_http -max_total_time=600 new_corpus/ fuzz/corpus/http_request
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../examples/http_request.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_path(std::string_view target) {
  const auto path = http::target_path(target);
  if (!path) return;
  const std::string& p = path->relative;
  check(p.find('\0') == std::string::npos && p.find('\\') == std::string::npos);
  check(p.empty() || (p.front() != '/' && p.back() != '/'));
  std::string_view rest = p;
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    check(!segment.empty() && segment != "." && segment != "..");
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
}

void check_value(std::string_view value) {
  check_path(value);
  for (const std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1000}, ~std::uint64_t{0} >> 1}) {
    const auto range = http::parse_range(value, size);
    if (range.kind == http::Range::satisfiable) check(range.first <= range.last && range.last < size);
  }
  (void)http::accepts_gzip(value);
  if (const auto date = http::parse_http_date(value)) {
    // A day past its month's end (Feb 30) names another date: the time, not the text, round-trips.
    const std::string printed = http::http_date(*date);
    if (http::parse_http_date(printed) != date) __builtin_trap();
  }
  const auto decoded = http::percent_decode(http::percent_encode(value));
  check(value.find('\0') != std::string_view::npos || (decoded && *decoded == value));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t at = 0;
  const auto next_line = [&](std::size_t cap) {
    const auto end = input.find('\n', at);
    const std::size_t length = std::min(end == std::string_view::npos ? input.size() - at : end + 1 - at, cap);
    const std::string_view line = input.substr(at, length);
    at += length;
    return line;
  };
  http::Request request;
  const std::string_view first = next_line(http::max_request_line);
  if (http::parse_request_line(first, request) == 0) {
    check(!request.method.empty() && !request.target.empty());
    check_path(request.target);
  }
  std::size_t bytes = 0;
  while (at < input.size() && request.headers.size() < http::max_headers && bytes < http::max_header_bytes) {
    const std::string_view line = next_line(http::max_header_bytes - bytes + 1);
    bytes += line.size();
    if (line == "\r\n" || line == "\n") break;
    (void)http::parse_header_line(line, request);
  }
  for (const auto& [name, value] : request.headers) {
    check(!name.empty());
    check_value(value);
  }
  (void)request.keep_alive();
  check_value(input.substr(0, 512));
  return 0;
}
