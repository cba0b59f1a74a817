// The switchable allocator (the crate's GlobalThreadAndCoroutineSwitchableAllocator):
// each thread allocates from its current allocator -- the node's global heap (the
// default), its own thread heap, or an installed context -- and every free goes to the
// allocator that owns the pointer, found from the address alone (SegmentMap), whatever
// the mode and whichever thread frees. docs/switchable.md has the design.
//
// Fast paths (inline here): allocate in thread mode is one TLS load, a test of the mode
// and the size-class front's pop; deallocate is a segment-map lookup, one compare with
// the thread's own front, and its push. Everything else is out of line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/core/layout.h"
#include "ctxalloc/core/segment_map.h"
#include "ctxalloc/switchable/global_heap.h"
#include "ctxalloc/switchable/thread_heap.h"

namespace ctxalloc {

/// Which allocator a thread allocates from now.
enum class Mode : std::uint8_t {
  uninitialized = 0,  ///< the thread has not allocated yet (reads as its default mode)
  global = 1,         ///< the node's global heap (locked): the crate's default
  thread = 2,         ///< the thread's own heap (no locks)
  context = 3,        ///< the installed context (a flow's or a coroutine's)
};
const char* to_string(Mode m) noexcept;

class Context;  // switchable/context.h

/// The global heaps' defaults here: large mappings (above the tree's largest class) are
/// advised for transparent hugepages, so a block that is written all over faults 2 MiB at
/// a time instead of 4 KiB (where THP is off the mapping keeps base pages, counted as a
/// fallback). Freed large mappings are cached, up to 64 MiB, so that their faulted-in
/// pages serve the next large requests, and kept tails may reach 75% of the live large
/// bytes: more slack faults less and holds more (peak RSS), less the reverse
/// (docs/switchable.md; mimalloc-bench's malloc-large in docs/BENCHMARKS.md).
inline GlobalHeapOptions switchable_global_defaults() noexcept {
  GlobalHeapOptions g;
  g.large.huge = HugePages::transparent;
  g.large_cache_bytes = std::size_t{64} << 20;
  g.large_slack_percent = 75;
  return g;
}

/// Process-wide settings, read when the first thread allocates through this API.
struct SwitchableOptions {
  Mode default_mode = Mode::global;  ///< the mode every thread starts in (global or thread)
  MapOptions segments{};             ///< how segments are mapped; a NUMA policy is added per node
  std::size_t thread_bytes_per_node = 0;  ///< cap on thread heaps' segments per node (0: none)
  GlobalHeapOptions global = switchable_global_defaults();
};

/// Sets the process-wide settings. Only before the first allocation through this API:
/// false (and nothing changed) afterwards, or for a default mode that is not global or
/// thread.
bool configure(const SwitchableOptions& options) noexcept;

namespace detail {

/// Blocks freed by this thread for another thread's heap, pushed in one CAS when full.
struct RemoteBatch {
  ThreadHeap* heap;
  void* first;
  void* last;
  std::uint32_t count;
  bool small;  // size_class blocks (else the heap's tree's)
};

/// Everything a thread needs on the fast path, in static TLS (constant-initialised, so no
/// guard and no allocation: reading it is one %fs-relative load).
struct ThreadState {
  Mode mode;
  std::uint8_t exited;      // the thread's heap was torn down at exit: global mode from now on
  std::uint8_t external;    // heap was attached by its owner (attach_thread_heap)
  Context* context;         // installed context, or null
  ThreadHeap* heap;         // this thread's heap, or null
  const void* small_owner;  // &heap->small() (compared with segment tags), or null
  RemoteBatch batches[4];
};

// constinit: the compiler then knows there is no dynamic initialiser and reads the
// variable directly, without a call through the TLS wrapper on every access.
extern constinit thread_local ThreadState t_state [[gnu::tls_model("initial-exec")]];

void* allocate_slow(std::size_t size, std::size_t align) noexcept;
void deallocate_slow(void* p, std::size_t size, const OwnerTag* tag) noexcept;
/// A small block of another thread's heap (the rx lcore allocated, the tx lcore frees):
/// added to this thread's batch for that heap, pushed to it in one CAS every 32 blocks.
void free_remote_small(void* p, const OwnerTag* tag) noexcept;
/// allocate() in context mode: the installed context's allocator (with its fallbacks).
void* context_allocate(Context* c, std::size_t size, std::size_t align) noexcept;
/// Any other block of another thread's heap (tree, spill, context), batched the same way.
void free_remote_other(ThreadHeap* heap, void* p) noexcept;

}  // namespace detail

/// A block of at least size bytes aligned to align (a power of two) from the current
/// allocator; null when every allocator in the fallback chain refuses. Size 0 gives the
/// zero-size sentinel (docs/concepts.md).
inline void* allocate(std::size_t size, std::size_t align = kDefaultAlign) noexcept {
  detail::ThreadState& s = detail::t_state;
  // align in {1, 2, 4, 8, 16}: one shift and test (nothing when align is a constant).
  if (s.mode == Mode::thread && size - 1 < ThreadHeap::kSmallMax &&
      align <= SizeClassAllocator::kGranule && ((0x10116U >> align) & 1U) != 0) [[likely]] {
    const Block b = s.heap->small().allocate(Layout{size, align});
    if (b.ptr != nullptr) [[likely]]
      return b.ptr;
  } else if (s.mode == Mode::context) {
    return detail::context_allocate(s.context, size, align);
  }
  return detail::allocate_slow(size, align);
}

/// Frees p, whoever owns it and whatever the mode; no size needed. Null and the
/// zero-size sentinel are ignored; a pointer ctxalloc does not own is misuse.
inline void deallocate(void* p) noexcept {
  const OwnerTag* tag = SegmentMap::lookup(p);
  const void* mine = detail::t_state.small_owner;
  if (tag != nullptr && tag->owner == mine) [[likely]] {
    // mine is this thread's front itself: no second load through the heap.
    static_cast<SizeClassAllocator*>(const_cast<void*>(mine))->free_owned(p, tag);
    return;
  }
  if (tag != nullptr && tag->kind == owner_kind::size_class) {
    detail::free_remote_small(p, tag);
    return;
  }
  detail::deallocate_slow(p, 0, tag);
}

/// The same, with the size the caller asked for: a larger size than the block's is
/// reported (wrong size).
inline void deallocate(void* p, std::size_t size) noexcept {
  const OwnerTag* tag = SegmentMap::lookup(p);
  const void* mine = detail::t_state.small_owner;
  if (tag != nullptr && tag->owner == mine) [[likely]] {
    static_cast<SizeClassAllocator*>(const_cast<void*>(mine))->free_owned(p, tag, size);
    return;
  }
  detail::deallocate_slow(p, size, tag);
}

/// allocate, then zero the block.
void* allocate_zeroed(std::size_t size, std::size_t align = kDefaultAlign) noexcept;

/// Resizes p to size bytes keeping its contents (up to the smaller size) and alignment
/// align; in place when its owner can (this thread's heap), else moves it to the current
/// allocator. p null: allocate. size 0: frees p and returns null. Null on failure, p
/// then intact.
void* reallocate(void* p, std::size_t size, std::size_t align = kDefaultAlign) noexcept;

/// Usable bytes of the live block at p (at least what was asked); 0 for pointers
/// ctxalloc does not own or that do not start a live block.
std::size_t usable_size(const void* p) noexcept;

/// Whether ctxalloc owns p (any of its segments covers it).
inline bool owns(const void* p) noexcept {
  return SegmentMap::lookup(p) != nullptr;
}

/// Pushes this thread's batched remote frees to their owners and drains frees other
/// threads pushed to this thread's heap. Idle DPDK lcores call it.
void flush() noexcept;

/// The calling thread's mode (its default before its first allocation).
Mode current_mode() noexcept;

/// Sets the calling thread's mode to global or thread (context mode is entered by
/// installing a context: ContextScope); returns the previous mode. Thread mode creates
/// the thread's heap if needed; if that fails, the mode stays as it was.
Mode set_mode(Mode m) noexcept;

/// Saves the mode, sets another, and restores it on destruction (also when unwinding).
class ModeScope {
 public:
  explicit ModeScope(Mode m) noexcept : saved_(set_mode(m)) {}
  ~ModeScope() { set_mode(saved_); }
  ModeScope(const ModeScope&) = delete;
  ModeScope& operator=(const ModeScope&) = delete;

