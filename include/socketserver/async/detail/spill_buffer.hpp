#ifndef SOCKETSERVER_ASYNC_DETAIL_SPILL_BUFFER_HPP
#define SOCKETSERVER_ASYNC_DETAIL_SPILL_BUFFER_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>

namespace socketserver::detail {

// The bytes an async reader or writer keeps of its own across a wait (an unfinished line, the
// rest of a reply a full socket did not take), while the event loop's buffers serve everything
// else. Sixteen bytes where std::string takes 32, because every connection carries two of them
// and most never use theirs. Holds at most 4 GiB.
class SpillBuffer {
 public:
  char* data() noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t capacity() const noexcept { return capacity_; }

  void assign(const char* bytes, std::size_t n) {
    size_ = 0;
    resize(n);
    if (n > 0) std::memcpy(data_.get(), bytes, n);
  }

  // Grows or shrinks the contents; new bytes are uninitialised. Capacity only grows.
  void resize(std::size_t n) {
    if (n > capacity_) {
      if (n > std::numeric_limits<std::uint32_t>::max()) throw std::length_error("SpillBuffer: over 4 GiB");
      auto grown = std::make_unique_for_overwrite<char[]>(n);
      if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
      data_ = std::move(grown);
      capacity_ = static_cast<std::uint32_t>(n);
    }
    size_ = static_cast<std::uint32_t>(n);
  }

  // Drops the first n bytes.
  void erase_front(std::size_t n) noexcept {
    if (n >= size_) {
      size_ = 0;
      return;
    }
    std::memmove(data_.get(), data_.get() + n, size_ - n);
    size_ -= static_cast<std::uint32_t>(n);
  }

  // Empties it; keeps a small block for next time, gives a large one back.
  void clear() noexcept {
    if (capacity_ > kept_capacity) {
      release();
    } else {
      size_ = 0;
    }
  }

  // Empties it and gives the memory back.
  void release() noexcept {
    data_.reset();
    size_ = capacity_ = 0;
  }

 private:
  static constexpr std::uint32_t kept_capacity = 4096;

  std::unique_ptr<char[]> data_;
  std::uint32_t size_ = 0;
  std::uint32_t capacity_ = 0;
};

}  // namespace socketserver::detail

#endif  // SOCKETSERVER_ASYNC_DETAIL_SPILL_BUFFER_HPP
