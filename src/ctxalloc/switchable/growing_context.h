// GrowingContext: a context that starts small and grows by chunks (the flow context of
// ctxalloc's DPDK plugin; docs/design.md, "switchable", has the design,
// docs/BENCHMARKS.md, "flow_contexts", the numbers). After PostgreSQL's AllocSet and
// nginx's pools, for a packet app's flows:
//
//  - its first chunk (FlowChunks, GrowingOptions::first_chunk: 256 B..64 KiB) holds the
//    16-byte chunk header, this 48-byte object, then blocks; created from a pop of the
//    pool's page and a few stores;
//  - blocks are bumped from the current chunk, each after an 8-byte header that holds its
//    size and state, so that a free without a size (free(p)) needs no search; a request
//    below large_block aligned to 8 or 16 that fits is the inline fast path (no counter:
//    the chunks are the accounting), in 8-byte steps up to 128 B, above rounded to its
//    class's top; a free in the current chunk needs no segment lookup;
//  - when the chunk is full it chains another from the pool, about half the size of what
//    it holds already (so its chunks sum to ~1.4x per step, and at most ~1.4x what it
//    uses), up to max_chunk; the old chunk's tail becomes a free block;
//  - a freed block is reused by the context's later requests of its class: free lists by
//    size class (16 of 8 bytes up to 128 B, then two per doubling), in a table the
//    context makes inside itself on its first need; blocks are never split nor merged,
//    so fragments cannot pile up and a rolling window of state runs in constant memory;
//    the most recent block is freed in place (LIFO, like a bump);
//  - requests of large_block bytes or more are separate blocks of the heap's spill tree
//    (on the heap's context source when one is set -- the flow memory -- else counted
//    as spills), linked to the context and freed with it;
//  - a budget bounds what a context and its children hold: beyond it a request is
//    refused (counted: Refusal::budget) and takes nothing from other flows; when the pool
//    has no chunk left, the spill tree may serve the request as a large block (within
//    the heap's fallback tiers, counted), else it is refused (Refusal::memory);
//  - child contexts (create_child) have their own chunks, count against their root's
//    budget and are released with their parent; reset() keeps the first chunk only;
//  - release drops every chunk back to the pool at once: O(chunks), not O(blocks).
//
// Owner thread only, like every context; frees from other threads go back through the
// owner's heap (remote batches) as for every ctxalloc block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/core/layout.h"
#include "ctxalloc/core/poison.h"
#include "ctxalloc/switchable/context_base.h"
#include "ctxalloc/switchable/flow_chunks.h"

namespace ctxalloc {

class GrowingContext final : public Context {
 public:
  /// Bytes before a context's first block in its first chunk (chunk header + object),
  /// and per block.
  static constexpr std::size_t kBlockHeader = 8;
  /// The largest request served from a chunk (GrowingOptions::large_block is at most
  /// this; larger requests are large blocks).
  static constexpr std::size_t kMaxChunkBlock = FlowChunks::kPageBytes / 2;

  /// A root context in `pool` (the calling thread's heap's), or null: the pool's context
  /// limit (Refusal::limit) or no first chunk (Refusal::memory), both counted.
  static GrowingContext* create(FlowChunks& pool) noexcept {
    // Below the limit, no new peak, no memory tools: the inline path; else create_slow.
    if (!pool.create_is_plain()) [[unlikely]]
      return create_slow(pool);
    ChunkHeader* c = pool.obtain(pool.first_class(), FlowChunks::Use::first);
    if (c == nullptr) [[unlikely]]
      return create_failed(pool);
    detail::asan_unpoison(c + 1, sizeof(GrowingContext));
    auto* g = new (c + 1) GrowingContext(&pool, c, pool.first_bytes(), 0);
    pool.context_made();
    return g;
  }
  /// A child: its own chunks (first one child_chunk), released with this context,
  /// counted against the root's budget. Null when refused (budget, memory: counted).
  GrowingContext* create_child() noexcept;

