#ifndef SOCKETSERVER_ASYNC_FRAMING_HPP
#define SOCKETSERVER_ASYNC_FRAMING_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <optional>
#include <string_view>
#include <system_error>

#include <asio/awaitable.hpp>

#include <socketserver/async/buffered_reader.hpp>
#include <socketserver/async/buffered_writer.hpp>
#include <socketserver/error.hpp>
#include <socketserver/io/framing.hpp>

namespace socketserver {

/// read_frame() for coroutine handlers: the body is a view valid until the next call on the
/// reader. Same results and errors as the blocking one.
inline asio::awaitable<std::optional<std::string_view>> read_frame(AsyncBufferedReader& reader,
                                                                   const LengthPrefix& prefix) {
  detail::check_length_size(prefix);
  const std::string_view field = co_await reader.read(prefix.length_size);
  if (field.empty()) co_return std::nullopt;
  if (field.size() < prefix.length_size) throw std::system_error(errc::truncated_frame, "read_frame");
  const std::size_t size = detail::body_size(prefix, field);  // before the next read ends the view
  const std::string_view body = co_await reader.read(size);
  if (body.size() < size) throw std::system_error(errc::truncated_frame, "read_frame");
  co_return body;
}

/// write_frame() for coroutine handlers; `body` must stay valid until it completes.
inline asio::awaitable<void> write_frame(AsyncBufferedWriter& writer, const LengthPrefix& prefix,
                                         std::string_view body) {
  char field[8];
  detail::encode_length(prefix, body.size(), field);
  co_await writer.write({field, prefix.length_size});
  co_await writer.write(body);
}

}  // namespace socketserver

#endif  // SOCKETSERVER_ASYNC_FRAMING_HPP
