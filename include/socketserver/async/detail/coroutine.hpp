#ifndef SOCKETSERVER_ASYNC_DETAIL_COROUTINE_HPP
#define SOCKETSERVER_ASYNC_DETAIL_COROUTINE_HPP

// asio 1.22 turns on its C++20 coroutine support (asio::awaitable) for GCC only; for Clang it
// looks for the old Coroutines TS. Clang 14 and later have C++20 coroutines: tell asio so.
// Include this before any asio coroutine header.
#if defined(__clang__) && !defined(ASIO_HAS_CO_AWAIT) && defined(__cpp_impl_coroutine) && \
    __cpp_impl_coroutine >= 201902L && __has_include(<coroutine>)
#define ASIO_HAS_CO_AWAIT 1
#endif

#endif  // SOCKETSERVER_ASYNC_DETAIL_COROUTINE_HPP
