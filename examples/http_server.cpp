// http_server: serves a directory over HTTP/1.1, as `python3 -m http.server` does.
//   build/examples/http_server --directory docs &   curl http://127.0.0.1:8080/
// GET and HEAD; a listing for a directory without index.html; keep-alive and pipelining;
// Range (206, 416); ETag and Last-Modified answered with 304; gzip for text files when the
// client accepts it; TLS with --tls-cert and --tls-key. Refused: paths out of the directory
// (.., escaped or not, and symbolic links that lead out: 403), request lines over 8 KiB (414),
// headers over 32 KiB or 100 lines (431). With --log-level info, a line per request.
// --concurrency threading (the default), pool, forking, or async (coroutines on event loops).
#include <socketserver/async.hpp>
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
#include <utility>
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

// Reads a request a line at a time, whichever handler does the reading: feed() each line
// (nullopt at the end of the stream) while it answers `more`.
class RequestReader {
 public:
  enum Step { more, complete, refused, gone };

  http::Request request;
  std::string request_line;
  int status = 0;                 // the refusal's status
  std::uint64_t body_length = 0;  // a complete request's body, to read and drop

  // How much the next readline() may take: one byte past a cap tells a line that is too long.
  std::size_t limit() const {
    return in_headers_ ? http::max_header_bytes - header_bytes_ + 1 : http::max_request_line;
  }
  // Whether the request line has come: the request has begun.
  bool begun() const { return in_headers_; }

  Step feed(std::optional<std::string_view> line) {
    if (!in_headers_) {
      if (!line) return gone;
      if (*line == "\r\n" || *line == "\n") return more;  // blank lines before a request are allowed
      in_headers_ = true;
      request_line = std::string(http::trim(*line));
      if (line->back() != '\n') return refuse(414);
      const int parsed = http::parse_request_line(*line, request);
      return parsed != 0 ? refuse(parsed) : more;
    }
    if (!line) return refuse(400);  // the client left mid-request
    header_bytes_ += line->size();
    if (header_bytes_ > http::max_header_bytes || line->back() != '\n') return refuse(431);
    if (*line == "\r\n" || *line == "\n") return body();
    if (request.headers.size() == http::max_headers) return refuse(431);
    if (line->front() == ' ' || line->front() == '\t') return refuse(400);  // obsolete line folding
    return http::parse_header_line(*line, request) ? more : refuse(400);
  }

 private:
  Step refuse(int refusal) {
    status = refusal;
    return refused;
  }
  // No request bodies are taken here: a small one is dropped, a chunked one refused.
  Step body() {
    if (request.header("transfer-encoding")) return refuse(501);
    if (const auto length = request.header("content-length")) {
      const auto n = http::parse_number(*length);
      if (!n) return refuse(400);
      if (*n > max_body) return refuse(413);
      body_length = *n;
    }
    return complete;
  }

  bool in_headers_ = false;
  std::size_t header_bytes_ = 0;
};

// One answer, decided before a byte of it goes out: the head, then the body from memory or a
// range of an open file (the handler writes it in chunks).
struct Response {
  int status = 0;
  std::string head;  // the status line and headers, with the blank line
  std::string body;
  int file = -1;  // owned
  std::uint64_t first = 0;
  std::uint64_t length = 0;
  bool close = false;   // the connection closes after it
  bool linger = false;  // ... and the request was not read whole: read what follows, and drop it
  Response() = default;
  Response(const Response&) = delete;
  Response& operator=(const Response&) = delete;
  ~Response() {
    if (file >= 0) ::close(file);
  }
};

// Python's SimpleHTTPRequestHandler's decisions, apart from the I/O: which answer a request
// gets. Runs on the handler's thread or loop; touches only the file system.
class Responder {
 public:
  // The answer to what `reader` read (complete or refused) in `out`.
  void answer(const RequestReader& reader, Response& out) {
    request_ = &reader.request;
    out_ = &out;
    if (reader.status != 0) return error(reader.status);
    if (request_->method != "GET" && request_->method != "HEAD") return error(501);
    const auto path = http::target_path(request_->target);
    if (!path) {  // malformed (400), or a way out of the directory (403)
      const std::string_view target =
          std::string_view(request_->target).substr(0, request_->target.find_first_of("?#"));
      return error(target.starts_with('/') && http::percent_decode(target) ? 403 : 400);
    }
    const std::string& relative = path->relative.empty() ? std::string(".") : path->relative;
    File file;
    if (!file.open(relative)) return error(file_error());
    if (S_ISDIR(file.info.st_mode)) {
      if (!path->trailing_slash) return redirect_to_directory();
      File index;
      if (index.open(relative + "/index.html") && S_ISREG(index.info.st_mode)) return send_file(index, "index.html");
      return send_listing(file, *path);
    }
    if (path->trailing_slash) return error(404);
    send_file(file, relative);
  }

