// Memory for allocators under test: a page-aligned heap region that is freed at the end.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

#include "ctxalloc/core/layout.h"

namespace ctxalloc::testing {

class TestRegion {
 public:
  explicit TestRegion(std::size_t size, std::size_t align = 4096)
      : size_(size), ptr_(static_cast<std::byte*>(std::aligned_alloc(align, round(size, align)))) {
    if (ptr_ == nullptr) throw std::bad_alloc();
  }
  ~TestRegion() { std::free(ptr_); }
  TestRegion(const TestRegion&) = delete;
  TestRegion& operator=(const TestRegion&) = delete;

  Block block() const { return Block{ptr_, size_}; }
  std::byte* data() const { return ptr_; }
  std::size_t size() const { return size_; }

 private:
  static std::size_t round(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }
  std::size_t size_;
  std::byte* ptr_;
};

}  // namespace ctxalloc::testing
