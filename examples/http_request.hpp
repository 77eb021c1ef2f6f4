// The HTTP/1.1 request side of the http_server example: the request line, header lines, the
// target's path (percent-decoded, made relative, never out of the root), Range,
// Accept-Encoding and HTTP dates. Pure functions of the bytes a client sent: no I/O, so that
// fuzz/fuzz_http_request.cpp runs every one of them on arbitrary input.
#ifndef SOCKETSERVER_EXAMPLES_HTTP_REQUEST_HPP
#define SOCKETSERVER_EXAMPLES_HTTP_REQUEST_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace http {

// The caps on what a request may take before the server answers 414 or 431 and closes.
inline constexpr std::size_t max_request_line = std::size_t{8} * 1024;
inline constexpr std::size_t max_header_bytes = std::size_t{32} * 1024;  // all header lines together
inline constexpr std::size_t max_headers = 100;

struct Request {
  std::string method;
  std::string target;
  int minor_version = 1;                                     // HTTP/1.x
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed

  // The first header named `name` (lower case), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const {
    for (const auto& [key, value] : headers)
      if (key == name) return std::string_view(value);
    return std::nullopt;
  }
  // Whether the connection stays open after the response (HTTP/1.1's default, 1.0's option).
  bool keep_alive() const {
    const auto connection = header("connection");
    const auto has = [&](std::string_view token) {
      return connection && lower(*connection).find(token) != std::string::npos;
    };
    return minor_version >= 1 ? !has("close") : has("keep-alive");
  }

  static std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    return out;
  }
};

inline std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n'))
    text.remove_suffix(1);
  return text;
}

inline bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// "GET /path HTTP/1.1": the status to answer when it is not a request line, 0 when it is.
inline int parse_request_line(std::string_view line, Request& request) {
  line = trim(line);
  const auto first = line.find(' ');
  const auto last = line.rfind(' ');
  if (first == std::string_view::npos || first == last) return 400;
  const std::string_view method = line.substr(0, first);
  const std::string_view target = line.substr(first + 1, last - first - 1);
  const std::string_view version = line.substr(last + 1);
  if (method.empty()) return 400;
  for (const char c : method)
    if (!is_token_char(c)) return 400;
  if (target.empty() || target.find(' ') != std::string_view::npos) return 400;
  for (const char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return 400;
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return 400;
  if (version[5] != '1') return 505;
  request.method = method;
  request.target = target;
  request.minor_version = version[7] - '0';
  return 0;
}

// "Name: value": false when it is not a header line (a space before the colon is not allowed:
// it is how requests are smuggled past proxies).
inline bool parse_header_line(std::string_view line, Request& request) {
  line = trim(line);
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view name = line.substr(0, colon);
  for (const char c : name)
    if (!is_token_char(c)) return false;
  const std::string_view value = trim(line.substr(colon + 1));
  for (const char c : value)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return false;
  request.headers.emplace_back(Request::lower(name), std::string(value));
  return true;
}

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoded; nullopt for a malformed escape or a NUL, escaped or not.
inline std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\0') return std::nullopt;
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_digit(text[i + 1]);
    const int low = hex_digit(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    const char c = static_cast<char>(high * 16 + low);
    if (c == '\0') return std::nullopt;
    out += c;
    i += 2;
  }
  return out;
}

// Bytes a URL path may carry as they are; the rest is %XX-encoded (for the listing's links).
inline std::string percent_encode(std::string_view text) {
  static constexpr std::string_view digits = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        std::string_view("-._~/").find(c) != std::string_view::npos) {
      out += c;
    } else {
      out += '%';
      out += digits[u >> 4U];
      out += digits[u & 15U];
    }
  }
  return out;
}

// The file a target names, relative to the served directory ("" for the directory itself), and
// whether it ends with '/'. nullopt refuses it: not an origin-form path ("/..."), a malformed
// escape, a NUL, a backslash, or a ".." segment, escaped or not. Symbolic links that lead out of
// the directory are the server's to refuse: they need the file system.
struct Path {
  std::string relative;
  bool trailing_slash = false;
};
inline std::optional<Path> target_path(std::string_view target) {
  if (const auto end = target.find_first_of("?#"); end != std::string_view::npos) target = target.substr(0, end);
  if (target.empty() || target.front() != '/') return std::nullopt;
  const auto decoded = percent_decode(target);
  if (!decoded || decoded->find('\\') != std::string::npos) return std::nullopt;
  Path path;
  path.trailing_slash = decoded->back() == '/';
  std::string_view rest = *decoded;
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") return std::nullopt;
    if (!path.relative.empty()) path.relative += '/';
    path.relative += segment;
  }
  return path;
}

