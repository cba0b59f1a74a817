// ThreadHeap: one thread's own allocator. Small requests (up to 2 KiB) go to its
// SizeClassAllocator; medium ones (up to the tree's largest class, 1 MiB) to a
// TreeAllocator over 4 MiB segments; larger ones, and anything the thread's segment
// budget cannot hold, to the node's GlobalHeap (counted as fallbacks). Every segment is
// registered in the SegmentMap, so a free finds this heap from the pointer alone.
//
// Only the owner thread allocates and frees directly. Other threads hand blocks back
// through two lock-free stacks (one CAS per pushed batch), one for small and one for
// medium blocks, which the owner drains when a size class runs dry and on its slow
// paths. At thread exit the heap is abandoned: the stacks are closed, and frees that
// arrive later go through lock_ directly into the heap, until a new thread adopts it.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

#include "ctxalloc/allocators/null_allocator.h"
#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/allocators/tree_allocator.h"
#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/segment_map.h"
#include "ctxalloc/switchable/context_arena.h"
#include "ctxalloc/switchable/flow_chunks.h"
#include "ctxalloc/switchable/global_heap.h"
#include "ctxalloc/switchable/segment_chain.h"
#include "ctxalloc/switchable/segment_source.h"

namespace ctxalloc {

struct ThreadHeapStats {
  Stats small;                  ///< the size-class front
  Stats medium;                 ///< the tree
  Stats spill;                  ///< blocks that spilled out of this thread's contexts
  std::uint64_t fallbacks = 0;  ///< requests the heap could not serve, sent to the global heap
  std::uint64_t large = 0;      ///< requests above the tree's largest class (global heap)
  std::uint64_t remote_received = 0;  ///< blocks freed by other threads, drained here
  std::uint64_t medium_segments = 0;  ///< segments held by the tree
  std::uint64_t small_segments = 0;   ///< segments held by the size-class front
  std::uint64_t spill_segments = 0;   ///< segments held by the spill tree
  std::uint64_t contexts_live = 0;    ///< contexts made and not released (fixed and growing)
  /// Requests of this heap's contexts that spilled: served on the thread's own segments,
  /// on the global heap's memory, or by nothing (cumulative; each spill counted once).
  std::uint64_t context_spills_thread = 0;
  std::uint64_t context_spills_global = 0;
  std::uint64_t context_spill_failures = 0;
  /// Spill-tree blocks on the contexts' own source (growing contexts' large blocks).
  std::uint64_t context_blocks_own = 0;
  /// Requests refused because the fallback tiers leave the global heap out.
  std::uint64_t refused = 0;
  /// Both parts together.
  Stats total() const noexcept {
    Stats t = small;
    t += medium;
    return t;
  }
};

/// Which tiers may serve what a thread heap and its contexts cannot: the crate's chain
/// is context -> thread -> global, and a configuration may cut it short (a DPDK lcore
/// whose config says `context -> global`, or `context -> thread -> fail`).
struct FallbackTiers {
  bool thread = true;  ///< contexts spill onto the thread's own segments
  bool global = true;  ///< contexts spill, and the heap falls back, onto the global heap
};

/// Whose memory a spill-tree block lies on: the contexts' own source (a DPDK lcore's flow
/// memory, set_context_source), the thread's segments, or the global heap's.
enum class SpillFrom : std::uint8_t { own, thread, global };

class ThreadHeap {
 public:
  static constexpr std::size_t kSmallMax = SizeClassAllocator::kMaxSize;

  /// A heap taking segments from `segments` and falling back to `global`; both outlive it.
  ThreadHeap(SegmentSource& segments, GlobalHeap& global) noexcept;
  /// Gives every segment back (blocks still live become invalid).
  ~ThreadHeap();
  ThreadHeap(const ThreadHeap&) = delete;
  ThreadHeap& operator=(const ThreadHeap&) = delete;

  // ----------------------------------------------------------------- owner thread
  /// Small, medium, then the global heap (a fallback, counted). Null only when the
  /// global heap refuses too.
  Block allocate(Layout layout) noexcept;

  /// Frees a block whose segment tag (from SegmentMap::lookup) belongs to this heap:
  /// size_class or tree kind. Double frees and interior pointers are reported.
  void free_owned(void* p, const OwnerTag* tag) noexcept;

  /// Resizes a block of this heap (tag as above); moves it across the small, medium and
  /// global parts as needed (Move::allowed). Null on failure; the block is then intact.
  Block resize(void* p, const OwnerTag* tag, Layout new_layout, Move move) noexcept;

  /// Size of the live block at p (tag as above), or 0.
  std::size_t allocated_size(const void* p, const OwnerTag* tag) const noexcept;

  /// The size of a live block of a thread heap (tag: size_class or tree), read in a way
  /// that is safe from any thread while the block stays live.
  static std::size_t live_size_any_thread(const void* p, const OwnerTag* tag) noexcept;

  /// Applies every pending remote free.
  void drain_remote() noexcept;

  SizeClassAllocator& small() noexcept { return small_; }
  const SizeClassAllocator& small() const noexcept { return small_; }
  GlobalHeap& global() noexcept { return global_; }
  SegmentSource& segments() noexcept { return segments_; }

  /// Whether the segment tag names a part of this heap.
  bool owns_tag(const OwnerTag* tag) const noexcept {
    return (tag->kind == owner_kind::size_class && tag->owner == &small_) ||
           tag == &medium_tag_.tag || tag == &spill_tag_.tag;
  }

