// GlobalHeap: the lockable, thread-safe heap everything falls back to (one per NUMA
// node). A TreeAllocator behind a mutex, over chunks of 4 MiB segments taken from the
// node's SegmentSource as it runs out and given back once more than a few are entirely
// free; requests above the tree's largest class go to a MemoryMapAllocator (one mapping
// each) behind its own lock, so an mmap never holds up the tree.
//
// Every chunk and every large mapping is registered in the SegmentMap (kinds
// global_heap and large, owner this), so a pointer's owner is found in O(1) and a free
// needs no size. No linear walk on allocate: the tree is O(log n) in its free spans, a
// refill is one segment from the source.
//
// Large mappings may be cached (GlobalHeapOptions::large_cache_bytes): a freed mapping is
// kept, still mapped and registered, and a later large request takes the smallest cached
// one that holds it, or grows the largest smaller one by mremap, so its pages, faulted in
// already, are not faulted again (mimalloc-bench's malloc-large: 5-25 MiB blocks, each
// zeroed by the program). The cache is bounded in bytes and entries; the oldest mapping
// is unmapped when it is over, and trim() unmaps them all.
#pragma once

#include <cstddef>
#include <mutex>

#include "ctxalloc/allocators/memory_map_allocator.h"
#include "ctxalloc/allocators/null_allocator.h"
#include "ctxalloc/allocators/tree_allocator.h"
#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/segment_map.h"
#include "ctxalloc/switchable/segment_chain.h"
#include "ctxalloc/switchable/segment_source.h"

namespace ctxalloc {

struct GlobalHeapOptions {
  /// Bytes taken from the source when the tree runs out: a multiple of 4 MiB.
  std::size_t chunk_bytes = SegmentMap::kSegmentSize;
  /// Entirely free chunks kept for reuse; more go back to the source.
  std::size_t keep_free_chunks = 1;
  /// The tree's classes; its largest class must fit in a chunk.
  TreeConfig tree{};
  /// How large mappings are made (NUMA policy, hugepages...).
  MapOptions large{};
  /// Bytes of freed large mappings kept for reuse (0: every free unmaps). A mapping
  /// larger than this is unmapped at once; when the cache is over, the oldest go.
  std::size_t large_cache_bytes = 0;
  /// Freed mappings the cache holds at most (at most kMaxLargeCache).
  std::size_t large_cache_entries = 8;
  /// A cached mapping larger than the request is handed out whole (its tail stays
  /// faulted in, ready for the next larger request) while the bytes so kept beyond what
  /// the live large blocks asked for stay within this percentage of what they asked;
  /// otherwise its tail is unmapped first.
  std::size_t large_slack_percent = 100;
};

class GlobalHeap {
 public:
  static constexpr std::size_t kMaxLargeCache = 16;
  /// Live large blocks that may hold a kept tail (large_slack_percent) at once.
  static constexpr std::size_t kMaxOversized = 32;

  /// A heap growing from segments (which must outlive it). Bad options (a chunk that is
  /// not a multiple of 4 MiB or cannot hold the largest class) make every allocation
  /// fail; config_ok() says so.
  explicit GlobalHeap(SegmentSource& segments, const GlobalHeapOptions& options = {}) noexcept;
  /// Gives every chunk back. Blocks still live become invalid.
  ~GlobalHeap();
  GlobalHeap(const GlobalHeap&) = delete;
  GlobalHeap& operator=(const GlobalHeap&) = delete;

  Block allocate(Layout layout) noexcept;
  /// allocate, then zeroed: tree blocks and reused mappings are written, fresh mappings
  /// (zero from the kernel) are not.
  Block allocate_zeroed(Layout layout) noexcept;
  /// After an allocate on this thread that returned a large mapping: how many bytes from
  /// its start may be non-zero (0: a fresh mapping; a reused one: the bytes it had
  /// before). Callers that zero blocks (calloc) write only these.
  static std::size_t last_large_dirty_bytes() noexcept;
  /// block.size 0: unknown (the heap recovers it).
  void deallocate(Block block, std::size_t align) noexcept;
  Block grow(Block block, Layout new_layout, Move move) noexcept;
  Block shrink(Block block, Layout new_layout, Move move) noexcept;
  bool contains(const void* p) const noexcept;
  /// The size of the live block starting at p, or 0.
  std::size_t allocated_size(const void* p) const noexcept;
  Stats stats() const noexcept;
  CheckResult check_invariants() const;

