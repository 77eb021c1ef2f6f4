// http_server: serves a directory over HTTP/1.1, as `python3 -m http.server` does.
//   build/examples/http_server --directory docs &   curl http://127.0.0.1:8080/
// GET and HEAD; a listing for a directory without index.html; keep-alive and pipelining;
// Range (206, 416); ETag and Last-Modified answered with 304; gzip for text files when the
// client accepts it; TLS with --tls-cert and --tls-key. Refused: paths out of the directory
// (.., escaped or not, and symbolic links that lead out: 403), request lines over 8 KiB (414),
// headers over 32 KiB or 100 lines (431). With --log-level info, a line per request.
#include <socketserver/io/compression.hpp>
#include <socketserver/socketserver.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "example_support.hpp"
#include "http_request.hpp"

// What every connection shares: set in main() before the server starts, read-only after.
struct Site {
  int root_fd = -1;  // the served directory, which every path is opened beneath
  std::string cache_control;
};
Site site;

// Files smaller than this are not worth compressing; larger ones than the cap are sent as they
// are (compressing them whole would hold them in memory).
constexpr std::uint64_t gzip_threshold = 1024;
constexpr std::uint64_t gzip_cap = std::uint64_t{8} * 1024 * 1024;
constexpr std::size_t max_body = std::size_t{64} * 1024;  // a GET's body is read and dropped

std::string_view content_type(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> types[] = {
      {".html", "text/html"},      {".htm", "text/html"},         {".css", "text/css"},    {".js", "text/javascript"},
      {".mjs", "text/javascript"}, {".json", "application/json"}, {".txt", "text/plain"},  {".md", "text/markdown"},
      {".xml", "application/xml"}, {".svg", "image/svg+xml"},     {".png", "image/png"},   {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},     {".gif", "image/gif"},         {".webp", "image/webp"}, {".ico", "image/x-icon"},
      {".pdf", "application/pdf"}, {".wasm", "application/wasm"}, {".mp4", "video/mp4"},   {".zip", "application/zip"},
      {".gz", "application/gzip"}, {".csv", "text/csv"},          {".c", "text/plain"},    {".cpp", "text/plain"},
      {".h", "text/plain"},        {".hpp", "text/plain"},        {".py", "text/plain"}};
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || name.find('/', dot) != std::string_view::npos) return "application/octet-stream";
  const std::string extension = http::Request::lower(name.substr(dot));
  for (const auto& [suffix, type] : types)
    if (suffix == extension) return type;
  return "application/octet-stream";
}

// The Date header's value, formatted once a second per thread.
const std::string& date_now() {
  thread_local std::time_t second = 0;
  thread_local std::string text;
  const std::time_t now = std::time(nullptr);
  if (now != second) {
    second = now;
    text = http::http_date(now);
  }
  return text;
}

bool compressible(std::string_view type) {
  return type.starts_with("text/") || type == "application/json" || type == "application/xml" ||
         type == "image/svg+xml";
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Internal Server Error";
  }
}

// A file or directory opened for one response, relative to the served directory; closes it.
struct File {
  int fd = -1;
  struct stat info {};
  File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() {
    if (fd >= 0) ::close(fd);
  }

  // The kernel resolves `relative` beneath the served directory (openat2's RESOLVE_BENEATH): a
  // ".." or a symbolic link that leads out of it, or an absolute link, fails with EXDEV, with
  // no window between a check and the open. O_NONBLOCK: a FIFO would block the open. False,
  // with errno set, on failure.
  bool open(const std::string& relative) {
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    fd = static_cast<int>(::syscall(SYS_openat2, site.root_fd, relative.c_str(), &how, sizeof how));
    return fd >= 0 && ::fstat(fd, &info) == 0;
  }
};

// Python's BaseHTTPRequestHandler and SimpleHTTPRequestHandler in one: a request at a time,
// for as long as the client keeps the connection.
class HttpHandler : public socketserver::StreamRequestHandler {
 public:
  void handle() override {
    while (serve_one()) {
    }
  }

