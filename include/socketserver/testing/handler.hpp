#ifndef SOCKETSERVER_TESTING_HANDLER_HPP
#define SOCKETSERVER_TESTING_HANDLER_HPP

#include <chrono>
#include <cstddef>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <socketserver/address.hpp>
#include <socketserver/base_request_handler.hpp>
#include <socketserver/detail/run_handler.hpp>
#include <socketserver/io/buffered_reader.hpp>
#include <socketserver/io/detail/io_access.hpp>
#include <socketserver/seconds.hpp>
#include <socketserver/stream_request.hpp>
#include <socketserver/stream_server.hpp>
#include <socketserver/testing/memory_pipe.hpp>

namespace socketserver {

class BaseServer;

/// What a HandlerTest gives its handler, and how long its client waits.
struct HandlerTestOptions {
  /// The handler's `server`. nullptr (the default) suits handlers that do not use it; a handler
  /// that casts `server` to its server type needs a real one here.
  BaseServer* server = nullptr;
  /// The handler's `client_address`; by default 127.0.0.1:54321, an address no connection has.
  Address client_address{"127.0.0.1", 54321};
  /// The capacity of each direction of the in-memory connection (see MemoryPipe).
  std::size_t capacity = MemoryPipe::default_capacity;
  /// The limit on each wait of the test's side: every read and write of the client end, and
  /// wait(). A handler that misbehaves fails the test with std::errc::timed_out instead of
  /// hanging it.
  Seconds timeout = std::chrono::seconds(10);
};

/// Runs one blocking `Handler` on a thread over an in-memory connection (a MemoryPipe), and
/// plays its client: a handler's logic is tested without a network or a server.
///
/// ```
/// socketserver::HandlerTest<Upper> test;
/// test.send("hello\n");
/// CHECK(test.readline() == "HELLO\n");
/// test.shutdown_write();  // the handler's rfile reaches end of stream
/// test.wait();            // returns when handle() has returned; rethrows what it threw
/// ```
/// The constructor starts the handler as a stream server's finish_request() does: it
/// default-constructs a `Handler`, sets request (owning the pipe's server end), client_address
/// and server from `options`, then calls setup(), handle() and finish() (finish() also when
/// handle() throws; an exception from setup() skips it). Then, as shutdown_request(), it ends
/// the connection: the client reads what the handler wrote, then end of stream. No server
/// hooks run: verify_request(), handle_error() and the mixins need a real server (TestClient).
///
/// Thread safety: the handler runs on a thread of its own; every member here belongs to the
/// test's thread. The destructor closes the client end (the handler's reads then see end of
/// stream, its writes EPIPE) and waits for the handler: one that blocks on something other
/// than its connection keeps it waiting.
template <StreamHandler Handler>
class HandlerTest {
 public:
  /// Starts a `Handler` with the default options.
  HandlerTest() : HandlerTest(HandlerTestOptions{}) {}

  /// Starts a `Handler` with `options`: `HandlerTest<Echo> test({.timeout = 2s});`.
  explicit HandlerTest(HandlerTestOptions options)
      : timeout_(options.timeout), pipe_(options.capacity), request_(std::move(pipe_.server)) {
    pipe_.client->set_timeout(timeout_);
    detail::IoAccess::attach(reader_, *pipe_.client);
    std::promise<void> done;
    done_ = done.get_future().share();
    thread_ =
        std::thread([this, done = std::move(done), options = std::move(options)]() mutable { run(options, done); });
  }

  HandlerTest(const HandlerTest&) = delete;
  HandlerTest& operator=(const HandlerTest&) = delete;

  /// Closes the client end and waits for the handler to return. An exception it threw and
  /// wait() did not report is dropped.
  ~HandlerTest() {
    pipe_.client->close();
    if (thread_.joinable()) thread_.join();
  }

  /// The client's end of the connection, for what the conveniences below do not cover. Reading
  /// it directly skips the bytes readline() and read() have buffered.
  MemoryPipe::End& client() noexcept { return *pipe_.client; }

  /// Sends all of `data` to the handler. Throws std::system_error: std::errc::timed_out when the
  /// handler leaves more than the pipe's capacity unread for longer than the timeout, EPIPE once
  /// the handler has ended.
  void send(std::string_view data) { pipe_.client->sendall(data); }

  /// The handler's next line, with its "\n"; at end of stream the unterminated rest, then
  /// std::nullopt. Throws std::system_error(std::errc::timed_out) when no line comes in time.
  std::optional<std::string> readline() { return reader_.readline(); }

  /// `n` bytes from the handler, fewer if the stream ends first.
  std::string read(std::size_t n) { return reader_.read(n); }

  /// Everything the handler writes until the stream ends.
  std::string read_all() { return reader_.read(); }

  /// Ends the client's sending direction: the handler's rfile reaches end of stream.
  void shutdown_write() noexcept { pipe_.client->shutdown_write(); }

  /// Waits for the handler to return, at most the timeout. Rethrows what the handler threw
  /// (from its constructor, setup(), handle() or finish()), on every call; throws
  /// std::system_error(std::errc::timed_out) if it is still running.
  void wait() {
    if (done_.wait_for(std::chrono::ceil<std::chrono::nanoseconds>(timeout_)) != std::future_status::ready)
      throw std::system_error(std::make_error_code(std::errc::timed_out), "HandlerTest::wait");
    if (thread_.joinable()) thread_.join();
    done_.get();
  }

  /// True once the handler has returned or thrown. Does not wait.
  bool done() const { return done_.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }

 private:
  // The handler as a server runs it, then shutdown_request().
  void run(const HandlerTestOptions& options, std::promise<void>& done) noexcept {
    std::exception_ptr error;
    try {
      detail::run_handler<Handler>(request_, options.client_address, options.server);
    } catch (...) {
      error = std::current_exception();
    }
    request_.shutdown_write();
    request_.close();
    if (error)
      done.set_exception(error);
    else
      done.set_value();
  }

  Seconds timeout_{};
  MemoryPipe pipe_;
  StreamRequest request_;  // owns the server end; used by the handler's thread only
  BufferedReader reader_;
  std::shared_future<void> done_;
  std::thread thread_;  // last: started once everything it uses exists
};

}  // namespace socketserver

#endif  // SOCKETSERVER_TESTING_HANDLER_HPP
