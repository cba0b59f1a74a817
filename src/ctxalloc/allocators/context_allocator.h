// ContextAllocator: the allocator of one context (a flow's, a coroutine's), chosen by how
// long its blocks live: short-lived -> BumpAllocator (never frees but the most recent
// block; reset() reclaims everything), medium -> BitSetAllocator (blocks of one size,
// frees anywhere), long-lived -> a TreeAllocator (any size, coalescing). All three work
// over ONE region the context does not own: in the switchable layer a block of the
// thread's context arena, with the context's own header before it.
//
// One interface without virtual calls: a tagged union of the three allocators, and every
// operation is a switch on the tag that calls the member directly, so each allocator's
// inline fast path stays inline. Cost over the bare allocator: a load and a compare or
// two of the tag per call, plus one store on the bump allocator's allocate (the most
// recent block's start, so allocated_size and an unsized free can recover its size);
// docs/BENCHMARKS.md ("context") measures it against the bare allocators.
//
// Requests the context cannot serve fail (a null Block, counted): the tree's requests
// above its largest class are refused, not sent elsewhere, because the switchable layer
// decides where a context's overflow goes (the thread heap, counted as a spill).
// One owner thread; stats() may be read from any, except while reset() rebuilds the
// running allocator (the counters it reads are being reconstructed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "ctxalloc/allocators/bitset_allocator.h"
#include "ctxalloc/allocators/bump_allocator.h"
#include "ctxalloc/allocators/null_allocator.h"
#include "ctxalloc/allocators/tree_allocator.h"
#include "ctxalloc/allocators/tree_config.h"
#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"

namespace ctxalloc {

/// How long a context's blocks live; it picks the allocator.
enum class Lifetime : std::uint8_t {
  short_lived,  ///< freed together when the context ends: bump
  medium,       ///< freed in any order, similar sizes: bit set
  long_lived,   ///< freed in any order, any size, the context lives long: trees
};

/// The allocator a context runs (none: the configuration was refused, nothing is served).
/// `growing` is not a ContextAllocator kind: it names the switchable layer's growing
/// (chunked) contexts (switchable/growing_context.h), so that Context::kind() covers all.
enum class ContextKind : std::uint8_t { bump, bitset, tree, none, growing };

/// "short_lived", "medium", "long_lived".
const char* to_string(Lifetime l) noexcept;
/// "bump", "bitset", "tree", "none", "growing".
const char* to_string(ContextKind k) noexcept;

/// The allocator kind of a lifetime (short -> bump, medium -> bit set, long -> tree).
constexpr ContextKind kind_for(Lifetime l) noexcept {
  switch (l) {
    case Lifetime::short_lived:
      return ContextKind::bump;
    case Lifetime::medium:
      return ContextKind::bitset;
    case Lifetime::long_lived:
      return ContextKind::tree;
  }
  return ContextKind::none;
}

/// The tree a context runs: requests above its largest class are refused (the switchable
/// layer sends them elsewhere), so its oversize allocator is the NullAllocator.
using ContextTree = BasicTreeAllocator<NullAllocator>;

/// Per-kind settings; each kind reads only its own.
struct ContextOptions {
  /// The bit set's block size: a power of two >= 8 (BitSetAllocator::kMinBlockSize).
  std::size_t bitset_block_size = 64;
  /// The tree's classes; nothing: ContextAllocator::tree_config_for(region size).
  std::optional<TreeConfig> tree;
};

class ContextAllocator {
 public:
  /// Why a lifetime, region and options cannot make a context (see validate()).
  enum class ConfigError : std::uint8_t {
    none,
    bad_lifetime,      ///< not one of the three Lifetime values
    null_region,       ///< a null pointer or a size of 0
    region_too_small,  ///< the kind's metadata and one block (tree: one block of its
                       ///< largest class) do not fit
    bad_block_size,    ///< the bit set's block size is not a power of two >= 8
    region_wraps,      ///< the region runs past the end of the address space
  };

  /// "region too small for the tree's metadata and its largest class", ...
  static const char* to_string(ConfigError e) noexcept;

  /// Whether ContextAllocator(lifetime, region, options) would serve requests.
  static ConfigError validate(Lifetime lifetime, Block region,
                              const ContextOptions& options = {}) noexcept;

  /// The tree classes a context of region_size bytes gets by default: 32 B up to the
  /// largest power of two <= region_size / 4 (at least 32 B). A quarter, because a block
  /// larger than that would leave a context little room for anything else: such requests
  /// are refused and go to the thread heap. 16 KiB -> 32 B..4 KiB (8 classes); 16 MiB ->
  /// 32 B..4 MiB (18 classes). The tree's metadata costs 104 B + 1 byte per 32 B granule
  /// (+ padding), plus the tree's own object at the region's start (tree_object_bytes()).
  static TreeConfig tree_config_for(std::size_t region_size) noexcept;

