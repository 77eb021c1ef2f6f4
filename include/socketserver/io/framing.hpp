#ifndef SOCKETSERVER_IO_FRAMING_HPP
#define SOCKETSERVER_IO_FRAMING_HPP

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <socketserver/detail/config.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/buffered_writer.hpp>

namespace socketserver {

/// How a length-prefixed frame is laid out: a length field, then a body of that many bytes
/// (give or take length_adjustment). read_frame() and write_frame() take one; for frames ended
/// by a delimiter, use the readers' read_until().
///
/// ```
/// socketserver::LengthPrefix prefix{.length_size = 2, .max_frame = 4096};
/// while (auto body = socketserver::read_frame(rfile, prefix)) socketserver::write_frame(wfile, prefix, *body);
/// ```
struct LengthPrefix {
  /// Bytes in the length field: 1, 2, 4 or 8; any other size throws std::invalid_argument.
  std::size_t length_size = 4;
  /// The order of the length field's bytes (network order, big endian, by default).
  std::endian byte_order = std::endian::big;
  /// Added to the field's value to give the body's size: -length_size for a protocol whose
  /// length counts the length field itself.
  std::int64_t length_adjustment = 0;
  /// The largest body read or written. A peer that announces a larger one gets
  /// std::system_error(errc::frame_too_large) before any of its body is read or allocated.
  std::size_t max_frame = std::size_t{1} << 20;
};

namespace detail {

void check_length_size(const LengthPrefix& prefix);

// The body size a length field announces; throws frame_too_large when it is negative or over
// max_frame.
std::size_t body_size(const LengthPrefix& prefix, std::string_view field);

// Writes the length field for a body of `size` bytes into `field` (length_size bytes); throws
// frame_too_large when the body is over max_frame or its size does not fit the field.
void encode_length(const LengthPrefix& prefix, std::size_t size, char* field);

}  // namespace detail

/// Reads one length-prefixed frame and returns its body (the length field stripped).
/// At a clean end of stream (before a length field), std::nullopt. Throws std::system_error:
/// errc::frame_too_large when the announced body is over prefix.max_frame or negative (nothing
/// of it is read), errc::truncated_frame when the stream ends inside the length field or the
/// body; std::invalid_argument for a bad prefix.length_size.
std::optional<std::string> read_frame(BufferedReader& reader, const LengthPrefix& prefix);

/// Writes the length field for `body`, then `body`. Throws std::system_error(
/// errc::frame_too_large), before writing anything, when the body is over prefix.max_frame or
/// its size does not fit the length field; std::invalid_argument for a bad prefix.length_size.
void write_frame(BufferedWriter& writer, const LengthPrefix& prefix, std::string_view body);

}  // namespace socketserver

#if SOCKETSERVER_DEFINITIONS
#include <limits>
#include <stdexcept>
#include <system_error>

#include <socketserver/error.hpp>

namespace socketserver {

namespace detail {

SOCKETSERVER_DECL void check_length_size(const LengthPrefix& prefix) {
  const std::size_t n = prefix.length_size;
  if (n != 1 && n != 2 && n != 4 && n != 8)
    throw std::invalid_argument("LengthPrefix: length_size must be 1, 2, 4 or 8");
}

SOCKETSERVER_DECL std::size_t body_size(const LengthPrefix& prefix, std::string_view field) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < field.size(); ++i) {
    const std::size_t at = prefix.byte_order == std::endian::big ? i : field.size() - 1 - i;
    value = (value << 8) | static_cast<unsigned char>(field[at]);
  }
  const std::int64_t adjustment = prefix.length_adjustment;
  // |adjustment| as unsigned, without overflowing on the most negative value.
  const std::uint64_t magnitude =
      adjustment < 0 ? static_cast<std::uint64_t>(-(adjustment + 1)) + 1 : static_cast<std::uint64_t>(adjustment);
  bool fits = true;
  if (adjustment < 0) {
    fits = value >= magnitude;
    value -= fits ? magnitude : 0;
  } else {
    fits = value <= std::numeric_limits<std::uint64_t>::max() - magnitude;
    value += fits ? magnitude : 0;
  }
  if (!fits || value > prefix.max_frame) throw std::system_error(errc::frame_too_large, "read_frame");
  return static_cast<std::size_t>(value);
}

SOCKETSERVER_DECL void encode_length(const LengthPrefix& prefix, std::size_t size, char* field) {
  check_length_size(prefix);
  const std::int64_t adjustment = prefix.length_adjustment;
  const std::uint64_t magnitude =
      adjustment < 0 ? static_cast<std::uint64_t>(-(adjustment + 1)) + 1 : static_cast<std::uint64_t>(adjustment);
  std::uint64_t value = size;
  bool fits = size <= prefix.max_frame;
  if (adjustment < 0) {  // the field counts more than the body
    fits = fits && value <= std::numeric_limits<std::uint64_t>::max() - magnitude;
    value += fits ? magnitude : 0;
  } else {
    fits = fits && value >= magnitude;
    value -= fits ? magnitude : 0;
  }
  const std::size_t bits = 8 * prefix.length_size;
  if (bits < 64) fits = fits && (value >> bits) == 0;
  if (!fits) throw std::system_error(errc::frame_too_large, "write_frame");
  for (std::size_t i = 0; i < prefix.length_size; ++i) {
    const std::size_t at = prefix.byte_order == std::endian::big ? prefix.length_size - 1 - i : i;
    field[at] = static_cast<char>(static_cast<unsigned char>(value >> (8 * i)));
  }
}

}  // namespace detail

SOCKETSERVER_DECL std::optional<std::string> read_frame(BufferedReader& reader, const LengthPrefix& prefix) {
  detail::check_length_size(prefix);
  const std::string field = reader.read(prefix.length_size);
  if (field.empty()) return std::nullopt;
  if (field.size() < prefix.length_size) throw std::system_error(errc::truncated_frame, "read_frame");
  const std::size_t size = detail::body_size(prefix, field);
  // read(n) grows its result as the bytes arrive: a peer that announces max_frame and sends
  // less costs no more than it sent.
  std::string body = reader.read(size);
  if (body.size() < size) throw std::system_error(errc::truncated_frame, "read_frame");
  return body;
}

SOCKETSERVER_DECL void write_frame(BufferedWriter& writer, const LengthPrefix& prefix, std::string_view body) {
  char field[8];
  detail::encode_length(prefix, body.size(), field);
  writer.write({field, prefix.length_size});
  writer.write(body);
}

}  // namespace socketserver
#endif

#endif  // SOCKETSERVER_IO_FRAMING_HPP
