// Workloads of the sources suite: obtain/release costs of each memory source against
// the peer that does the same job without ctxalloc (glibc malloc/free for fixed blocks,
// bare mmap/munmap for mappings), written once for Google Benchmark and callgrind.
// Fixed-size sources keep a ring of live blocks (each step releases the block obtained
// `ring` steps earlier), so the free lists are exercised rather than one block bouncing.
#pragma once

#include <sys/mman.h>

#include <cstdlib>

#include "bench_util.h"
#include "ctxalloc/allocators/memory_map_allocator.h"
#include "ctxalloc/sources/arena_source.h"
#include "ctxalloc/sources/mmap_source.h"
#include "ctxalloc/sources/region_source.h"
#include "ctxalloc/sources/shared_source.h"

namespace ctxalloc::bench {

inline constexpr std::size_t kRing = 64;
inline constexpr std::size_t kArenaBlock = 256;
inline constexpr std::size_t kPiece = 4096;
inline constexpr std::size_t kMapping = 64 * 1024;

/// Obtain/release through any source of fixed-size blocks, with a ring of live blocks.
template <class S>
void ring_loop(S& s, std::uint64_t n, std::size_t size) {
  Block ring[kRing] = {};
  for (std::uint64_t i = 0; i < n; ++i) {
    Block& slot = ring[i % kRing];
    if (slot.ptr != nullptr) s.release(slot);
    slot = s.obtain(size);
    keep(slot.ptr);
  }
  for (Block& b : ring)
    if (b.ptr != nullptr) s.release(b);
}

/// The same pattern with glibc malloc/free.
inline void malloc_ring_loop(std::uint64_t n, std::size_t size) {
  void* ring[kRing] = {};
  for (std::uint64_t i = 0; i < n; ++i) {
    void*& slot = ring[i % kRing];
    std::free(slot);
    slot = std::malloc(size);
    keep(slot);
  }
  for (void* p : ring)
    std::free(p);
}

/// mmap + munmap of `size` bytes, the floor of any mmap-based source.
inline void raw_mmap_loop(std::uint64_t n, std::size_t size) {
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    keep(p);
    ::munmap(p, size);
  }
}

inline void mmap_source_loop(MemoryMapSource& s, std::uint64_t n, std::size_t size) {
  for (std::uint64_t i = 0; i < n; ++i) {
    const Block b = s.obtain(size);
    keep(b.ptr);
    s.release(b);
  }
}

inline void mmap_allocator_loop(MemoryMapAllocator& a, std::uint64_t n, std::size_t size) {
  for (std::uint64_t i = 0; i < n; ++i) {
    const Block b = a.allocate(Layout{size, 16});
    keep(b.ptr);
    a.deallocate(b, 16);
  }
}

}  // namespace ctxalloc::bench
