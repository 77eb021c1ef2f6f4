#ifndef SOCKETSERVER_IO_DETAIL_IO_ACCESS_HPP
#define SOCKETSERVER_IO_DETAIL_IO_ACCESS_HPP

#include <utility>

namespace socketserver::detail {

// How the library's handlers attach rfile and wfile to a connection (and to the server's record
// of it): their attach() is private, because its arguments are the library's own types.
struct IoAccess {
  template <class Buffered, class... Args>
  static void attach(Buffered& buffered, Args&&... args) noexcept {
    buffered.attach(std::forward<Args>(args)...);
  }
  template <class Writer, class Outbox>
  static void attach_outbox(Writer& writer, Outbox& outbox) noexcept {
    writer.outbox_ = &outbox;
  }
};

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_IO_DETAIL_IO_ACCESS_HPP