// A Range header against a file of `size` bytes. Only one range is served (several are allowed
// to be answered with the whole file).
struct Range {
  enum Kind { none, satisfiable, unsatisfiable } kind = none;
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};
inline std::optional<std::uint64_t> parse_number(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}
inline Range parse_range(std::string_view header, std::uint64_t size) {
  header = trim(header);
  if (header.substr(0, 6) != "bytes=") return {};
  const std::string_view spec = trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return {};  // several ranges: the whole file
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  const auto from = trim(spec.substr(0, dash));
  const auto to = trim(spec.substr(dash + 1));
  Range range;
  if (from.empty()) {  // the last N bytes
    const auto suffix = parse_number(to);
    if (!suffix) return {};
    if (*suffix == 0 || size == 0) return {Range::unsatisfiable};
    range.first = *suffix >= size ? 0 : size - *suffix;
    range.last = size - 1;
    range.kind = Range::satisfiable;
    return range;
  }
  const auto first = parse_number(from);
  if (!first) return {};
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!to.empty()) {
    const auto given = parse_number(to);
    if (!given || *given < *first) return {};  // invalid: ignored
    last = std::min(last, *given);
  }
  if (*first >= size) return {Range::unsatisfiable};
  range.first = *first;
  range.last = last;
  range.kind = Range::satisfiable;
  return range;
}

// Whether Accept-Encoding lets the response be gzip-encoded ("gzip", "*", not with q=0).
inline bool accepts_gzip(std::string_view header) {
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const auto semicolon = item.find(';');
    const std::string coding = Request::lower(trim(item.substr(0, semicolon)));
    if (coding != "gzip" && coding != "x-gzip" && coding != "*") continue;
    if (semicolon == std::string_view::npos) return true;
    const std::string parameters = Request::lower(item.substr(semicolon + 1));
    const auto q = parameters.find("q=");
    if (q == std::string::npos) return true;
    const std::string_view value = trim(std::string_view(parameters).substr(q + 2));
    // q=0, q=0.0, q=0.000: refused; any other digit makes it acceptable.
    return value.find_first_of("123456789") != std::string_view::npos &&
           value.find_first_of("123456789") < value.find_first_not_of("0123456789.");
  }
  return false;
}

// An HTTP date (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT") for a time in UTC.
inline std::string http_date(std::time_t time) {
  std::tm tm{};
  gmtime_r(&time, &tm);
  char out[40];
  const std::size_t n = std::strftime(out, sizeof out, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return {out, n};
}

// The time an IMF-fixdate names; nullopt for any other form (the obsolete ones included: a
// conditional request with one is answered in full, which is always correct).
inline std::optional<std::time_t> parse_http_date(std::string_view text) {
  text = trim(text);
  static constexpr std::string_view months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (text.size() != 29 || text[3] != ',' || text[4] != ' ' || text[7] != ' ' || text[11] != ' ' || text[16] != ' ' ||
      text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT")
    return std::nullopt;
  const auto number = [&](std::size_t at, std::size_t length) { return parse_number(text.substr(at, length)); };
  const auto day = number(5, 2);
  const auto year = number(12, 4);
  const auto hour = number(17, 2);
  const auto minute = number(20, 2);
  const auto second = number(23, 2);
  const auto month = months.find(text.substr(8, 3));
  if (!day || !year || !hour || !minute || !second || month == std::string_view::npos || month % 3 != 0 || *day < 1 ||
      *day > 31 || *year < 1970 || *year > 9999 || *hour > 23 || *minute > 59 || *second > 59)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = static_cast<int>(*year) - 1900;
  tm.tm_mon = static_cast<int>(month / 3);
  tm.tm_mday = static_cast<int>(*day);
  tm.tm_hour = static_cast<int>(*hour);
  tm.tm_min = static_cast<int>(*minute);
  tm.tm_sec = static_cast<int>(*second);
  return timegm(&tm);
}

}  // namespace http

#endif  // SOCKETSERVER_EXAMPLES_HTTP_REQUEST_HPP
