#ifndef SOCKETSERVER_ASYNC_DETAIL_COMPLETION_HPP
#define SOCKETSERVER_ASYNC_DETAIL_COMPLETION_HPP

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace socketserver::detail {

// One stored completion handler `void()`, called at most once. Handlers that fit (a suspended
// coroutine's resumer does) live inside the object, so waiting for a socket allocates nothing.
class Completion {
 public:
  static constexpr std::size_t inline_size = 16;

  template <class H>
  static constexpr bool stored_inline = sizeof(H) <= inline_size &&
                                        alignof(void*) % alignof(H) == 0 && std::is_nothrow_move_constructible_v<H>;

  Completion() noexcept = default;
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  ~Completion() { reset(); }

  explicit operator bool() const noexcept { return run_ != nullptr; }

  template <class Handler>
  void emplace(Handler&& handler) {
    using H = std::decay_t<Handler>;
    reset();
    if constexpr (stored_inline<H>) {
      ::new (static_cast<void*>(storage_)) H(std::forward<Handler>(handler));
      run_ = [](Completion& self, bool call) {
        H* stored = std::launder(reinterpret_cast<H*>(self.storage_));
        self.run_ = nullptr;
        if (!call) return stored->~H();
        H local(std::move(*stored));
        stored->~H();
        std::move(local)();
      };
    } else {
      *reinterpret_cast<H**>(storage_) = new H(std::forward<Handler>(handler));
      run_ = [](Completion& self, bool call) {
        H* stored = *reinterpret_cast<H**>(self.storage_);
        self.run_ = nullptr;
        if (!call) return delete stored;
        H local(std::move(*stored));
        delete stored;
        std::move(local)();
      };
    }
  }

  // Calls the handler (which may resume a coroutine that destroys this object's owner: the
  // handler is moved out first, and nothing here is touched after the call).
  void complete() {
    if (run_) run_(*this, true);
  }

  // Destroys the handler without calling it.
  void reset() noexcept {
    if (run_) run_(*this, false);
  }

 private:
  // Calls (true) or destroys (false) the stored handler, and empties the object.
  void (*run_)(Completion&, bool call) = nullptr;
  alignas(void*) unsigned char storage_[inline_size]{};
};

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_ASYNC_DETAIL_COMPLETION_HPP