  /// A block of the context: bumped from the current chunk when it fits (inline), else
  /// the slow path (free lists, a new chunk, a large block, a fallback tier). Null when
  /// refused (counted per reason in the pool's figures).
  Block allocate(Layout layout) noexcept {
    // Any size below large_block, aligned to 8 or 16 (ctxalloc::allocate's default is
    // 16): its class's size (exact 8-byte steps up to 128 B), bumped when it fits, after
    // an 8-byte fill when the bump pointer is 8 past 16 and the request wants 16.
    if (layout.align <= 16 && layout.size - 1 < kExactMax) [[likely]]
      return bump_inline((layout.size + 7) & ~std::size_t{7}, layout);
    // 128 < size < large_block (size 0 wraps: the slow path).
    if (layout.align <= 16 && layout.size - 1 < pool_->options().large_block - 1) [[likely]]
      return bump_inline(class_data(layout.size), layout);
    return allocate_slow(layout);
  }
  /// Frees a block of this context (p in one of its chunks, or one of its large or
  /// spilled blocks); `size` is the size asked for, or 0 when not known. Owner thread.
  void free(void* p, std::size_t size) noexcept {
    (void)size;  // the header has it
    // A block of the current chunk (below the bump pointer, past the chunk's headers):
    // no segment lookup; free_in_chunk checks its header. Else the lookup finds its owner.
    auto* b = static_cast<std::byte*>(p);
    const std::byte* start =
        chunks_ != nullptr ? reinterpret_cast<std::byte*>(chunks_ + 1) : first_data();
    if (b < cur_ && b >= start + kBlockHeader) [[likely]] {
      free_in_chunk(b);
      return;
    }
    free_elsewhere(p);
  }
  /// Resizes a block of this context: in place when it is the most recent block of the
  /// current chunk (growing into the chunk), or always when shrinking; else (Move::allowed)
  /// a new block, a copy, and the old one freed. Null on failure, p then intact.
  Block resize(void* p, Layout layout, Move move) noexcept;
  /// Usable bytes of the live block p of this context, or 0.
  std::size_t usable(const void* p) const noexcept;

  /// Frees everything but the first chunk (children, large blocks, further chunks).
  void reset() noexcept;
  /// Releases the context, its children and all their memory. Owner thread.
  void release() noexcept {
    // A flow that never grew: its first chunk back to the pool, nothing more (inline;
    // under the memory tools flags_ has kTools, so that release_slow marks the memory).
    const auto grown =
        reinterpret_cast<std::uintptr_t>(chunks_) | reinterpret_cast<std::uintptr_t>(ext_);
    if (grown == 0 && flags_ == 0 && live()) [[likely]] {
      FlowChunks* pool = pool_;
      ChunkHeader* first = first_chunk();
      detail::asan_poison(first + 1, FlowChunks::chunk_bytes(first) - sizeof(ChunkHeader));
      pool->context_released();
      pool->release(first);
      return;
    }
    release_slow();
  }

  /// The context whose chunk holds p (p in a flow_chunk segment with that tag), or null
  /// when p lies in no live context's chunk.
  static GrowingContext* owner_of(const void* p, const OwnerTag* tag) noexcept {
    ChunkHeader* c = FlowChunks::chunk_of(p, tag);
    if (c == nullptr || c->owner == kReleasedOwner) return nullptr;
    if (static_cast<const void*>(c + 1) > p) return nullptr;  // the chunk's header itself
    return c->owner;
  }

  FlowChunks* pool() const noexcept { return pool_; }
  ThreadHeap* heap() const noexcept { return pool_->heap(); }
  GrowingContext* parent() const noexcept { return is_child() ? links()->parent : nullptr; }
  bool is_child() const noexcept { return (flags_ & kChild) != 0; }
  /// Bytes this context holds: its chunks and large blocks (a root: its children's too).
  std::size_t held() const noexcept { return word_; }
  /// Chunks held (the first one included).
  std::size_t chunk_count() const noexcept;
  /// Live blocks and their bytes (a walk of the chunks and the large list).
  std::uint64_t live_blocks() const noexcept;
  std::uint64_t live_bytes() const noexcept;
  ContextStats stats() const noexcept;
  /// Walks every chunk's blocks, the free lists, the large blocks and the children.
  CheckResult check_invariants() const;

 private:
  template <class>
  friend struct TestPeer;
  friend class Context;