  // ----------------------------------------------------------------- contexts
  /// The arena of context blocks of `bytes` (a power of two, 4 KiB to 4 MiB); null for
  /// other sizes.
  ContextArena* context_arena(std::size_t bytes) noexcept {
    return arenas_.get(bytes, segments_, this);
  }
  /// A block for a context that ran out, or a growing context's large block (the spill
  /// tree): from the contexts' own source when one is set, then the thread's segments,
  /// then the global heap's source, as far as the fallback tiers allow (*from says whose
  /// memory it lies on). Null when all refuse.
  Block allocate_spill(Layout layout, SpillFrom* from) noexcept;
  /// Where the spill tree takes its segments first (a DPDK lcore's flow memory); null:
  /// the thread's own segments. Before the spill tree holds any.
  void set_context_source(SegmentSource* s) noexcept { context_source_ = s; }
  /// The pool of growing contexts' chunks.
  FlowChunks& flow_chunks() noexcept { return flows_; }
  const FlowChunks& flow_chunks() const noexcept { return flows_; }
  /// Limits where spills and fallbacks go (both tiers by default). Owner thread, or
  /// before the heap is used.
  void set_fallback_tiers(FallbackTiers tiers) noexcept { tiers_ = tiers; }
  FallbackTiers fallback_tiers() const noexcept { return tiers_; }
  /// Frees a spill block (as allocate_spill returned it).
  void free_spill(void* block) noexcept;
  std::size_t spill_size(const void* block) const noexcept { return spill_.allocated_size(block); }

  /// The heap a size_class, tree or spill tag belongs to.
  static ThreadHeap* of_tag(const OwnerTag* tag) noexcept;
  /// The heap of a size_class tag: its owner is the front, whose user is the heap.
  static ThreadHeap* of_small(const OwnerTag* tag) noexcept {
    return static_cast<ThreadHeap*>(static_cast<SizeClassAllocator*>(tag->owner)->user());
  }
  /// The heap of a tree or spill tag (the first member of a HeapTag).
  static ThreadHeap* of_heap_tag(const OwnerTag* tag) noexcept {
    return reinterpret_cast<const HeapTag*>(tag)->heap;
  }

  // ----------------------------------------------------------------- any thread
  /// Hands a chain of this heap's blocks (first -> ... -> last, linked through their
  /// first word), all small (size_class segments) or all other (tree, spill and context
  /// blocks of this heap's contexts), back from another
  /// thread. The caller found each block's owner through the SegmentMap. Lock-free while
  /// the heap has an owner; once it is abandoned, the blocks are freed at once under the
  /// heap's lock.
  void push_remote(void* first, void* last, bool small) noexcept;

  ThreadHeapStats stats() const noexcept;
  /// Owner thread (or a quiescent heap) only.
  CheckResult check_invariants() const;

  // ----------------------------------------------------------------- lifetime
  /// The owner thread is exiting: drain, give back empty segments, close the remote
  /// stack. Blocks still live stay valid.
  void abandon() noexcept;
  /// A new thread takes the heap over.
  void adopt() noexcept;
  bool abandoned() const noexcept { return abandoned_.load(std::memory_order_acquire); }
  /// Bytes still held by live blocks (small, medium and spilled; contexts' own blocks are
  /// counted by their contexts).
  std::size_t live_bytes() const noexcept;
  /// Contexts of this heap not released yet (fixed and growing).
  std::size_t live_contexts() const noexcept;
  /// Gives back every segment that holds no live block.
  void trim() noexcept;

  /// fork(): the process allocator holds every heap's lock across fork (after its own
  /// threads left the allocator), so that no abandon or abandoned-heap free is half done
  /// in the child.
  void lock_for_fork() noexcept { lock_.lock(); }
  void unlock_after_fork() noexcept { lock_.unlock(); }

 private:
  template <class>
  friend struct TestPeer;

  Block allocate_medium(Layout layout) noexcept;
  bool add_medium_segment() noexcept;
  void return_free_medium_segments(std::size_t keep) noexcept;
  Block fallback(Layout layout) noexcept;
  Block refuse() noexcept;                    // the tiers leave the global heap out
  Block spill_block(Layout layout) noexcept;  // allocate_spill without the counting

  // The medium segments' tag. Its owner is the tree (never the address of small_, which
  // the free fast path compares tags with); heap leads back to this heap.
  struct HeapTag {
    OwnerTag tag;
    ThreadHeap* heap;
  };

  SizeClassAllocator small_;
  HeapTag medium_tag_;
  SegmentChain medium_chunks_;  // before medium_: the tree must be gone before its segments
  BasicTreeAllocator<NullAllocator> medium_;
  HeapTag spill_tag_;
  SegmentChain spill_chunks_;  // before spill_, as for the medium tree
  BasicTreeAllocator<NullAllocator> spill_;
  ContextArenas arenas_;
  FlowChunks flows_;
  SegmentSource& segments_;
  SegmentSource* context_source_ = nullptr;
  GlobalHeap& global_;

  void drain_chain(void* chain, bool small) noexcept;
  void free_other(void* p) noexcept;  // a non-small block of this heap (tree, spill, context)

  // Blocks freed by other threads, small and medium. kClosed once the heap is abandoned.
  alignas(64) std::atomic<void*> remote_small_{nullptr};
  std::atomic<void*> remote_medium_{nullptr};
  std::atomic<bool> abandoned_{false};
  mutable std::mutex lock_;  // only while abandoned, and around abandon/adopt

  FallbackTiers tiers_{};
  Counter fallbacks_;
  Counter large_;
  Counter spills_own_;
  Counter spills_thread_;
  Counter spills_global_;
  Counter spill_failures_;
  Counter refused_;
  Counter remote_received_;
  Counter misuses_;
};

}  // namespace ctxalloc
