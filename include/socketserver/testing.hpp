#ifndef SOCKETSERVER_TESTING_HPP
#define SOCKETSERVER_TESTING_HPP

// Helpers for testing handlers: in memory (HandlerTest over a MemoryPipe) or against a real
// server on loopback (TestClient). Not part of <socketserver/socketserver.hpp>.

#include <socketserver/testing/client.hpp>
#include <socketserver/testing/handler.hpp>
#include <socketserver/testing/memory_pipe.hpp>

#endif  // SOCKETSERVER_TESTING_HPP