  /// Bytes a tree context takes from the start of its region for the tree object itself
  /// (its 2 x 30 class trees and counters, ~2 KiB), rounded to a cache line. Kept in the
  /// region rather than in the ContextAllocator so that bump and bit-set contexts, which
  /// need a tenth of it, stay small where the switchable layer keeps context headers.
  static constexpr std::size_t tree_object_bytes() noexcept {
    return align_up(sizeof(ContextTree), kTreeObjectAlign);
  }

  /// A context of kind_for(lifetime) over [region.ptr, region.ptr + region.size), which
  /// it does not own and which must outlive it. Precondition: validate() says none.
  /// Otherwise the constructor reports Misuse::bad_argument (which aborts in builds with
  /// checks) and the context serves nothing: kind() is none, every allocation fails,
  /// config_error() says why.
  ContextAllocator(Lifetime lifetime, Block region, const ContextOptions& options = {}) noexcept;
  /// Destroys the running allocator (the region is left to its owner; under ASan it is
  /// made addressable again).
  ~ContextAllocator();

  ContextAllocator(const ContextAllocator&) = delete;
  ContextAllocator& operator=(const ContextAllocator&) = delete;

  /// The running allocator's allocate. Bump: also remembers the block as the most recent.
  /// The tag is tested bump first, then bit set, the tree taking the rest, and the bump
  /// path is laid out inline ([[likely]]): a compare or a taken jump costs the bump
  /// allocator, whose own path is a handful of instructions, the most, and the tree, whose
  /// own path is far longer, the least (docs/BENCHMARKS.md, "context").
  Block allocate(Layout layout) noexcept {
    if (tag_ == ContextKind::bump) [[likely]] {
      const Block b = bump_.allocate(layout);
      if (b.size != 0) recent_ = b.ptr;
      return b;
    }
    if (tag_ == ContextKind::bitset) return bitset_.allocate(layout);
    return tree_->allocate(layout);
  }

  /// The bump kind's fast path alone, for callers that inline it (Context::allocate):
  /// the block, or an empty Block (nothing done) when this is not a bump context or the
  /// bump allocator would take its slow path; allocate() then decides.
  Block try_allocate_bump(Layout layout) noexcept {
    if (tag_ != ContextKind::bump) return Block{};
    const Block b = bump_.try_allocate(layout);
    if (b.ptr != nullptr) recent_ = b.ptr;
    return b;
  }

  /// As allocate, and the whole reported size is zero.
  Block allocate_zeroed(Layout layout) noexcept {
    return detail::allocate_zeroed_by_fill(*this, layout);
  }

  /// The running allocator's deallocate. block.size may be 0 ("not known") for every
  /// kind: the bit set and the tree recover the size themselves; the bump allocator only
  /// for the most recent block (which is then freed in place), any other block is
  /// counted as freed and its bytes wait for reset(), as with a size.
  void deallocate(Block block, std::size_t align) noexcept {
    if (tag_ == ContextKind::bump) [[likely]] {
      if (block.size == 0) [[unlikely]]
        block.size = recent_size(block.ptr);
      bump_.deallocate(block, align);
      return;
    }
    if (tag_ == ContextKind::bitset) {
      bitset_.deallocate(block, align);
      return;
    }
    tree_->deallocate(block, align);
  }

  /// The running allocator's grow (in place where it can; Move::forbidden otherwise fails
  /// and leaves the block live and untouched).
  Block grow(Block block, Layout new_layout, Move move) noexcept;

  /// The running allocator's shrink (always in place for the three kinds). Shrinking to 0
  /// frees the block.
  Block shrink(Block block, Layout new_layout, Move move) noexcept;

  /// Whether p lies in the context's region (metadata included): no dispatch, every kind
  /// owns exactly its region.
  bool contains(const void* p) const noexcept {
    return reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(region_.ptr) <
           region_.size;
  }

  /// The size of the live block that starts at p, recovered without the caller's help,
  /// or 0 when it cannot be told. Bit set and tree: any live block (0 for a freed block,
  /// an interior or a foreign pointer). Bump: only the most recent allocation while it
  /// still ends where the free space begins (its size as grown or shrunk since); 0 for
  /// every other block, because a bump allocator keeps no record of older blocks.
  std::size_t allocated_size(const void* p) const noexcept {
    if (tag_ == ContextKind::bump) return recent_size(p);
    if (tag_ == ContextKind::bitset) return bitset_.allocated_size(p);
    return tree_->allocated_size(p);
  }

