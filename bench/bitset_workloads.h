// Workloads of the bitset suite, shared by bitset_bench.cc (time) and callgrind_bitset.cc
// (instructions), so both measure one loop.
//
// Each operation frees one live block picked at random from a window of live blocks and
// allocates its replacement into the same slot: random-replacement lifetimes, like
// per-flow state in a packet pipeline. Before the measured loop, long-lived "resident"
// blocks are scattered through the heap (allocated between temporaries that are then
// freed) and the loop runs for a while, so the bit set holds a steady, fragmented mix of
// used and free words: the search has real work, not an empty bit set.
//
//   one_block:   64-byte requests (one 64-byte block); 3,072 scattered 64-byte residents
//                and a window of 2,048: 62% of the bit-set region's 8,192 blocks in use.
//   four_blocks: 256-byte requests (a run of 4 blocks); 2,048 scattered 64-byte residents
//                (holes of 1..3 blocks that a 4-block run must skip) and a window of
//                1,024 runs: 75% in use.
//
// Every peer (glibc malloc/free, std::pmr::unsynchronized_pool_resource) runs the same
// requests in the same order, residents included.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory_resource>
#include <vector>

#include "bench_util.h"
#include "ctxalloc/allocators/bitset_allocator.h"

namespace ctxalloc::bench {

inline constexpr std::size_t kBitSetBlock = 64;
inline constexpr std::size_t kBitSetRegionBlocks = 8192;
// The region: the blocks plus room for the two bit sets (2 x 129 words) and padding.
inline constexpr std::size_t kBitSetRegion = kBitSetRegionBlocks * kBitSetBlock + 4096;

/// The shape of one workload (see the header comment).
struct Shape {
  std::size_t size;           // bytes per request in the loop
  std::size_t resident_size;  // bytes per resident block
  std::size_t scatter;        // allocations among which the residents are scattered
  std::size_t residents;      // how many of those stay
  std::size_t window;         // live blocks the loop replaces at random (a power of two)
};

inline constexpr Shape kOneBlock{64, 64, 6144, 3072, 2048};
inline constexpr Shape kFourBlocks{256, 64, 4096, 2048, 1024};

/// xorshift64: a few instructions per number, identical for every peer.
struct Xorshift {
  std::uint64_t s = 0x9E3779B97F4A7C15ULL;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

/// The bit-set allocator over its own region (one 64-byte block per bit).
class BitSetHeap {
 public:
  BitSetHeap()
      : region_(static_cast<std::byte*>(std::aligned_alloc(4096, kBitSetRegion))),
        a_(Block{region_, kBitSetRegion}, kBitSetBlock) {}
  ~BitSetHeap() { std::free(region_); }
  BitSetHeap(const BitSetHeap&) = delete;
  BitSetHeap& operator=(const BitSetHeap&) = delete;

  void* get(std::size_t size) { return a_.allocate(Layout{size, 8}).ptr; }
  void put(void* p, std::size_t size) { a_.deallocate(Block{static_cast<std::byte*>(p), size}, 8); }
  const BitSetAllocator& allocator() const { return a_; }

 private:
  std::byte* region_;  // allocated before a_ is built over it (member order)
  BitSetAllocator a_;
};

/// glibc malloc/free.
struct MallocHeap {
  void* get(std::size_t size) { return std::malloc(size); }
  void put(void* p, std::size_t) { std::free(p); }
};

/// std::pmr::unsynchronized_pool_resource over new/delete.
class PoolHeap {
 public:
  void* get(std::size_t size) { return r_.allocate(size, 8); }
  void put(void* p, std::size_t size) { r_.deallocate(p, size, 8); }

 private:
  std::pmr::unsynchronized_pool_resource r_;
};

/// The floor: the loop's own work (random slot, window load and store) with a "heap"
/// that hands back the pointer it was just given.
struct EchoHeap {
  static inline char token;
  void* last = &token;
  void* get(std::size_t) { return last; }
  void put(void* p, std::size_t) { last = p; }
};

/// A workload over one heap: prepared (residents, window, warm-up) on construction,
/// measured by run(), torn down on destruction.
template <class Heap>
class ReplaceWorkload {
 public:
  ReplaceWorkload(Heap& heap, Shape shape) : heap_(heap), shape_(shape) {
    std::vector<void*> temps;
    Xorshift pick;
    for (std::size_t i = 0; i < shape_.scatter; ++i) {
      void* p = heap_.get(shape_.resident_size);
      const bool stays =
          resident_.size() < shape_.residents &&
          (pick.next() % 2 == 0 || shape_.scatter - i <= shape_.residents - resident_.size());
      (stays ? resident_ : temps).push_back(p);
    }
    for (void* p : temps)
      heap_.put(p, shape_.resident_size);
    window_.resize(shape_.window);
    for (void*& p : window_)
      p = heap_.get(shape_.size);
    run(8 * shape_.window);  // reach the steady state
  }

  ~ReplaceWorkload() {
    for (void* p : window_)
      heap_.put(p, shape_.size);
    for (void* p : resident_)
      heap_.put(p, shape_.resident_size);
  }

  ReplaceWorkload(const ReplaceWorkload&) = delete;
  ReplaceWorkload& operator=(const ReplaceWorkload&) = delete;

  /// n operations: free a random window slot's block, allocate its replacement.
  void run(std::uint64_t n) {
    void** window = window_.data();
    const std::size_t mask = shape_.window - 1;
    const std::size_t size = shape_.size;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::size_t j = static_cast<std::size_t>(rng_.next()) & mask;
      heap_.put(window[j], size);
      void* p = heap_.get(size);
      if (p == nullptr) [[unlikely]]
        std::abort();  // the shapes fit every heap; running out is a bug
      keep(p);
      window[j] = p;
    }
  }

 private:
  Heap& heap_;
  Shape shape_;
  Xorshift rng_;
  std::vector<void*> resident_;
  std::vector<void*> window_;
};

}  // namespace ctxalloc::bench
