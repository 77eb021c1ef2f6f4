// What the two reference servers share: the command line and the ASCII upper-casing.
#ifndef SOCKETSERVER_BENCH_REFERENCE_SUPPORT_HPP
#define SOCKETSERVER_BENCH_REFERENCE_SUPPORT_HPP

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

namespace reference {

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
};

// --host HOST (an IPv4 address, default 127.0.0.1) and --port PORT (default 0: a free one).
inline Options parse_options(int argc, char** argv, std::string_view name) {
  Options options;
  const auto usage = [&](std::FILE* out, int status) {
    fmt::print(out, "usage: {} [--host 127.0.0.1] [--port PORT]\n\nEchoes every line back in upper case.\n", name);
    std::exit(status);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(stdout, 0);
    if (i + 1 >= argc || (arg != "--host" && arg != "--port")) {
      fmt::print(stderr, "{}: unknown or incomplete option '{}'\n", name, arg);
      usage(stderr, 2);
    }
    const std::string_view value = argv[++i];
    if (arg == "--host") {
      options.host = value;
      continue;
    }
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), options.port);
    if (ec != std::errc() || end != value.data() + value.size()) {
      fmt::print(stderr, "{}: invalid port '{}'\n", name, value);
      usage(stderr, 2);
    }
  }
  return options;
}

// ASCII only, as the protocol says: bytes outside 'a'..'z' pass unchanged, whatever the locale.
// Every byte is stored, changed or not: a conditional store would keep the compiler from
// vectorizing the loop, and a 16 KiB line would cost several times more.
inline void upper_ascii(char* data, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    const char c = data[i];
    data[i] = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
}

// The line handling both reference servers share. take() upper-cases what one read brought and
// returns the reply for its complete lines, behind the unfinished line kept from earlier reads;
// empty when no line is complete yet. Once that reply is sent, sent() keeps the new unfinished tail.
class Lines {
 public:
  std::string_view take(char* data, std::size_t n) {
    upper_ascii(data, n);
    const void* const newline = ::memrchr(data, '\n', n);
    if (newline == nullptr) {
      pending_.append(data, n);
      tail_ = {};
      return {};
    }
    const auto complete = static_cast<std::size_t>(static_cast<const char*>(newline) - data) + 1;
    tail_ = std::string_view(data + complete, n - complete);
    if (pending_.empty()) return {data, complete};
    pending_.append(data, complete);
    return pending_;
  }

  void sent() {
    if (tail_.data() != nullptr) pending_.assign(tail_);
    tail_ = {};
  }

 private:
  std::string pending_;  // the upper-cased start of a line whose newline has not arrived
  std::string_view tail_;
};

}  // namespace reference

#endif  // SOCKETSERVER_BENCH_REFERENCE_SUPPORT_HPP
