// Segments for allocators under test: 4 MiB blocks aligned to 4 MiB from aligned_alloc,
// counted so tests can see that every segment came back.
#pragma once

#include <cstdlib>

#include "ctxalloc/allocators/size_class_allocator.h"

namespace ctxalloc::testing {

class TestSegments {
 public:
  SegmentProvider provider() { return SegmentProvider{this, &obtain, &release}; }
  int outstanding() const { return outstanding_; }

 private:
  static Block obtain(void* ctx) noexcept {
    constexpr std::size_t n = SegmentMap::kSegmentSize;
    void* p = std::aligned_alloc(n, n);
    if (p == nullptr) return Block{};
    ++static_cast<TestSegments*>(ctx)->outstanding_;
    return Block{static_cast<std::byte*>(p), n};
  }
  static void release(void* ctx, Block b) noexcept {
    std::free(b.ptr);
    --static_cast<TestSegments*>(ctx)->outstanding_;
  }
  int outstanding_ = 0;
};

}  // namespace ctxalloc::testing
