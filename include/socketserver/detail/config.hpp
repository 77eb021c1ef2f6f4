#ifndef SOCKETSERVER_DETAIL_CONFIG_HPP
#define SOCKETSERVER_DETAIL_CONFIG_HPP

// How the library is compiled: header-only (the default), or separately, as asio's
// ASIO_SEPARATE_COMPILATION and fmt's compiled build.
//
// Header-only, every translation unit that includes a header compiles its definitions, inline.
// With SOCKETSERVER_SEPARATE_COMPILATION defined in every translation unit (CMake: the option
// SOCKETSERVER_SEPARATE_COMPILATION and the target socketserver::compiled, which defines it),
// the headers only declare their non-template functions, and src/socketserver.cpp, built once,
// defines them; it also holds the instantiations that the headers declare extern (the servers'
// sockets for each protocol, the fmt formatter of Address). The two modes must not be mixed in
// one program.
//
// A header keeps its non-template definitions at its end, outside its classes, in a block
// compiled only where SOCKETSERVER_DEFINITIONS is 1, each definition marked SOCKETSERVER_DECL:
//
//   #if SOCKETSERVER_DEFINITIONS
//   SOCKETSERVER_DECL void BaseServer::shutdown() { ... }
//   #endif
//
// The includes that only the definitions need open that block, so that a separately compiled
// translation unit does not parse them either.
//
// Coroutines, and what returns an awaitable wait, stay inline in every mode: how a coroutine
// waits depends on SOCKETSERVER_PORTABLE_COROUTINES, which each translation unit may choose
// (async/detail/awaitable_thread.hpp), so the library compiles none of that.

#if defined(SOCKETSERVER_SEPARATE_COMPILATION)
// src/socketserver.cpp defines SOCKETSERVER_SOURCE before it includes the headers.
#if defined(SOCKETSERVER_SOURCE)
#define SOCKETSERVER_DEFINITIONS 1
#else
#define SOCKETSERVER_DEFINITIONS 0
#endif
#define SOCKETSERVER_DECL
#else
#define SOCKETSERVER_DEFINITIONS 1
#define SOCKETSERVER_DECL inline
#endif

#endif  // SOCKETSERVER_DETAIL_CONFIG_HPP