 private:
  // Reads one request and answers it; false when the connection is to close.
  bool serve_one() {
    auto line = rfile.readline(http::max_request_line);
    while (line && (*line == "\r\n" || *line == "\n")) line = rfile.readline(http::max_request_line);
    if (!line) return false;
    rfile.begin_request();  // the rest of the request gets read_timeout, and the drain waits for it
    request_ = {};
    status_ = 0;
    sent_ = 0;
    head_ = false;
    request_line_ = std::string(http::trim(*line));
    bool keep = false;
    if (line->back() != '\n') {
      error(414);
    } else if (const int status = http::parse_request_line(*line, request_); status != 0) {
      error(status);
    } else if (const int status = read_headers(); status != 0) {
      error(status);
    } else {
      keep = respond() && request_.keep_alive();
    }
    if (closes_unread(status_)) linger();
    rfile.end_request();
    if (server->logger.enabled(socketserver::LogLevel::info))
      server->logger.log(socketserver::LogLevel::info, socketserver::LogCategory::access, "{} \"{}\" {} {}",
                         client_address, request_line_.substr(0, 200), status_, sent_);
    return keep;
  }

  // The header lines up to the empty one: 0, or the status to refuse them with.
  int read_headers() {
    std::size_t bytes = 0;
    while (true) {
      auto line = rfile.readline(http::max_header_bytes - bytes + 1);
      if (!line) return 400;  // the client left mid-request
      bytes += line->size();
      if (bytes > http::max_header_bytes || line->back() != '\n') return 431;
      if (*line == "\r\n" || *line == "\n") return 0;
      if (request_.headers.size() == http::max_headers) return 431;
      if (line->front() == ' ' || line->front() == '\t') return 400;  // obsolete line folding
      if (!http::parse_header_line(*line, request_)) return 400;
    }
  }

  // Answers a parsed request; false when the connection must close after it.
  bool respond() {
    if (request_.header("transfer-encoding")) return error(501), false;  // no request bodies here
    if (const auto length = request_.header("content-length")) {
      const auto n = http::parse_number(*length);
      if (!n) return error(400), false;
      if (*n > max_body) return error(413), false;
      rfile.read(static_cast<std::size_t>(*n));
    }
    head_ = request_.method == "HEAD";
    if (request_.method != "GET" && !head_) return error(501), false;
    const auto path = http::target_path(request_.target);
    if (!path) {  // malformed (400), or a way out of the directory (403)
      const std::string_view target = std::string_view(request_.target).substr(0, request_.target.find_first_of("?#"));
      return error(target.starts_with('/') && http::percent_decode(target) ? 403 : 400), true;
    }
    const std::string& relative = path->relative.empty() ? std::string(".") : path->relative;
    File file;
    if (!file.open(relative)) return error(file_error()), true;
    if (S_ISDIR(file.info.st_mode)) {
      if (!path->trailing_slash) return redirect_to_directory(), true;
      File index;
      if (index.open(relative + "/index.html") && S_ISREG(index.info.st_mode))
        return send_file(index, "index.html"), true;
      return send_listing(file, *path), true;
    }
    if (path->trailing_slash) return error(404), true;
    return send_file(file, relative), true;
  }

  // After a failed File::open(): ENOENT and ENOTDIR are not there; EXDEV (a symbolic link out
  // of the directory, or an absolute one), ELOOP, EACCES and the rest are forbidden.
  static int file_error() { return errno == ENOENT || errno == ENOTDIR ? 404 : 403; }

  // The answers to a request that was not read whole: the connection closes after them.
  static bool closes_unread(int status) {
    return status == 400 || status == 413 || status == 414 || status == 431 || status == 501 || status == 505;
  }

  // Closing with unread bytes from the client resets the connection, and the reset may destroy
  // the answer before the client reads it. So: the answer, a FIN, then what the client still
  // sends is read and dropped until it closes (at most 1 MiB, within read_timeout: inside the
  // request). nginx's lingering close.
  void linger() {
    wfile.flush();
    request->shutdown_write();
    try {
      rfile.read(std::size_t{1} << 20);
    } catch (const std::system_error&) {  // a timeout or a reset: the connection ends either way
    }
  }

