// Context: what every context is, whatever its form (include context.h, which also
// defines the forms and the inline dispatch). Two forms:
//
//  - fixed (FixedContext, context.h): one power-of-two block (4 KiB to 4 MiB) of the
//    thread's context arena, with a ContextAllocator (bump, bit set or tree by lifetime)
//    over it, and spills to the thread heap when it runs out;
//  - growing (GrowingContext, growing_context.h): a small first chunk of the thread's
//    flow pool that grows by chunks, with free lists by size, large blocks, a budget and
//    child contexts: the flow context of the DPDK plugin.
//
// Every context is made current with a ContextScope and released whole. The form is the
// object's first byte, so that one test picks the form's code (no virtual call).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/allocators/context_allocator.h"
#include "ctxalloc/config.h"
#include "ctxalloc/switchable/owner.h"
#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc {

struct ContextStats {
  Stats local;                         ///< the context's own allocator (growing: its chunks)
  std::uint64_t spills = 0;            ///< requests served by the thread heap's spill tree
  std::uint64_t spills_to_global = 0;  ///< of those, on memory of the global heap's source
  std::uint64_t spill_failures = 0;    ///< requests nothing could serve
  std::uint64_t spilled_live = 0;      ///< spilled blocks live now (growing: large ones too)
  std::uint64_t spilled_bytes = 0;     ///< their bytes
};

enum class ContextForm : std::uint8_t { fixed = 0xc1, growing = 0xc2 };

/// The header of every block a context keeps outside its own memory (a fixed context's
/// spills, a growing context's large blocks and spills), just before the caller's bytes,
/// linking it into its context's list so that releasing the context frees it too.
struct SpillHeader {
  SpillHeader* prev;
  SpillHeader* next;
  class Context* context;
  std::uint32_t offset;  // from the spill block's start to the caller's bytes
  std::uint32_t magic;
};
static_assert(sizeof(SpillHeader) == 32);

class FixedContext;
class GrowingContext;

class Context {
 public:
  static constexpr std::size_t kMinBytes = std::size_t{1} << ContextArenas::kMinShift;
  static constexpr std::size_t kMaxBytes = std::size_t{1} << ContextArenas::kMaxShift;

  /// A fixed context of the calling thread, of kind_for(lifetime), over a block of
  /// `bytes` (a power of two in [kMinBytes, kMaxBytes]). Null when the size or the options
  /// are refused (reported as bad_argument) or no memory is left.
  static Context* create(Lifetime lifetime, std::size_t bytes,
                         const ContextOptions& options = {}) noexcept;
  /// A growing context of the calling thread (its heap's flow pool: GrowingOptions set by
  /// its owner, the defaults elsewhere). Null when refused (counted in the pool).
  static Context* create_growing() noexcept;
  /// A child of this growing context (null for a fixed one: bad_argument).
  Context* create_child() noexcept;

  /// Frees the context and everything allocated in it (spilled, large and child blocks
  /// included). The object is gone afterwards. Owner thread only.
  void release_all() noexcept;
  /// The same, for a context expected to be empty: live blocks are misuse
  /// (live_on_release), then freed all the same.
  void release() noexcept;
  /// Forgets every block: a fixed context rewinds its allocator (its spilled blocks are
  /// freed); a growing one keeps its first chunk only.
  void reset() noexcept;

  /// Serves from the context (see each form); inline fast paths (context.h).
  Block allocate(Layout layout) noexcept;

  ContextStats stats() const noexcept;
  /// Requests that spilled and that nothing served (a per-flow tally at release).
  std::uint64_t spill_count() const noexcept;
  std::uint64_t spill_failure_count() const noexcept;
  CheckResult check_invariants() const;
  /// A fixed context's lifetime (a growing one reports long_lived).
  Lifetime lifetime() const noexcept;
  ContextKind kind() const noexcept;
  /// Bytes the context holds of its own memory: a fixed context's block, a growing
  /// context's chunks and large blocks.
  std::size_t bytes() const noexcept;
  ThreadHeap* heap() const noexcept;
  /// Live blocks: the context's own and the spilled ones.
  std::uint64_t live_blocks() const noexcept;
  ContextForm form() const noexcept { return form_; }
  bool growing() const noexcept { return form_ == ContextForm::growing; }