 private:
  // After a failed File::open(): ENOENT and ENOTDIR are not there; EXDEV (a symbolic link out
  // of the directory, or an absolute one), ELOOP, EACCES and the rest are forbidden.
  static int file_error() { return errno == ENOENT || errno == ENOTDIR ? 404 : 403; }

  // The answers to a request that was not read whole: the connection closes after them.
  static bool closes_unread(int status) {
    return status == 400 || status == 413 || status == 414 || status == 431 || status == 501 || status == 505;
  }

  // `name` gives the MIME type.
  void send_file(File& file, std::string_view name) {
    if (!S_ISREG(file.info.st_mode)) return error(403);  // a FIFO, a device, a socket
    const auto size = static_cast<std::uint64_t>(file.info.st_size);
    const std::string_view type = content_type(name);
    const bool gzip = compressible(type) && size >= gzip_threshold && size <= gzip_cap &&
                      http::accepts_gzip(request_->header("accept-encoding").value_or(""));
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
    if (const auto header = request_->header("range"); header && !gzip && range_applies(etag, modified))
      range = http::parse_range(*header, size);
    headers += "Accept-Ranges: bytes\r\n";
    if (range.kind == http::Range::unsatisfiable) {
      return error(416, fmt::format("Content-Range: bytes */{}\r\n", size));
    }
    if (gzip) {
      std::string body = socketserver::compress(read_all(file, size), socketserver::Compression::gzip);
      send_head(200, headers + "Content-Encoding: gzip\r\n", body.size());
      out_->body = std::move(body);
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
    out_->file = std::exchange(file.fd, -1);
    out_->first = first;
    out_->length = length;
  }

  // If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
  bool not_modified(std::string_view etag, std::time_t modified) const {
    if (const auto tags = request_->header("if-none-match")) {
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
    if (const auto since = request_->header("if-modified-since")) {
      const auto date = http::parse_http_date(*since);
      return date && modified <= *date;
    }
    return false;
  }

  // If-Range: the range only while the file is the one the client has part of.
  bool range_applies(std::string_view etag, std::time_t modified) const {
    const auto condition = request_->header("if-range");
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
    out_->body = std::move(body);
  }

  void redirect_to_directory() {
    const auto query = request_->target.find_first_of("?#");
    std::string location = request_->target.substr(0, query) + "/";
    if (query != std::string::npos) location += request_->target.substr(query);
    send_head(301, fmt::format("Location: {}\r\n", location), 0);
  }

  void error(int status, const std::string& headers = {}) {
    std::string body =
        fmt::format("<!DOCTYPE HTML>\n<html><body><h1>{} {}</h1></body></html>\n", status, reason(status));
    send_head(status, "Content-Type: text/html; charset=utf-8\r\n" + headers, body.size());
    out_->body = std::move(body);
  }

  // The head; a HEAD request's answer then drops its body, whatever it was to be.
  void send_head(int status, const std::string& headers, std::optional<std::uint64_t> length = std::nullopt) {
    out_->status = status;
    out_->linger = closes_unread(status);
    out_->close = out_->linger || !request_->keep_alive();
    std::string& head = out_->head;
    head =
        fmt::format("HTTP/1.1 {} {}\r\nServer: socketserver-http\r\nDate: {}\r\n", status, reason(status), date_now());
    head += headers;
    if (length) head += fmt::format("Content-Length: {}\r\n", *length);
    if (out_->close) head += "Connection: close\r\n";
    head += "\r\n";
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

  const http::Request* request_ = nullptr;
  Response* out_ = nullptr;
};

// After a request, with --log-level info: its line.
void log_request(socketserver::BaseServer& server, const socketserver::Address& client, const RequestReader& reader,
                 const Response& response, std::uint64_t body_bytes) {
  if (server.logger.enabled(socketserver::LogLevel::info))
    server.logger.log(socketserver::LogLevel::info, socketserver::LogCategory::access, "{} \"{}\" {} {}", client,
                      std::string_view(reader.request_line).substr(0, 200), response.status, body_bytes);
}

// The handlers write the file's bytes [first, first + length) in chunks of this size, which
// wfile writes straight through.
constexpr std::size_t file_chunk = std::size_t{256} * 1024;

// The next chunk of a file response into `chunk`; the bytes read. A file that shrank under us
// throws: the client sees a short body and the connection close.
std::size_t read_chunk(Response& response, std::string& chunk) {
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(response.length, file_chunk));
  chunk.resize(want);
  const ssize_t n = ::pread(response.file, chunk.data(), want, static_cast<off_t>(response.first));
  if (n <= 0) throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "read");
  response.first += static_cast<std::uint64_t>(n);
  response.length -= static_cast<std::uint64_t>(n);
  return static_cast<std::size_t>(n);
}

// Python's BaseHTTPRequestHandler with SimpleHTTPRequestHandler: requests one after the other,
// for as long as the client keeps the connection. --concurrency threading, pool or forking.
class HttpHandler : public socketserver::StreamRequestHandler {
 public:
  void handle() override {
    while (serve_one()) {
    }
  }

