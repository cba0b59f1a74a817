// Contexts: per-flow or per-coroutine allocators that can be made current for a while
// (ContextScope) and released whole. docs/switchable.md has the rules; in short:
//
//  - Context::create(lifetime, bytes) takes a block of `bytes` (a power of two, 4 KiB to
//    4 MiB) from the calling thread's arena; its header sits at the block's start and a
//    ContextAllocator (bump, bit set or tree by lifetime) runs over the rest.
//  - While a ContextScope is alive, allocate() serves from the context. When it runs
//    out, the block comes from the thread heap's spill tree (counted) -- or, once the
//    thread's budget is spent, from spill segments of the global heap's memory (counted)
//    -- with a small header linking it to the context, so it is freed with the context.
//  - A context belongs to the thread that created it. Frees of its blocks from other
//    threads go back to that thread's heap, which applies them.
//  - release_all() frees the context and everything in it at once (the end of a flow).
//    release() is for contexts expected to be empty: with blocks still live it is misuse
//    (reported in checked builds, counted otherwise), and everything is freed all the
//    same. Every pointer into a released context is dead: a free that arrives later is
//    reported while the block is unused; once the block backs a new context it cannot
//    be told from that context's own pointers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/allocators/context_allocator.h"
#include "ctxalloc/config.h"
#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc {

struct ContextStats {
  Stats local;                         ///< the context's own allocator
  std::uint64_t spills = 0;            ///< requests served by the thread heap's spill tree
  std::uint64_t spills_to_global = 0;  ///< of those, on memory of the global heap's source
  std::uint64_t spill_failures = 0;    ///< requests nothing could serve
  std::uint64_t spilled_live = 0;      ///< spilled blocks live now
  std::uint64_t spilled_bytes = 0;     ///< their bytes
};

class Context {
 public:
  static constexpr std::size_t kMinBytes = std::size_t{1} << ContextArenas::kMinShift;
  static constexpr std::size_t kMaxBytes = std::size_t{1} << ContextArenas::kMaxShift;

  /// A context of the calling thread, of kind_for(lifetime), over a block of `bytes` (a
  /// power of two in [kMinBytes, kMaxBytes]). Null when the size or the options are
  /// refused (reported as bad_argument) or no memory is left.
  static Context* create(Lifetime lifetime, std::size_t bytes,
                         const ContextOptions& options = {}) noexcept;

  /// Frees the context and everything allocated in it, spilled blocks included. The
  /// object is gone afterwards. Owner thread only.
  void release_all() noexcept;
  /// The same, for a context expected to be empty: live blocks are misuse
  /// (live_on_release), then freed all the same.
  void release() noexcept;

  /// Serves from the context, else spills (see the header comment). Owner thread only.
  /// A bump context's fast path is inline (a flow's per-packet allocations: about 15
  /// instructions instead of about 40 through two calls); the rest is out of line.
  Block allocate(Layout layout) noexcept {
    layout = linkable(layout);
    const Block b = alloc_.try_allocate_bump(layout);
    if (b.ptr != nullptr) [[likely]]
      return b;
    return allocate_slow(layout);
  }

  ContextStats stats() const noexcept;
  /// stats().spills and stats().spill_failures alone, without building the allocator's
  /// Stats (for a per-flow tally at release).
  std::uint64_t spill_count() const noexcept { return spills_.get(); }
  std::uint64_t spill_failure_count() const noexcept { return spill_failures_.get(); }
  CheckResult check_invariants() const;
  Lifetime lifetime() const noexcept { return alloc_.lifetime(); }
  ContextKind kind() const noexcept { return alloc_.kind(); }
  /// The size of the context's block (header included).
  std::size_t bytes() const noexcept;
  ThreadHeap* heap() const noexcept { return heap_; }
  /// Live blocks: the context's own and the spilled ones.
  std::uint64_t live_blocks() const noexcept;

  // ----- for the switchable layer: p lies in a context_arena or spill segment (tag)
  /// Frees p from any thread: on the owner thread at once, else through its heap.
  static void free_owned(void* p, const OwnerTag* tag) noexcept;
  /// Frees p on its owner thread (its heap drains a remote free).
  static void free_local(void* p, const OwnerTag* tag) noexcept;
  /// Usable bytes of the live block p, or 0.
  static std::size_t usable_size(const void* p, const OwnerTag* tag) noexcept;
  /// Resizes p, staying in its context (moving within it, or spilling). Null on failure,
  /// p then intact.
  static void* reallocate(void* p, const OwnerTag* tag, Layout layout) noexcept;
  /// The live context whose block holds p (a context_arena tag), or null.
  static Context* of(const void* p, const OwnerTag* tag) noexcept;

 private:
  Block allocate_slow(Layout layout) noexcept;
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
  template <class>
  friend struct TestPeer;

  /// The header of every spilled block, just before the caller's bytes.
  struct SpillHeader {
    SpillHeader* prev;
    SpillHeader* next;
    Context* context;
    std::uint32_t offset;  // from the spill block's start to the caller's bytes
    std::uint32_t magic;
  };
  static_assert(sizeof(SpillHeader) == 32);
  static constexpr std::uint32_t kSpillMagic = 0x5b11'1ed5;
  static constexpr std::uint64_t kLive = 0x636f'6e74'6578'7421ULL;      // "context!"
  static constexpr std::uint64_t kReleased = 0x7265'6c65'6173'6564ULL;  // "released"

  Context(Lifetime lifetime, ContextArena* arena, ThreadHeap* heap, Block region,
          const ContextOptions& options) noexcept;
  ~Context() = default;

  static std::size_t header_bytes() noexcept;
  static void free_in_arena(void* p, const ContextArena* arena) noexcept;
  Block spill(Layout layout) noexcept;
  void free_spilled(SpillHeader* h) noexcept;
  void release_block() noexcept;
  static SpillHeader* spill_header(const void* p) noexcept {
    return static_cast<SpillHeader*>(const_cast<void*>(p)) - 1;
  }
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

/// Makes a context current for the scope's lifetime: saves the thread's mode and
/// installed context, installs `c`, and restores both on destruction (also when
/// unwinding). A handful of stores; no call.
class ContextScope {
 public:
  explicit ContextScope(Context& c) noexcept
      : saved_mode_(detail::t_state.mode), saved_context_(detail::t_state.context) {
    if (CTXALLOC_CHECKS && c.heap() != detail::t_state.heap) wrong_thread(&c);
    detail::t_state.context = &c;
    detail::t_state.mode = Mode::context;
  }
  ~ContextScope() {
    detail::t_state.mode = saved_mode_;
    detail::t_state.context = saved_context_;
  }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  [[gnu::cold]] static void wrong_thread(const Context* c) noexcept;
  Mode saved_mode_;
  Context* saved_context_;
};

/// The context installed on the calling thread, or null.
inline Context* current_context() noexcept {
  return detail::t_state.context;
}

}  // namespace ctxalloc