  /// Bump contexts: the bytes from p, which must lie in the part of the region handed
  /// out, to where the free space begins: an upper bound on the size of a block at p that
  /// allocated_size() no longer knows (any block but the most recent). 0 when p is not in
  /// that part, or for the other kinds. Lets reallocate() move an older block: copying
  /// that many bytes (or fewer) keeps the block's contents and reads only handed-out
  /// memory.
  std::size_t bump_extent(const void* p) const noexcept {
    if (tag_ != ContextKind::bump) return 0;
    const std::byte* begin = bump_.region().ptr;
    const std::byte* next = begin + bump_.used();
    const auto* b = static_cast<const std::byte*>(p);
    return b >= begin && b < next ? static_cast<std::size_t>(next - b) : 0;
  }

  /// Forgets every block at once and starts over on the same region, with the same
  /// settings: the bump allocator rewinds; the bit set and the tree are built afresh
  /// (their bit sets / granule map are cleared): O(size of the metadata), never a walk
  /// of the live blocks. Blocks live at the reset are counted as freed
  /// (blocks_released_by_reset()); every pointer into the context is dead afterwards.
  /// Counters, peak included, carry over.
  void reset() noexcept;

  /// The allocator this context runs (none when the configuration was refused).
  ContextKind kind() const noexcept {
    return config_error_ == ConfigError::none ? tag_ : ContextKind::none;
  }
  Lifetime lifetime() const noexcept { return lifetime_; }
  /// The region as given (a null Block when the configuration was refused).
  Block region() const noexcept { return region_; }
  /// ConfigError::none unless the constructor was given a bad configuration.
  ConfigError config_error() const noexcept { return config_error_; }
  /// The classes of the tree (meaningful for the tree kind).
  const TreeConfig& tree_config() const noexcept { return tree_config_; }
  /// The bit set's block size (meaningful for the bit set kind).
  std::size_t bitset_block_size() const noexcept { return bitset_block_size_; }

  /// reset() calls so far.
  std::uint64_t resets() const noexcept { return resets_.get(); }
  /// Blocks that were live when reset() forgot them (counted in stats().deallocations).
  std::uint64_t blocks_released_by_reset() const noexcept { return released_by_reset_.get(); }

  /// The running allocator's counters plus those of the allocators reset() replaced:
  /// allocations, deallocations (with the blocks reset released), grows, shrinks,
  /// failures and misuses add up over the context's life; bytes_in_use and capacity are
  /// the running allocator's; peak_bytes the highest ever.
  Stats stats() const noexcept;

  /// The context's own invariants (the tag agrees with the lifetime; the running
  /// allocator manages exactly the region, with the settings it was built with; the
  /// most recent bump block lies in the region; the counters carried over by reset()
  /// are consistent), then the running allocator's check_invariants(). Owner thread.
  CheckResult check_invariants() const;

 private:
  template <class>
  friend struct TestPeer;

  // The most recent bump block's size, when p is its start and it still ends where the
  // bump allocator's free space begins; else 0. Blocks after it were freed back down to
  // it (next < recent_ then) or it is the most recent one, so [recent_, next) is it.
  std::size_t recent_size(const void* p) const noexcept {
    if (p != recent_ || p == nullptr) return 0;
    const std::byte* next = bump_.region().ptr + bump_.used();
    return recent_ < next ? static_cast<std::size_t>(next - recent_) : 0;
  }
  // After a bump grow or shrink that returned b: b is the most recent block when it ends
  // where the free space begins.
  void note_bump_result(Block b) noexcept {
    if (b.size != 0 && b.ptr + b.size == bump_.region().ptr + bump_.used()) recent_ = b.ptr;
  }

  static constexpr std::size_t kTreeObjectAlign = 64;
  // Where a tree context's ContextTree object goes, and the tree's own region after it.
  static std::byte* tree_object_at(Block region) noexcept {
    return reinterpret_cast<std::byte*>(
        align_up(reinterpret_cast<std::uintptr_t>(region.ptr), kTreeObjectAlign));
  }
  static Block tree_region_of(Block region) noexcept;

  void construct() noexcept;  // builds the member tag_ names over region_
  void destroy() noexcept;    // destroys it
  CheckResult check_own() const;

  // The tag: which member of the union is alive; bump, bitset or tree, never none (a
  // refused configuration runs a bump allocator over an empty region, which refuses
  // every request and claims no pointer: no fourth case in the dispatch).
  ContextKind tag_;
  Lifetime lifetime_;
  ConfigError config_error_ = ConfigError::none;
  union {
    BumpAllocator bump_;
    BitSetAllocator bitset_;
    ContextTree* tree_;  // at the start of the region (tree_object_bytes()), see below
  };
  const std::byte* recent_ = nullptr;  // bump: start of the most recent allocation
  Block region_;
  std::size_t bitset_block_size_;
  TreeConfig tree_config_;
  // Counters of the allocators reset() replaced (bytes_in_use unused), one writer.
  StatsCounters retired_;
  Counter resets_;
  Counter released_by_reset_;
};

static_assert(Allocator<ContextAllocator>);

}  // namespace ctxalloc
