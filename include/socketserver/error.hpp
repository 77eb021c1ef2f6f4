#ifndef SOCKETSERVER_ERROR_HPP
#define SOCKETSERVER_ERROR_HPP

#include <string>
#include <system_error>
#include <type_traits>

namespace socketserver {

/// Conditions the library itself reports, thrown as std::system_error.
///
/// Socket failures keep their errno (std::system_category); a read that waits longer than the
/// stream's timeout throws std::errc::timed_out, like Python's socket.timeout.
enum class errc {
  /// A line grew past the reader's max_line before its newline arrived.
  line_too_long = 1,
};

namespace detail {
class ErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "socketserver"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::line_too_long:
        return "line too long";
    }
    return "unknown socketserver error";
  }
};
}  // namespace detail

/// The category of socketserver::errc values.
inline const std::error_category& error_category() noexcept {
  static const detail::ErrorCategory category;
  return category;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace socketserver

template <>
struct std::is_error_code_enum<socketserver::errc> : std::true_type {};

#endif  // SOCKETSERVER_ERROR_HPP