  // ----- for the switchable layer: the owner table's rows (owner.h) of the
  // context_arena, spill and flow_chunk kinds, defined in context.cc
  static const detail::OwnerOps kArenaOwner;
  static const detail::OwnerOps kSpillOwner;
  static const detail::OwnerOps kChunkOwner;
  /// The live context whose block or chunk holds p (a context_arena or flow_chunk tag),
  /// or null.
  static Context* of(const void* p, const OwnerTag* tag) noexcept;

  FixedContext& as_fixed() noexcept;
  const FixedContext& as_fixed() const noexcept;
  GrowingContext& as_growing() noexcept;
  const GrowingContext& as_growing() const noexcept;

 protected:
  explicit Context(ContextForm form) noexcept : form_(form) {}
  ~Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// A block of `layout` in the heap's spill tree for `owner`, linked into `list`;
  /// from_global set when it lies on the global heap's memory. Null when nothing serves.
  static Block spill_into(ThreadHeap* heap, SpillHeader* list, Context* owner, Layout layout,
                          SpillFrom* from) noexcept;
  /// Unlinks and frees a block spill_into made; returns its usable bytes.
  static std::size_t unspill(ThreadHeap* heap, SpillHeader* h) noexcept;
  static SpillHeader* spill_header(const void* p) noexcept {
    return static_cast<SpillHeader*>(const_cast<void*>(p)) - 1;
  }
  static constexpr std::uint32_t kSpillMagic = 0x5b11'1ed5;
  // Pieces of the owner table's rows: a spilled block or a chunk's block freed on the
  // thread that owns it; a growing context's block resized by its owner thread.
  static void free_spilled_local(void* p) noexcept;
  static void free_chunk_local(void* p, const OwnerTag* tag) noexcept;
  static void* reallocate_growing(GrowingContext& g, void* p, Layout layout) noexcept;
  /// Whether the context is live (not released), read through a spill header.
  bool live() const noexcept;

  ContextForm form_;
  std::uint8_t flags_ = 0;  // per form
  std::uint16_t spare_ = 0;
  std::uint32_t word_ = 0;  // per form (growing: bytes held)
};

/// What entering a context replaced on the calling thread: its mode and installed
/// context, given back to leave_context().
struct SavedContext {
  Mode mode;
  Context* context;
};

namespace detail {
[[gnu::cold]] void report_wrong_thread_enter(const Context* c) noexcept;
}  // namespace detail

/// Whether c belongs to the calling thread (its heap is the thread's), so that entering
/// it is allowed.
inline bool context_is_local(const Context& c) noexcept {
  return c.heap() == detail::t_state.heap;
}

/// The one way into a context, for ContextScope and both C APIs (ctxalloc_context_enter,
/// ctxalloc_dpdk_flow_enter): installs c on the calling thread in context mode and
/// returns what it replaced. A context of another thread is misuse (wrong_thread), which
/// checked builds report here; callers with an error return (the DPDK plugin) test
/// context_is_local() first. A handful of stores; no call.
inline SavedContext enter_context(Context& c) noexcept {
  detail::ThreadState& s = detail::t_state;
  const SavedContext saved{s.mode, s.context};
  if (CTXALLOC_CHECKS && !context_is_local(c)) detail::report_wrong_thread_enter(&c);
  s.context = &c;
  s.mode = Mode::context;
  return saved;
}

/// The calling thread's mode and installed context as they are now (leave_context() of
/// it changes nothing): what the C API returns for a NULL context.
inline SavedContext unchanged_context() noexcept {
  return SavedContext{detail::t_state.mode, detail::t_state.context};
}

/// Restores what enter_context() saved (scopes nest: leave in the reverse order).
inline void leave_context(SavedContext saved) noexcept {
  detail::t_state.mode = saved.mode;
  detail::t_state.context = saved.context;
}

/// Makes a context current for the scope's lifetime (enter_context), and restores what
/// it replaced on destruction (also when unwinding).
class ContextScope {
 public:
  explicit ContextScope(Context& c) noexcept : saved_(enter_context(c)) {}
  ~ContextScope() { leave_context(saved_); }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  SavedContext saved_;
};

/// The context installed on the calling thread, or null.
inline Context* current_context() noexcept {
  return detail::t_state.context;
}

}  // namespace ctxalloc
