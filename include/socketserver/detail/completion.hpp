#ifndef SOCKETSERVER_DETAIL_COMPLETION_HPP
#define SOCKETSERVER_DETAIL_COMPLETION_HPP

#include <cstddef>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

namespace socketserver::detail {

// One stored completion handler `void(std::error_code)`, called at most once. Handlers that fit
// (a coroutine's resumption handler does) live inside the object, so waiting for a socket
// allocates nothing.
class Completion {
 public:
  static constexpr std::size_t inline_size = 16;

  template <class H>
  static constexpr bool stored_inline =
      sizeof(H) <= inline_size &&
      alignof(std::max_align_t) % alignof(H) == 0 && std::is_nothrow_move_constructible_v<H>;

  Completion() noexcept = default;
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  ~Completion() { reset(); }

  explicit operator bool() const noexcept { return call_ != nullptr; }

  template <class Handler>
  void emplace(Handler&& handler) {
    using H = std::decay_t<Handler>;
    reset();
    if constexpr (stored_inline<H>) {
      ::new (static_cast<void*>(storage_)) H(std::forward<Handler>(handler));
      call_ = [](Completion& self, std::error_code ec) {
        H* stored = std::launder(reinterpret_cast<H*>(self.storage_));
        H local(std::move(*stored));
        stored->~H();
        self.call_ = nullptr;
        self.destroy_ = nullptr;
        std::move(local)(ec);
      };
      destroy_ = [](Completion& self) noexcept { std::launder(reinterpret_cast<H*>(self.storage_))->~H(); };
    } else {
      *reinterpret_cast<H**>(storage_) = new H(std::forward<Handler>(handler));
      call_ = [](Completion& self, std::error_code ec) {
        H* stored = *reinterpret_cast<H**>(self.storage_);
        H local(std::move(*stored));
        delete stored;
        self.call_ = nullptr;
        self.destroy_ = nullptr;
        std::move(local)(ec);
      };
      destroy_ = [](Completion& self) noexcept { delete *reinterpret_cast<H**>(self.storage_); };
    }
  }

  // Calls the handler (which may resume a coroutine that destroys this object's owner: the
  // handler is moved out first, and nothing here is touched after the call).
  void complete(std::error_code ec) {
    if (call_) call_(*this, ec);
  }

  void reset() noexcept {
    if (destroy_) destroy_(*this);
    call_ = nullptr;
    destroy_ = nullptr;
  }

 private:
  void (*call_)(Completion&, std::error_code) = nullptr;
  void (*destroy_)(Completion&) noexcept = nullptr;
  alignas(std::max_align_t) unsigned char storage_[inline_size]{};
};

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_DETAIL_COMPLETION_HPP