  // A block header: 64 bits whose high half is all ones and whose low half is a negative
  // 32-bit number (so a constant header is one store of a sign-extended immediate):
  // bit 31 set, an 11-bit state tag in bits 20-30, the data size in 8-byte units below.
  enum : std::uint32_t {
    kLive = 0x5a3,   // a block handed out
    kFree = 0x2c7,   // on a free list (its first word links it)
    kInner = 0x61e,  // the context's own table (Ext)
    kFill = 0x1b9,   // dead space: a chunk's tail too small to reuse, alignment padding
  };
  static constexpr std::uint64_t header(std::uint32_t tag, std::size_t units) noexcept {
    return 0xffff'ffff'8000'0000ULL | (std::uint64_t{tag} << 20) | units;
  }
  static constexpr std::uint64_t kUnitsMask = (1u << 20) - 1;
  static std::uint32_t tag_of(std::uint64_t h) noexcept {
    return (h >> 32) == 0xffff'ffffULL && (h & 0x8000'0000ULL) != 0
               ? static_cast<std::uint32_t>(h >> 20) & 0x7ff
               : 0;
  }
  static std::size_t data_of(std::uint64_t h) noexcept { return (h & kUnitsMask) << 3; }
  static std::uint64_t& header_at(const void* p) noexcept {
    return *reinterpret_cast<std::uint64_t*>(
        const_cast<std::byte*>(static_cast<const std::byte*>(p)) - kBlockHeader);
  }

  enum : std::uint8_t { kChild = 1, kTools = 2 };  // kTools: made under the memory tools
  static constexpr unsigned kClasses = 32;
  struct FreeBlock {
    FreeBlock* next;
  };
  // Made inside the context on first need (a free, a large block, a child).
  struct Ext {
    std::uint32_t nonempty;  // bit per free-list class
    std::uint32_t children;  // direct children live
    SpillHeader large;       // sentinel of the large and spilled blocks (circular)
    GrowingContext* first_child;
    std::uint64_t tree_held;   // a root: bytes its descendants hold
    std::uint64_t large_held;  // bytes of this context's large blocks (in held())
    FreeBlock* heads[kClasses];
  };
  // After the object of a child context.
  struct Links {
    GrowingContext* parent;
    GrowingContext* next;
    GrowingContext* prev;
  };

  GrowingContext(FlowChunks* pool, ChunkHeader* first, std::size_t first_bytes,
                 std::uint8_t flags) noexcept
      : Context(ContextForm::growing), pool_(pool), chunks_(nullptr), ext_(nullptr) {
    flags_ = flags;
    word_ = static_cast<std::uint32_t>(first_bytes);
    first->owner = this;  // first->next is not read while the context holds it
    cur_ = first_data() + kBlockHeader;
    end_ = reinterpret_cast<std::byte*>(first) + first_bytes + kBlockHeader;
  }
  [[gnu::cold]] static GrowingContext* create_failed(FlowChunks& pool) noexcept;
  [[gnu::noinline]] static GrowingContext* create_slow(FlowChunks& pool) noexcept;
  void release_slow() noexcept;
  bool live() const noexcept { return first_chunk()->owner == this; }
  ~GrowingContext() = default;

  Links* links() const noexcept {
    return reinterpret_cast<Links*>(const_cast<GrowingContext*>(this) + 1);
  }
  ChunkHeader* first_chunk() const noexcept {
    return reinterpret_cast<ChunkHeader*>(const_cast<GrowingContext*>(this)) - 1;
  }
  std::byte* first_data() const noexcept {
    auto* after = reinterpret_cast<std::byte*>(const_cast<GrowingContext*>(this) + 1);
    return is_child() ? after + sizeof(Links) : after;
  }
  ChunkHeader* current_chunk() const noexcept {
    return chunks_ != nullptr ? chunks_ : first_chunk();
  }
  static std::byte* data_start(const ChunkHeader* c, const GrowingContext* owner) noexcept;
  std::byte* chunk_end(const ChunkHeader* c) const noexcept {
    return reinterpret_cast<std::byte*>(const_cast<ChunkHeader*>(c)) + FlowChunks::chunk_bytes(c);
  }
  GrowingContext* root() noexcept;
  const GrowingContext* root() const noexcept;

