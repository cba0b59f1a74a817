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
#pragma once

#include <cstddef>
#include <mutex>

#include "ctxalloc/adaptors/null_allocator.h"
#include "ctxalloc/allocators/memory_map_allocator.h"
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
};

class GlobalHeap {
 public:
  /// A heap growing from segments (which must outlive it). Bad options (a chunk that is
  /// not a multiple of 4 MiB or cannot hold the largest class) make every allocation
  /// fail; config_ok() says so.
  explicit GlobalHeap(SegmentSource& segments, const GlobalHeapOptions& options = {}) noexcept;
  /// Gives every chunk back. Blocks still live become invalid.
  ~GlobalHeap();
  GlobalHeap(const GlobalHeap&) = delete;
  GlobalHeap& operator=(const GlobalHeap&) = delete;

  Block allocate(Layout layout) noexcept;
  Block allocate_zeroed(Layout layout) noexcept;
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
  std::size_t large_mappings() const noexcept;
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
  Counter chunks_added_;
  Counter chunks_returned_;
  Counter failures_;  // refusals the tree or the mapping allocator did not count
  Counter misuses_;
};

static_assert(Allocator<GlobalHeap>);

}  // namespace ctxalloc