 private:
  Mode saved_;
};

/// Runs f with the thread's own heap current; the previous mode is back afterwards,
/// also when f throws.
template <class F>
decltype(auto) with_thread_allocator(F&& f) {
  ModeScope scope(Mode::thread);
  return std::forward<F>(f)();
}

/// Runs f with the global heap current; restores as with_thread_allocator.
template <class F>
decltype(auto) with_global_allocator(F&& f) {
  ModeScope scope(Mode::global);
  return std::forward<F>(f)();
}

/// The heap the calling thread has now (its own or one attached to it), or null; never
/// creates one (current_thread_heap() does).
inline ThreadHeap* thread_heap_now() noexcept {
  return detail::t_state.heap;
}

/// The calling thread's heap, created (or adopted from an exited thread) if needed;
/// null when no segment can be had, or after the thread's exit handler ran.
ThreadHeap* current_thread_heap() noexcept;

/// The global heap of the calling thread's NUMA node.
GlobalHeap& current_global_heap() noexcept;

/// Makes `heap`, which the caller owns (a DPDK lcore's heap on its socket's hugepages),
/// the calling thread's heap; a heap the runtime gave the thread before is abandoned
/// (its live blocks stay valid). Call on the thread itself. When the thread exits, or on
/// detach_thread_heap(), the heap is flushed and abandoned -- live blocks stay valid,
/// frees that arrive later are applied under its lock -- but never pooled: its owner
/// decides when it goes.
void attach_thread_heap(ThreadHeap* heap) noexcept;
/// Undoes attach_thread_heap on the calling thread (which then runs in global mode).
void detach_thread_heap() noexcept;

/// Replaces the global heap of a NUMA node (for global-mode threads and for heaps the
/// runtime creates from then on): a DPDK application's per-socket heap on hugepages.
/// Null restores the runtime's own. The heap must outlive every use. A node the runtime
/// keeps no heaps for (node >= the nodes it found, at most 64) is ignored, as intended:
/// no heap is ever made for it (its CPUs use node 0's, see HeapCensus::node_fallbacks).
void set_node_global_heap(unsigned node, GlobalHeap* heap) noexcept;

/// Threads whose heaps exist now, and heaps waiting to be adopted.
struct HeapCensus {
  std::size_t heaps = 0;          ///< heap objects ever made (live + abandoned)
  std::size_t abandoned = 0;      ///< heaps of exited threads, waiting for a new thread
  std::size_t live_bytes = 0;     ///< bytes of live blocks in abandoned heaps
  std::size_t live_contexts = 0;  ///< contexts of exited threads never released
  /// 4 MiB segments the runtime's own sources (thread and global, every node) have out
  /// now, in bytes; the global heaps' large mappings are not included.
  std::size_t source_bytes = 0;
  /// The sum of those sources' peaks: an upper bound of the peak of the total.
  std::size_t source_peak_bytes = 0;
  /// Heap requests for a NUMA node the runtime keeps no heaps for (a CPU on a node past
  /// the 64 it keeps), served by node 0's heaps instead.
  std::uint64_t node_fallbacks = 0;
  /// False when pthread_key_create failed as the runtime started (said once on stderr):
  /// the heaps of exiting threads are then not abandoned for reuse (their blocks stay
  /// valid; each new thread makes a new heap).
  bool thread_exit_hook = true;
};
HeapCensus heap_census() noexcept;

}  // namespace ctxalloc
