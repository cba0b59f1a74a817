// Contexts: per-flow or per-coroutine allocators that can be made current for a while
// (ContextScope) and released whole. context_base.h has what every context is; this
// header defines the two forms and the dispatch between them. docs/switchable.md has
// the rules; in short:
//
//  - Context::create(lifetime, bytes) makes a *fixed* context: a block of `bytes` (a
//    power of two, 4 KiB to 4 MiB) from the calling thread's arena; its header sits at
//    the block's start and a ContextAllocator (bump, bit set or tree by lifetime) runs
//    over the rest. When it runs out, the block comes from the thread heap's spill tree
//    (counted) -- or, once the thread's budget is spent, from spill segments of the
//    global heap's memory (counted) -- with a small header linking it to the context, so
//    it is freed with the context.
//  - Context::create_growing() makes a *growing* context (growing_context.h): a small
//    first chunk that grows by chunks, with free lists, large blocks, a budget and
//    children.
//  - A context belongs to the thread that created it. Frees of its blocks from other
//    threads go back to that thread's heap, which applies them.
//  - release_all() frees the context and everything in it at once (the end of a flow).
//    release() is for contexts expected to be empty: with blocks still live it is misuse
//    (reported in checked builds, counted otherwise), and everything is freed all the
//    same. Every pointer into a released context is dead: a free that arrives later is
//    reported while the memory is unused; once it backs a new context it cannot be told
//    from that context's own pointers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/allocators/context_allocator.h"
#include "ctxalloc/config.h"
#include "ctxalloc/switchable/context_base.h"
#include "ctxalloc/switchable/growing_context.h"
#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc {

/// A fixed context: a ContextAllocator over one block of the thread's context arena.
class FixedContext final : public Context {
 public:
  static FixedContext* create(Lifetime lifetime, std::size_t bytes,
                              const ContextOptions& options = {}) noexcept;

  /// A bump context's fast path is inline (a flow's per-packet allocations, without the
  /// two out-of-line calls of the general path); the rest is out of line.
  Block allocate(Layout layout) noexcept {
    layout = linkable(layout);
    const Block b = alloc_.try_allocate_bump(layout);
    if (b.ptr != nullptr) [[likely]]
      return b;
    return allocate_slow(layout);
  }

  void release_all() noexcept;
  void reset() noexcept;
  ContextStats stats() const noexcept;
  std::uint64_t spill_count() const noexcept { return spills_.get(); }
  std::uint64_t spill_failure_count() const noexcept { return spill_failures_.get(); }
  CheckResult check_invariants() const;
  Lifetime lifetime() const noexcept { return alloc_.lifetime(); }
  ContextKind kind() const noexcept { return alloc_.kind(); }
  std::size_t bytes() const noexcept;
  ThreadHeap* heap() const noexcept { return heap_; }
  std::uint64_t live_blocks() const noexcept;
  bool live() const noexcept { return magic_ == kLive; }

  static void free_in_arena(void* p, const ContextArena* arena) noexcept;
  static FixedContext* of(const void* p, const OwnerTag* tag) noexcept;
  // The parts of the owner table's rows (owner.h) that need a fixed context's insides.
  static std::size_t usable_in_arena(const void* p, const OwnerTag* tag) noexcept;
  static void* reallocate_in_arena(void* p, const OwnerTag* tag, Layout layout) noexcept;
  static void* reallocate_spilled(void* p, const OwnerTag* tag, Layout layout) noexcept;
  void free_spilled(SpillHeader* h) noexcept;

  /// A block freed on another thread travels to its owner linked through its first
  /// word (a remote batch), so every block of a context has one, aligned: at least
  /// sizeof(void*) bytes (size 0 stays 0, the zero-size sentinel) aligned to at least
  /// alignof(void*). Without it, 1-byte blocks of a bump context sat 1 byte apart and a
  /// remote free overwrote the next seven (found by ASan in the per-lcore tests).
  static constexpr Layout linkable(Layout l) noexcept {
    constexpr std::size_t kLink = sizeof(void*);
    static_assert(alignof(void*) == kLink);
    // Sizes 1..7 become 8; alignments 1, 2, 4 become 8 (a bad alignment stays bad, so
    // that it is still reported).
    const bool small_pow2 = l.align - 1 < kLink - 1 && (l.align & (l.align - 1)) == 0;
    return Layout{l.size - 1 < kLink - 1 ? kLink : l.size, small_pow2 ? kLink : l.align};
  }

 private:
  template <class>
  friend struct TestPeer;
  friend class Context;

  static constexpr std::uint64_t kLive = 0x636f'6e74'6578'7421ULL;      // "context!"
  static constexpr std::uint64_t kReleased = 0x7265'6c65'6173'6564ULL;  // "released"

  FixedContext(Lifetime lifetime, ContextArena* arena, ThreadHeap* heap, Block region,
               const ContextOptions& options) noexcept;
  ~FixedContext() = default;

  static std::size_t header_bytes() noexcept;
  Block allocate_slow(Layout layout) noexcept;
  Block spill(Layout layout) noexcept;
  void release_block() noexcept;
  bool owned_by_this_thread() const noexcept { return heap_ == detail::t_state.heap; }

  std::uint64_t magic_ = kLive;
  ContextArena* arena_;
  ThreadHeap* heap_;
  SpillHeader spilled_;  // sentinel of the circular list of spilled blocks
  Counter spills_;
  Counter spills_to_global_;
  Counter spill_failures_;
  Counter spilled_live_;
  Counter spilled_bytes_;
  ContextAllocator alloc_;
};

// ------------------------------------------------------------------ dispatch

inline FixedContext& Context::as_fixed() noexcept {
  return static_cast<FixedContext&>(*this);
}
inline const FixedContext& Context::as_fixed() const noexcept {
  return static_cast<const FixedContext&>(*this);
}
inline GrowingContext& Context::as_growing() noexcept {
  return static_cast<GrowingContext&>(*this);
}
inline const GrowingContext& Context::as_growing() const noexcept {
  return static_cast<const GrowingContext&>(*this);
}

inline Block Context::allocate(Layout layout) noexcept {
  if (form_ == ContextForm::growing) return as_growing().allocate(layout);
  return as_fixed().allocate(layout);
}

inline ThreadHeap* Context::heap() const noexcept {
  return form_ == ContextForm::growing ? as_growing().heap() : as_fixed().heap();
}

inline bool Context::live() const noexcept {
  return form_ == ContextForm::growing ? as_growing().first_chunk()->owner == &as_growing()
                                       : as_fixed().live();
}

}  // namespace ctxalloc