 private:
  // Reads one request and answers it; false when the connection is to close.
  bool serve_one() {
    RequestReader reader;
    auto step = RequestReader::more;
    while (step == RequestReader::more) {
      const bool begun = reader.begun();
      step = reader.feed(rfile.readline(reader.limit()));
      // From the request line on, waits count against read_timeout and the drain waits.
      if (!begun && reader.begun()) rfile.begin_request();
    }
    if (step == RequestReader::gone) return false;
    if (reader.body_length > 0) rfile.read(reader.body_length);
    Response response;
    Responder().answer(reader, response);
    wfile.write(response.head);
    const bool head = reader.request.method == "HEAD";
    const std::uint64_t body_bytes = head ? 0 : response.body.size() + response.length;
    if (!head) {
      wfile.write(response.body);
      std::string chunk;
      while (response.length > 0) {
        const std::size_t n = read_chunk(response, chunk);  // first: it resizes chunk
        wfile.write(std::string_view(chunk.data(), n));
      }
    }
    if (response.linger) linger();
    rfile.end_request();
    log_request(*server, client_address, reader, response, body_bytes);
    return !response.close;
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
};

// The same on an event loop (--concurrency async): co_await where HttpHandler blocks. Files are
// read on the loop's thread, as nginx reads them on its worker's: from the page cache that is
// quick, from a cold disk it holds the loop's other connections up.
class AsyncHttpHandler : public socketserver::AsyncStreamRequestHandler {
 public:
  asio::awaitable<void> handle() override {
    // Not `while (co_await serve_one()) {}`: GCC 12 compiled that to an illegal instruction.
    for (;;) {
      const bool keep = co_await serve_one();
      if (!keep) break;
    }
  }

 private:
  asio::awaitable<bool> serve_one() {
    RequestReader reader;
    auto step = RequestReader::more;
    while (step == RequestReader::more) {
      const bool begun = reader.begun();
      step = reader.feed(co_await rfile.readline(reader.limit()));
      if (!begun && reader.begun()) rfile.begin_request();
    }
    if (step == RequestReader::gone) co_return false;
    if (reader.body_length > 0) co_await rfile.read(reader.body_length);
    Response response;
    Responder().answer(reader, response);
    co_await wfile.write(response.head);
    const bool head = reader.request.method == "HEAD";
    const std::uint64_t body_bytes = head ? 0 : response.body.size() + response.length;
    if (!head) {
      co_await wfile.write(response.body);
      std::string chunk;
      while (response.length > 0) {
        const std::size_t n = read_chunk(response, chunk);
        co_await wfile.write(std::string_view(chunk.data(), n));
      }
    }
    if (response.linger) co_await linger();
    rfile.end_request();
    log_request(*server, client_address, reader, response, body_bytes);
    co_return !response.close;
  }

  // HttpHandler::linger(), but the client closes first: the answer said Connection: close.
  asio::awaitable<void> linger() {
    co_await wfile.flush();
    try {
      co_await rfile.read(std::size_t{1} << 20);
    } catch (const std::system_error&) {
    }
  }
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
    case examples::Concurrency::async: {
      socketserver::AsyncTCPServer<AsyncHttpHandler> server(address);
      if (options.threads > 0) server.threads = options.threads;
      return examples::serve(server, options, "http_server");
    }
    case examples::Concurrency::plain:
      break;
  }
  // One connection at a time: a browser's keep-alive connection would hold every other out.
  fmt::print(stderr, "http_server: --concurrency must be threading, pool, forking or async\n");
  return 2;
} catch (const std::exception& e) {
  fmt::print(stderr, "http_server: {}\n", e.what());
  return 1;
}
