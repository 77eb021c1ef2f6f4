#ifndef SOCKETSERVER_ASYNC_DETAIL_AWAITABLE_THREAD_HPP
#define SOCKETSERVER_ASYNC_DETAIL_AWAITABLE_THREAD_HPP

#include <socketserver/async/detail/coroutine.hpp>  // first: before asio's coroutine headers

#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/version.hpp>

#include <socketserver/async/detail/completion.hpp>

// How a connection's coroutine starts and how it waits for its socket, in asio's own terms.
//
// asio's public way costs memory and time on every connection and every wait: co_spawn() puts
// a 400-byte frame of its own (executors, work guards, the completion handler) under the
// coroutine, and every co_await of an asynchronous operation creates another frame, for the
// operation's result, which lives as long as the wait. An idle connection waits all its life,
// so those frames were a third of what it cost.
//
// With asio 1.22 (the version this library is built and tested with: Debian 12's), the fast
// way uses the pieces co_spawn() and use_awaitable are made of: the coroutine itself is the
// bottom frame of its awaitable thread, and a wait hands the thread to a resumer without any
// frame in between. Any other asio version, or SOCKETSERVER_PORTABLE_COROUTINES defined, takes
// the public way, which behaves the same and costs more; CI builds the async tests both ways.
#if !defined(SOCKETSERVER_PORTABLE_COROUTINES) && ASIO_VERSION / 100 == 1022
#define SOCKETSERVER_FAST_COROUTINES 1
#endif

namespace socketserver::detail {

#if defined(SOCKETSERVER_FAST_COROUTINES)

/// The return type of a coroutine that runs as a thread of its own: launch() starts it.
using ThreadEntry = asio::awaitable<asio::detail::awaitable_thread_entry_point, asio::any_io_executor>;

/// Runs `entry` on the calling thread, which must be `executor`'s, until it first waits; it
/// goes on wherever it is resumed.
inline constexpr bool launch_runs_at_once = true;
inline void launch(ThreadEntry entry, const asio::any_io_executor& executor) {
  asio::detail::awaitable_thread<asio::any_io_executor>(std::move(entry), executor, {}, {}).launch();
}

/// Owns a suspended coroutine's thread; calling it resumes the coroutine, right there. Sixteen
/// bytes: a Completion holds it inline.
class Resumer : asio::detail::awaitable_thread<asio::any_io_executor> {
  using Thread = asio::detail::awaitable_thread<asio::any_io_executor>;
  using Frame = asio::detail::awaitable_frame_base<asio::any_io_executor>;

 public:
  // Takes the thread from the coroutine `frame` that is suspending.
  explicit Resumer(Frame* frame) noexcept : Thread(std::move(*frame->detach_thread())), frame_(frame) {}
  Resumer(Resumer&& other) noexcept = default;
  Resumer& operator=(Resumer&&) = delete;
  ~Resumer() = default;

  void operator()() {
    frame_->attach_thread(this);
    this->pump();
  }

 private:
  Frame* frame_;
};

/// `co_await wait_for(waiter, ready)` suspends the calling coroutine unless `ready` is true at
/// that point, and stores in `waiter` what resumes it. No frame, no allocation; when `ready`,
/// the coroutine goes on at once.
inline auto wait_for(Completion& waiter, const bool& ready) {
  return [&waiter, &ready](asio::detail::awaitable_frame_base<asio::any_io_executor>* frame)
             -> asio::detail::awaitable_thread<asio::any_io_executor>* {
    static_assert(Completion::stored_inline<Resumer>, "a wait would allocate");
    if (!ready) waiter.emplace(Resumer(frame));
    return nullptr;  // no thread to pump here: the waiter has it, or the caller goes on
  };
}

#else

using ThreadEntry = asio::awaitable<void>;

// co_spawn() runs the coroutine at once only when called from inside its io_context's run().
inline constexpr bool launch_runs_at_once = false;
inline void launch(ThreadEntry entry, const asio::any_io_executor& executor) {
  asio::co_spawn(executor, std::move(entry), asio::detached);
}

inline asio::awaitable<void> wait_for(Completion& waiter, const bool& ready) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&waiter, &ready](auto handler) {
        static_assert(Completion::stored_inline<decltype(handler)>, "a wait would allocate");
        if (ready) {
          asio::post(std::move(handler));  // on the coroutine's own executor
        } else {
          waiter.emplace(std::move(handler));
        }
      },
      asio::use_awaitable);
}

#endif

/// What wait_for() returns, to co_await.
using Wait = decltype(wait_for(std::declval<Completion&>(), std::declval<const bool&>()));

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_ASYNC_DETAIL_AWAITABLE_THREAD_HPP