  // `name` gives the MIME type.
  void send_file(const File& file, std::string_view name) {
    if (!S_ISREG(file.info.st_mode)) return error(403);  // a FIFO, a device, a socket
    const auto size = static_cast<std::uint64_t>(file.info.st_size);
    const std::string_view type = content_type(name);
    const bool gzip = compressible(type) && size >= gzip_threshold && size <= gzip_cap &&
                      http::accepts_gzip(request_.header("accept-encoding").value_or(""));
    const std::string etag = fmt::format("\"{:x}-{:x}{}\"", size,
                                         static_cast<std::uint64_t>(file.info.st_mtim.tv_sec) * 1000000000U +
                                             static_cast<std::uint64_t>(file.info.st_mtim.tv_nsec),
                                         gzip ? "-gzip" : "");
    const std::time_t modified = file.info.st_mtim.tv_sec;
    std::string headers =
        fmt::format("Content-Type: {}\r\nETag: {}\r\nLast-Modified: {}\r\n", type, etag, http::http_date(modified));
    if (!site.cache_control.empty()) headers += fmt::format("Cache-Control: {}\r\n", site.cache_control);
    if (compressible(type)) headers += "Vary: Accept-Encoding\r\n";
    if (not_modified(etag, modified)) return send_head(304, headers);
    http::Range range;
    if (const auto header = request_.header("range"); header && !gzip && range_applies(etag, modified))
      range = http::parse_range(*header, size);
    headers += "Accept-Ranges: bytes\r\n";
    if (range.kind == http::Range::unsatisfiable) {
      return error(416, fmt::format("Content-Range: bytes */{}\r\n", size));
    }
    if (gzip) {
      const std::string body = socketserver::compress(read_all(file, size), socketserver::Compression::gzip);
      send_head(200, headers + "Content-Encoding: gzip\r\n", body.size());
      if (!head_) send_body(body);
      return;
    }
    std::uint64_t first = 0;
    std::uint64_t length = size;
    int status = 200;
    if (range.kind == http::Range::satisfiable) {
      status = 206;
      first = range.first;
      length = range.last - range.first + 1;
      headers += fmt::format("Content-Range: bytes {}-{}/{}\r\n", range.first, range.last, size);
    }
    send_head(status, headers, length);
    if (!head_) send_range(file, first, length);
  }