  /// Gives back every entirely free chunk (keeping none).
  void trim() noexcept;

  std::size_t chunks() const noexcept;
  /// Live large blocks (cached mappings not included).
  std::size_t large_mappings() const noexcept;
  /// Freed mappings in the cache, and their bytes.
  std::size_t cached_large() const noexcept;
  std::size_t cached_large_bytes() const noexcept;
  /// Large requests served from the cache (whole, shrunk or grown), and cached mappings
  /// unmapped because the cache was over or trimmed.
  std::uint64_t large_reuses() const noexcept { return large_reuses_.get(); }
  std::uint64_t large_evictions() const noexcept { return large_evictions_.get(); }
  bool config_ok() const noexcept { return config_ok_; }
  /// The source the heap grows from (thread heaps take spill segments from it when their
  /// own budget is spent).
  SegmentSource& segments() noexcept { return segments_; }
  const OwnerTag* chunk_tag() const noexcept { return &chunk_tag_; }
  const OwnerTag* large_tag() const noexcept { return &large_tag_; }

 private:
  template <class>
  friend struct TestPeer;

  bool add_chunk() noexcept;                           // lock_ held
  void return_free_chunks(std::size_t keep) noexcept;  // lock_ held
  bool is_large(const void* p) const noexcept;
  Block allocate_large(Layout layout) noexcept;
  void deallocate_large(Block block) noexcept;
  Block resize_large(Block block, Layout new_layout, Move move, bool grow) noexcept;
  Block move_between(Block block, Layout new_layout, bool to_large) noexcept;
  // large_lock_ held for all below.
  Block remap_locked(Block m, Block block, Layout l, Move move, bool grow) noexcept;
  Block take_cached(std::size_t size, std::size_t align) noexcept;
  int cached_index(const void* p) const noexcept;
  void evict_cached(std::size_t i) noexcept;
  void evict_cached_block(Block m) noexcept;  // already out of cache_
  void unmap_large(Block m) noexcept;
  std::size_t forget_oversized(const void* p) noexcept;  // its kept tail, 0 if none

  struct CachedMapping {
    std::byte* ptr;
    std::size_t size;
  };
  struct Oversized {
    std::byte* ptr;
    std::size_t excess;  // mapping bytes beyond the (page-rounded) request
  };

  SegmentSource& segments_;
  GlobalHeapOptions options_;
  bool config_ok_;
  OwnerTag chunk_tag_;
  OwnerTag large_tag_;
  mutable std::mutex lock_;  // the tree and the chunks
  SegmentChain chunks_;      // before tree_: the tree must be gone before its chunks
  BasicTreeAllocator<NullAllocator> tree_;
  mutable std::mutex large_lock_;  // the mappings
  MemoryMapAllocator large_;
  CachedMapping cache_[kMaxLargeCache] = {};  // oldest first
  std::size_t cache_count_ = 0;
  std::size_t cache_bytes_ = 0;
  Oversized oversized_[kMaxOversized] = {};
  std::size_t oversized_count_ = 0;
  std::size_t kept_excess_ = 0;   // sum of oversized_[].excess
  StatsCounters large_counters_;  // live large blocks as the callers see them
  Counter large_reuses_;
  Counter large_evictions_;
  Counter chunks_added_;
  Counter chunks_returned_;
  Counter failures_;  // refusals the tree or the mapping allocator did not count
  Counter misuses_;
};

static_assert(Allocator<GlobalHeap>);

}  // namespace ctxalloc
