// StlAllocator<T, A>: a C++ standard-library allocator (std::vector<T, StlAllocator<T, A>>
// ...) over a ctxalloc Allocator it does not own. It throws std::bad_alloc (or
// std::bad_array_new_length for a count whose byte size overflows) as the standard asks.
#pragma once

#include <cstddef>
#include <limits>
#include <new>

#include "ctxalloc/core/allocator.h"

namespace ctxalloc {

template <class T, Allocator A>
class StlAllocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  template <class U>
  struct rebind {
    using other = StlAllocator<U, A>;
  };

  explicit StlAllocator(A& a) noexcept : a_(&a) {}
  template <class U>
  StlAllocator(const StlAllocator<U, A>& other) noexcept : a_(&other.allocator()) {}

  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    const Block b = a_->allocate(Layout{n * sizeof(T), alignof(T)});
    if (b.ptr == nullptr) throw std::bad_alloc();
    return reinterpret_cast<T*>(b.ptr);
  }

  void deallocate(T* p, std::size_t n) noexcept {
    a_->deallocate(Block{reinterpret_cast<std::byte*>(p), n * sizeof(T)}, alignof(T));
  }

  A& allocator() const noexcept { return *a_; }

  template <class U>
  bool operator==(const StlAllocator<U, A>& o) const noexcept {
    return a_ == &o.allocator();
  }

 private:
  A* a_;
};

}  // namespace ctxalloc
