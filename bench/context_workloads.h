// Workloads of the context suite, shared by context_bench.cc (time) and
// callgrind_context.cc (instructions): the cost of the ContextAllocator's dispatch. Each
// loop runs once over a ContextAllocator and once over the bare allocator of the kind it
// runs (BumpAllocator, BitSetAllocator, ContextTree), over equal regions, with the same
// requests; the difference is the tag switch (and the bump kind's most-recent store).
//
//   pairs:   allocate 64 B and free it at once (every kind: the bump allocator frees in
//            place, the bit set and the tree give the block back to the same spot).
//   fill:    bump only: 64-byte allocations, reset() when the region is full.
//   replace: bit set and tree: free one of 1,024 live blocks picked at random and
//            allocate its replacement (16..256 B) into the same slot.
//
// Every loop reaches its allocator through a pointer the compiler cannot trace (opaque())
// and keep() clobbers memory, so the tag and the allocator's fields are loaded through
// that pointer on every call, as when the switchable layer calls a context it found
// through a thread-local pointer. (Without it, a bare allocator on the stack is addressed
// relative to %rsp, which this AMD EPYC forwards from store to load faster than through
// another register: the bare bump pairs ran at 1.15 ns against 2.2 ns for the context,
// for 27 against 37 instructions.)
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>

#include "bench_util.h"
#include "ctxalloc/allocators/context_allocator.h"

namespace ctxalloc::bench {

inline constexpr std::size_t kContextRegion = 1 << 20;
inline constexpr std::size_t kContextBitSetBlock = 64;

/// p, as a pointer the compiler can no longer relate to the object it points to (whose
/// address thereby escapes, too).
template <class T>
inline T* opaque(T* p) {
  asm volatile("" : "+r"(p) : : "memory");
  return p;
}

/// A page-aligned region for one allocator.
class BenchRegion {
 public:
  BenchRegion() : p_(static_cast<std::byte*>(std::aligned_alloc(4096, kContextRegion))) {}
  ~BenchRegion() { std::free(p_); }
  BenchRegion(const BenchRegion&) = delete;
  BenchRegion& operator=(const BenchRegion&) = delete;
  Block block() const { return Block{p_, kContextRegion}; }

 private:
  std::byte* p_;
};

/// The context options every workload uses: the bit set's 64-byte blocks, the tree's
/// default classes for the region (32 B .. 256 KiB).
inline ContextOptions context_options() {
  ContextOptions o;
  o.bitset_block_size = kContextBitSetBlock;
  return o;
}

template <class A>
void pairs_loop(A& allocator, std::uint64_t n) {
  A& a = *opaque(&allocator);
  for (std::uint64_t i = 0; i < n; ++i) {
    const Block b = a.allocate(Layout{64, 8});
    keep(b.ptr);
    a.deallocate(b, 8);
  }
}

template <class A>
void fill_loop(A& allocator, std::uint64_t n) {
  A& a = *opaque(&allocator);
  for (std::uint64_t i = 0; i < n; ++i) {
    const Block b = a.allocate(Layout{64, 8});
    if (b.ptr == nullptr) [[unlikely]] {
      a.reset();
      continue;
    }
    keep(b.ptr);
  }
}

/// Random replacement among kSlots live blocks (sizes 16..256 B).
template <class A>
class ReplaceLoop {
 public:
  static constexpr std::size_t kSlots = 1024;

  explicit ReplaceLoop(A& a) : a_(*opaque(&a)) {
    for (Block& b : slots_)
      b = a_.allocate(Layout{next_size(), 8});
  }
  ~ReplaceLoop() {
    for (Block& b : slots_)
      a_.deallocate(b, 8);
  }

  void run(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      Block& slot = slots_[next() % kSlots];
      a_.deallocate(slot, 8);
      slot = a_.allocate(Layout{next_size(), 8});
      keep(slot.ptr);
    }
  }

 private:
  std::uint32_t next() {  // an LCG: a multiply and an add, the same for both peers
    state_ = state_ * 1664525u + 1013904223u;
    return state_ >> 8;
  }
  std::size_t next_size() {
    static constexpr std::array<std::uint16_t, 8> kSizes = {16, 24, 32, 48, 64, 96, 128, 256};
    return kSizes[next() % kSizes.size()];
  }

  A& a_;
  std::array<Block, kSlots> slots_;
  std::uint32_t state_ = 12345;
};

}  // namespace ctxalloc::bench