  [[gnu::noinline]] Block allocate_slow(Layout layout) noexcept;
  void free_elsewhere(void* p) noexcept;  // free() of a block not in the current chunk
  // The data bytes of a request of n > 128 B (below large_block): its class's top.
  static std::size_t class_data(std::size_t n) noexcept {
    // 2^lg < n <= 2^(lg+1): the top is 3 * 2^(lg-1) when n fits it, else 2^(lg+1).
    const unsigned lg = log2_floor(n - 1);
    const std::size_t half = std::size_t{3} << (lg - 1);
    return n <= half ? half : std::size_t{2} << lg;
  }
  [[gnu::always_inline]] Block bump_inline(std::size_t data, Layout layout) noexcept {
    std::byte* p = cur_;
    // Blocks start 8-aligned; 16 wants the next 16 (an 8-byte fill before the header).
    const std::size_t pad =
        layout.align > 8 ? static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(p) & 8) : 0;
    std::byte* next = p + pad + data + kBlockHeader;
    if (next > end_) [[unlikely]]
      return allocate_slow(layout);
    if (pad != 0) {
      detail::asan_unpoison(p - kBlockHeader, kBlockHeader);
      *reinterpret_cast<std::uint64_t*>(p - kBlockHeader) = header(kFill, 0);
      p += pad;
    }
    cur_ = next;
    detail::asan_unpoison(p - kBlockHeader, data + kBlockHeader);
    *reinterpret_cast<std::uint64_t*>(p - kBlockHeader) = header(kLive, data >> 3);
    return Block{p, data};
  }
  Block bump(std::size_t data, std::size_t align) noexcept;  // in the current chunk, or null
  bool grow_chunks(std::size_t need) noexcept;
  // A freed block of class cls, or (larger) of the smallest nonempty class above.
  Block take_free(unsigned cls, std::size_t align, bool larger) noexcept;
  /// Sizes up to this are served in exact 8-byte steps (the inline fast path).
  static constexpr std::size_t kExactMax = 128;
  void file_free(std::byte* p, std::size_t data) noexcept;
  void close_chunk() noexcept;  // the current chunk's tail: a free block or fill
  void fill(std::byte* at, std::size_t bytes) noexcept;  // a header at `at` covering bytes
  Ext* ext() noexcept;
  // The budget: whether the root would hold more than it with `bytes` more (not counted
  // here), and the accounting (this context's held(), its root's tree_held).
  bool over_budget(std::size_t bytes) const noexcept;
  void account(std::ptrdiff_t delta) noexcept;
  bool charge(std::size_t bytes) noexcept {
    if (over_budget(bytes)) return false;
    account(static_cast<std::ptrdiff_t>(bytes));
    return true;
  }
  void uncharge(std::size_t bytes) noexcept { account(-static_cast<std::ptrdiff_t>(bytes)); }
  Block large(Layout layout) noexcept;
  void free_large(SpillHeader* h) noexcept;
  void release_contents() noexcept;  // children, large blocks, further chunks
  void unlink_child() noexcept;
  template <class F>
  void for_each_block(F&& f) const noexcept;
  std::byte* used_end(const ChunkHeader* c) const noexcept;
  bool owns_large(const void* p) const noexcept;
  std::uint64_t subtree_held() const noexcept;  // held() of this context and its descendants

  // Free-list classes: tops 8, 16, .., 128, then 192, 256, 384, .. 32 KiB. A free block
  // of `data` bytes is filed under floor_class (the largest top <= data); a request of n
  // takes from ceil_class(n) or above (every block there is >= n).
  static unsigned floor_class(std::size_t data) noexcept;
  static unsigned ceil_class(std::size_t n) noexcept;
  static std::size_t class_top(unsigned cls) noexcept;
  // p's header is at p - 8, in a chunk: when no tool poisons memory, a live block's
  // header (and that p is below the bump pointer) is checked inline, the most recent block goes
  // back to the bump, any other to its free list; else (the tools: the slow path checks the
  // header's shadow and marks the block) or a header that is not a live block's (misuse, reported)
  // the slow path.
  void free_in_chunk(std::byte* p) noexcept {
    if (!detail::poisoning_active()) [[likely]] {
      const std::uint64_t h = header_at(p);
      if ((h & ~kUnitsMask) == header(kLive, 0) && !past_bump(p)) [[likely]] {
        if (in_current_tail(p, data_of(h))) {
          cur_ = p;
        } else {
          file_free(p, data_of(h));
        }
        return;
      }
    }
    free_in_chunk_slow(p);
  }
  void free_in_chunk_slow(std::byte* p) noexcept;
  // p at or past the bump pointer in the current chunk: no live block (the newest one
  // freed in place keeps its header: a second free of it is caught here).
  bool past_bump(const std::byte* p) const noexcept { return p >= cur_ && p < end_; }
  bool in_current_tail(const std::byte* p, std::size_t data) const noexcept {
    return p + data + kBlockHeader == cur_;
  }

  FlowChunks* pool_;
  std::byte* cur_;       // where the next block's data starts (its header just before)
  std::byte* end_;       // the current chunk's end + 8 (null: every request slow, tools)
  ChunkHeader* chunks_;  // further chunks, newest (current) first
  Ext* ext_;
};
static_assert(sizeof(GrowingContext) == 48);

}  // namespace ctxalloc
