// blocking_server: the thread-per-connection baseline for the benchmark. Each connection gets a
// thread that reads into its own 64 KiB buffer with blocking read(), upper-cases the complete
// lines and sends them with blocking send() until all are out.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "reference_support.hpp"

namespace {

constexpr std::size_t buffer_size = 64 * 1024;

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void serve(int fd) {
  const auto buffer = std::make_unique_for_overwrite<char[]>(buffer_size);
  reference::Lines lines;
  for (;;) {
    const ssize_t got = ::read(fd, buffer.get(), buffer_size);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // end of stream or a reset
    const auto n = static_cast<std::size_t>(got);
    char* const data = buffer.get();
    const std::string_view reply = lines.take(data, n);
    if (reply.empty()) continue;
    if (!send_all(fd, reply)) break;
    lines.sent();
  }
  ::close(fd);
}

[[noreturn]] void fail(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

}  // namespace

int main(int argc, char** argv) try {
  const auto options = reference::parse_options(argc, argv, "blocking_server");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(options.port);
  if (inet_pton(AF_INET, options.host.c_str(), &address.sin_addr) != 1) {
    fmt::print(stderr, "blocking_server: --host must be an IPv4 address, got '{}'\n", options.host);
    return 2;
  }
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) fail("socket");
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) fail("bind");
  if (::listen(listener, SOMAXCONN) != 0) fail("listen");
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  fmt::print("blocking_server listening on {}:{}\n", options.host, ntohs(address.sin_port));
  std::fflush(stdout);
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors or threads, most likely: give connections a moment to close.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    try {
      std::thread(serve, fd).detach();
    } catch (const std::system_error&) {
      ::close(fd);  // no thread to be had for it
    }
  }
} catch (const std::exception& e) {
  fmt::print(stderr, "blocking_server: {}\n", e.what());
  return 1;
}