  // If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
  bool not_modified(std::string_view etag, std::time_t modified) const {
    if (const auto tags = request_.header("if-none-match")) {
      if (http::trim(*tags) == "*") return true;
      std::string_view rest = *tags;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        std::string_view tag = http::trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (tag.starts_with("W/")) tag.remove_prefix(2);  // the weak comparison
        if (tag == etag) return true;
      }
      return false;
    }
    if (const auto since = request_.header("if-modified-since")) {
      const auto date = http::parse_http_date(*since);
      return date && modified <= *date;
    }
    return false;
  }

  // If-Range: the range only while the file is the one the client has part of.
  bool range_applies(std::string_view etag, std::time_t modified) const {
    const auto condition = request_.header("if-range");
    if (!condition) return true;
    if (condition->starts_with('"')) return *condition == etag;
    const auto date = http::parse_http_date(*condition);
    return date && *date == modified;
  }

  void send_listing(const File& directory, const http::Path& path) {
    const int fd = ::dup(directory.fd);  // closedir() closes its own
    DIR* dir = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (dir == nullptr) {
      if (fd >= 0) ::close(fd);
      return error(403);
    }
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      struct stat info {};
      const bool is_directory =
          entry->d_type == DT_DIR || (entry->d_type == DT_UNKNOWN &&
                                      ::fstatat(directory.fd, entry->d_name, &info, 0) == 0 && S_ISDIR(info.st_mode));
      if (is_directory) name += '/';
      names.push_back(std::move(name));
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    const std::string title =
        html_escape("Directory listing for /" + path.relative + (path.relative.empty() ? "" : "/"));
    std::string body = fmt::format(
        "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}</title>\n</head>\n"
        "<body>\n<h1>{0}</h1>\n<hr>\n<ul>\n",
        title);
    for (const std::string& name : names)
      body += fmt::format("<li><a href=\"{}\">{}</a></li>\n", http::percent_encode(name), html_escape(name));
    body += "</ul>\n<hr>\n</body>\n</html>\n";
    send_head(200, "Content-Type: text/html; charset=utf-8\r\n", body.size());
    if (!head_) send_body(body);
  }

  void redirect_to_directory() {
    const auto query = request_.target.find_first_of("?#");
    std::string location = request_.target.substr(0, query) + "/";
    if (query != std::string::npos) location += request_.target.substr(query);
    send_head(301, fmt::format("Location: {}\r\n", location), 0);
  }

  // An error page. After one that means the request was not read whole the caller returns
  // false, and send_head() says the connection closes.
  void error(int status, const std::string& headers = {}) {
    const std::string body =
        fmt::format("<!DOCTYPE HTML>\n<html><body><h1>{} {}</h1></body></html>\n", status, reason(status));
    send_head(status, "Content-Type: text/html; charset=utf-8\r\n" + headers, body.size());
    if (!head_) send_body(body);
  }

  void send_head(int status, const std::string& headers, std::optional<std::uint64_t> length = std::nullopt) {
    status_ = status;
    std::string head =
        fmt::format("HTTP/1.1 {} {}\r\nServer: socketserver-http\r\nDate: {}\r\n", status, reason(status), date_now());
    head += headers;
    if (length) head += fmt::format("Content-Length: {}\r\n", *length);
    if (!request_.keep_alive() || closes_unread(status)) head += "Connection: close\r\n";
    head += "\r\n";
    wfile.write(head);
  }

  void send_body(std::string_view body) {
    wfile.write(body);
    sent_ += body.size();
  }

  static std::string read_all(const File& file, std::uint64_t size) {
    std::string data(size, '\0');
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::pread(file.fd, data.data() + done, data.size() - done, static_cast<off_t>(done));
      if (n <= 0) throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "read");
      done += static_cast<std::size_t>(n);
    }
    return data;
  }

  // The file's bytes [first, first + length), in chunks that wfile writes straight through.
  void send_range(const File& file, std::uint64_t first, std::uint64_t length) {
    std::string chunk(std::min<std::uint64_t>(length, std::size_t{256} * 1024), '\0');
    while (length > 0) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length, chunk.size()));
      const ssize_t n = ::pread(file.fd, chunk.data(), want, static_cast<off_t>(first));
      // A file that shrank under us: the client sees a short body and the connection close.
      if (n <= 0) throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "read");
      send_body(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
      first += static_cast<std::uint64_t>(n);
      length -= static_cast<std::uint64_t>(n);
    }
  }

  http::Request request_;
  std::string request_line_;
  int status_ = 0;
  std::uint64_t sent_ = 0;  // body bytes
  bool head_ = false;
};

int main(int argc, char** argv) try {
  const auto options = examples::parse_options(argc, argv, "Serves a directory over HTTP.", 8080,
                                               examples::with_concurrency | examples::with_directory);
  site.root_fd = ::open(options.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (site.root_fd < 0) throw std::system_error(errno, std::generic_category(), "open " + options.directory);
  File probe;  // openat2() is Linux 5.6's: fail at start on an older kernel, not per request
  if (!probe.open(".")) throw std::system_error(errno, std::generic_category(), "openat2 " + options.directory);
  site.cache_control = options.cache_control;
  const socketserver::Address address(options.host, options.port);
  switch (options.concurrency) {
    case examples::Concurrency::threading: {
      socketserver::ThreadingTCPServer<HttpHandler> server(address);
      return examples::serve(server, options, "http_server");
    }
    case examples::Concurrency::pool: {
      socketserver::ThreadPoolMixIn<socketserver::TCPServer<HttpHandler>> server(address);
      if (options.threads > 0) server.max_workers = options.threads;
      return examples::serve(server, options, "http_server");
    }
    case examples::Concurrency::forking: {
      socketserver::ForkingTCPServer<HttpHandler> server(address);
      if (options.threads > 0) server.max_children = options.threads;
      return examples::serve(server, options, "http_server");
    }
    case examples::Concurrency::plain:
    case examples::Concurrency::async:
      break;
  }
  // plain would serve one keep-alive client at a time; async needs a coroutine handler.
  fmt::print(stderr, "http_server: --concurrency must be threading, pool or forking\n");
  return 2;
} catch (const std::exception& e) {
  fmt::print(stderr, "http_server: {}\n", e.what());
  return 1;
}
