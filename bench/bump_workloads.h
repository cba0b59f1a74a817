// Workloads of the bump suite: n allocations of `size` bytes aligned to 8, starting over
// when the region is full.
#pragma once

#include <cstdlib>
#include <memory_resource>

#include "bench_util.h"
#include "ctxalloc/allocators/bump_allocator.h"

namespace ctxalloc::bench {

inline constexpr std::size_t kBumpRegion = 1 << 20;

/// The floor: a bare inline pointer increment with the same alignment round-up and
/// bounds check any correct bump allocator must do, and nothing else.
struct BarePointer {
  std::byte* begin;
  std::byte* next;
  std::byte* end;
  std::byte* allocate(std::size_t size, std::size_t align) {
    const auto p = (reinterpret_cast<std::uintptr_t>(next) + align - 1) & ~(align - 1);
    if (p + size > reinterpret_cast<std::uintptr_t>(end)) return nullptr;
    next = reinterpret_cast<std::byte*>(p + size);
    return reinterpret_cast<std::byte*>(p);
  }
};

inline void bare_increment_loop(BarePointer& bp, std::uint64_t n, std::size_t size) {
  for (std::uint64_t i = 0; i < n; ++i) {
    std::byte* p = bp.allocate(size, 8);
    if (p == nullptr) [[unlikely]] {
      bp.next = bp.begin;
      continue;
    }
    keep(p);
  }
}

inline void bump_loop(BumpAllocator& a, std::uint64_t n, std::size_t size) {
  for (std::uint64_t i = 0; i < n; ++i) {
    Block b = a.allocate(Layout{size, 8});
    if (b.ptr == nullptr) [[unlikely]] {
      a.reset();
      continue;
    }
    keep(b.ptr);
  }
}

inline void malloc_free_loop(std::uint64_t n, std::size_t size) {
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p = std::malloc(size);
    keep(p);
    std::free(p);
  }
}

/// monotonic_buffer_resource over a fixed buffer, released when the buffer is used up
/// (counted in allocations, since it cannot report exhaustion without throwing).
inline void pmr_monotonic_loop(std::byte* buf, std::size_t cap, std::uint64_t n, std::size_t size) {
  const std::uint64_t per_round = cap / (size + 8) - 1;
  std::pmr::monotonic_buffer_resource r(buf, cap, std::pmr::null_memory_resource());
  std::uint64_t in_round = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (in_round++ == per_round) [[unlikely]] {
      r.release();
      in_round = 1;
    }
    keep(r.allocate(size, 8));
  }
}

}  // namespace ctxalloc::bench
