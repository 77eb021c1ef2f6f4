#ifndef SOCKETSERVER_DETAIL_EXCEPTION_HPP
#define SOCKETSERVER_DETAIL_EXCEPTION_HPP

#include <cxxabi.h>

#include <string>
#include <system_error>

#include <socketserver/detail/config.hpp>

namespace socketserver::detail {

// The code of the exception being handled: its own for a std::system_error, none otherwise.
std::error_code current_error_code() noexcept;

// The message of the exception being handled, for a log line.
std::string current_exception_message();

// Inside a catch block: says on stderr that the error hook threw the exception being handled.
void report_error_hook_failure();

// Every function with a `catch (const abi::__forced_unwind&)` carries no_sanitize("null"):
// thread cancellation has no exception object, GCC binds that reference to null, and
// UndefinedBehaviorSanitizer would abort a cancelled thread instead of letting it unwind. It is
// also noinline: inlined into a caller, the catch would be checked under the caller's rules.

// Calls a user's error hook from inside a catch block. Nothing may escape a worker thread or a
// forked child, so an exception from the hook itself is reported once on stderr and dropped.
template <class Hook>
__attribute__((noinline, no_sanitize("null"))) void call_error_hook(Hook&& hook) {
  try {
    hook();
  } catch (const abi::__forced_unwind&) {
    throw;  // thread cancellation must unwind; swallowing it aborts the process
  } catch (...) {
    report_error_hook_failure();
  }
}

}  // namespace socketserver::detail

#if SOCKETSERVER_DEFINITIONS
#include <cstdio>
#include <exception>

#include <fmt/core.h>

namespace socketserver::detail {

SOCKETSERVER_DECL std::error_code current_error_code() noexcept {
  try {
    throw;
  } catch (const std::system_error& e) {
    return e.code();
  } catch (...) {
    return {};
  }
}

SOCKETSERVER_DECL std::string current_exception_message() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

SOCKETSERVER_DECL void report_error_hook_failure() {
  fmt::print(stderr, "socketserver: handle_error() threw: {}\n", current_exception_message());
}

}  // namespace socketserver::detail
#endif

#endif  // SOCKETSERVER_DETAIL_EXCEPTION_HPP
