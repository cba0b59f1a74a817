// TreeAllocator: the crate's MultipleBinarySearchTreeAllocator, a general-purpose
// allocator over one or more regions. Power-of-two size classes (32 B to 1 MiB by
// default), one address-ordered red-black tree of free spans per class, the tree node
// inside the free span, a bitmap of non-empty classes; splitting, coalescing with both
// neighbours, aligned allocation inside a larger span, growing and shrinking in place.
// Block sizes are kept outside the blocks, in a granule map in each region's metadata
// area, so free needs no size and allocated blocks carry no header.
//
// Requests above the largest class go to the Oversize allocator (a template parameter;
// MallocAllocator by default), counted. Everything else is served from the regions and
// fails (a null Block, counted) when no free span fits: adding regions is the owner's
// decision (the GlobalHeap grows chunk by chunk with add_region and gives entirely free
// chunks back with take_free_region).
//
// Costs: allocate is a bit scan and the removal of the lowest span of a class, with one
// or two re-insertions for the rest: O(log n) in the spans of a class, no walk.
// deallocate looks the region up (O(1) for the region used last, O(log R) otherwise),
// reads the map and merges: at most two removals and one insertion. See detail/tree_core.h.
// One owner thread; stats() may be read from any.
//
// Checked builds with canaries (CTXALLOC_CANARY=1, detail/canary.h) put a canary in the slack of a
// block's last granule (the bytes between the size asked for and the granule boundary, at most 63
// of them): the map byte of the block's last granule, which is otherwise unused, records how many;
// the block's reported size ends where the canary begins, and a free checks it. Blocks of one
// granule have no such map byte and carry no canary; nor do oversize blocks.
#pragma once

#include <cstddef>
#include <cstring>
#include <utility>

#include "ctxalloc/allocators/detail/canary.h"
#include "ctxalloc/allocators/detail/tree_core.h"
#include "ctxalloc/allocators/malloc_allocator.h"
#include "ctxalloc/allocators/tree_config.h"
#include "ctxalloc/config.h"
#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"

namespace ctxalloc {

template <Allocator Oversize = MallocAllocator>
class BasicTreeAllocator {
 public:
  /// An allocator with no region yet (add_region gives it memory). Oversize is built
  /// from oversize_args.
  template <class... OversizeArgs>
  explicit BasicTreeAllocator(TreeConfig config = {}, OversizeArgs&&... oversize_args)
      : core_(config),
        oversize_(std::forward<OversizeArgs>(oversize_args)...),
        canaries_(detail::canaries_requested()) {}

  /// An allocator over one region, which it does not own (see add_region).
  explicit BasicTreeAllocator(Block region, TreeConfig config = {}) noexcept
      : core_(config), canaries_(detail::canaries_requested()) {
    add_region(region);
  }

  BasicTreeAllocator(const BasicTreeAllocator&) = delete;
  BasicTreeAllocator& operator=(const BasicTreeAllocator&) = delete;

  /// Rounds the size up to the granule (the smallest class); the whole rounded size is
  /// the caller's (Block::size).
  Block allocate(Layout layout) noexcept {
    if (CTXALLOC_CHECKS && !layout.valid()) return allocate_slow(layout);
    if (layout.size - 1 < core_.max_class() && layout.align <= core_.granule()) [[likely]] {
      const std::size_t n = align_up(layout.size, core_.granule());
      if (std::byte* p = core_.take(n, layout.align)) [[likely]] {
        counters_.on_allocate(n);
        if (CTXALLOC_CHECKS) return with_canary(p, n, layout.size);
        return Block{p, n};
      }
      return refuse();
    }
    return allocate_slow(layout);
  }

  Block allocate_zeroed(Layout layout) noexcept {
    return detail::allocate_zeroed_by_fill(*this, layout);
  }

  /// Needs no size: block.size may be anything up to the size allocate reported (0 for
  /// an unsized free). Double frees, interior and foreign pointers and sizes larger than
  /// the block are misuse, reported and otherwise ignored.
  void deallocate(Block block, std::size_t align) noexcept {
    detail::TreeRegion* r = core_.region_of(block.ptr);
    if (r != nullptr) [[likely]] {
      const std::size_t len = core_.live_length(*r, block.ptr);
      if (len != 0 && block.size <= (len << core_.shift())) [[likely]] {
        if (CTXALLOC_CHECKS && !checked_free(*r, block, len, align)) return;
        core_.release(*r, core_.index_of(*r, block.ptr), len);
        counters_.on_deallocate(len << core_.shift());
        return;
      }
      bad_block(*r, block, len, "deallocate");
      return;
    }
    deallocate_elsewhere(block, align);
  }

  /// In place when the block already has room or the free span after it is long enough
  /// (also past the largest class); otherwise, unless Move::forbidden, a new block is
  /// secured first, the bytes copied and the old block freed. Oversize blocks are grown
  /// by the oversize allocator.
  Block grow(Block block, Layout new_layout, Move move) noexcept {
    if (new_layout.size < block.size || !new_layout.valid()) return bad_argument(block.ptr, "grow");
    if (block.size == 0 && is_zero_size_sentinel(block.ptr))
      return move == Move::forbidden ? refuse() : allocate(new_layout);
    detail::TreeRegion* r = core_.region_of(block.ptr);
    if (r == nullptr) return resize_elsewhere(block, new_layout, move, true);
    const std::size_t len = core_.live_length(*r, block.ptr);
    if (len == 0 || block.size > usable(*r, block.ptr, len)) {
      counters_.failures.add(1);
      bad_block(*r, block, len, "grow");
      return Block{};
    }
    if (CTXALLOC_CHECKS) check_canary(*r, block.ptr, len, "grow");
    const std::size_t have = len << core_.shift();
    if (is_aligned(block.ptr, new_layout.align)) {
      if (new_layout.size <= have) {
        note_resize(true, have, have);
        return with_canary(block.ptr, have, new_layout.size);
      }
      const std::size_t limit = detail::GranuleMap::kMaxLength << core_.shift();
      if (new_layout.size <= limit) {
        const std::size_t n = align_up(new_layout.size, core_.granule());
        if (core_.grow_in_place(*r, core_.index_of(*r, block.ptr), len, n >> core_.shift())) {
          note_resize(true, have, n);
          return with_canary(block.ptr, n, new_layout.size);
        }
      }
    }
    if (move == Move::forbidden) return refuse();
    Block fresh = allocate(new_layout);
    if (fresh.ptr == nullptr) return fresh;
    std::memcpy(fresh.ptr, block.ptr, block.size);
    core_.release(*r, core_.index_of(*r, block.ptr), len);
    counters_.on_deallocate(have);  // as the bump allocator counts a move: +1 allocation,
    counters_.grows.add(1);         // +1 deallocation, +1 grow
    return fresh;
  }

  /// In place for blocks of the regions that meet new_layout.align: the tail goes back to
  /// the free spans. A block that does not meet it moves (Move::allowed: a new block
  /// first, then the copy) or the shrink fails (Move::forbidden). Shrinking to 0 frees
  /// the block.
  Block shrink(Block block, Layout new_layout, Move move) noexcept {
    if (new_layout.size > block.size || !new_layout.valid())
      return bad_argument(block.ptr, "shrink");
    if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return block;
    if (new_layout.size == 0) {
      deallocate(block, new_layout.align);
      return allocate(new_layout);
    }
    detail::TreeRegion* r = core_.region_of(block.ptr);
    if (r == nullptr) return resize_elsewhere(block, new_layout, move, false);
    const std::size_t len = core_.live_length(*r, block.ptr);
    if (len == 0 || block.size > usable(*r, block.ptr, len)) {
      counters_.failures.add(1);
      bad_block(*r, block, len, "shrink");
      return Block{};
    }
    if (CTXALLOC_CHECKS) check_canary(*r, block.ptr, len, "shrink");
    const std::size_t have = len << core_.shift();
    if (!is_aligned(block.ptr, new_layout.align)) {
      if (move == Move::forbidden) return refuse();
      Block fresh = allocate(new_layout);
      if (fresh.ptr == nullptr) return fresh;
      std::memcpy(fresh.ptr, block.ptr, new_layout.size);
      core_.release(*r, core_.index_of(*r, block.ptr), len);
      counters_.on_deallocate(have);  // counted as grow counts a move
      counters_.shrinks.add(1);
      return fresh;
    }
    const std::size_t n = align_up(new_layout.size, core_.granule());
    if (n < have) core_.shrink_in_place(*r, core_.index_of(*r, block.ptr), len, n >> core_.shift());
    note_resize(false, have, n);
    return with_canary(block.ptr, n, new_layout.size);
  }

  /// True for any address in the regions (metadata included) and for what the oversize
  /// allocator claims.
  bool contains(const void* p) const noexcept {
    return core_.region_of(p) != nullptr || oversize_.contains(p);
  }

  /// The size of the live block starting at p, recovered from the granule map (or from
  /// the oversize allocator when it can tell); 0 when p is not a live block's start.
  std::size_t allocated_size(const void* p) const noexcept {
    if (const detail::TreeRegion* r = core_.region_of(p))
      return usable(*r, p, core_.live_length(*r, p));
    if constexpr (requires { oversize_.allocated_size(p); }) return oversize_.allocated_size(p);
    return 0;
  }

  /// The size of the live block at p in the region that add_region got as a block
  /// starting at region_start, read from that region's own header and granule map only.
  /// Safe from a thread that does not own the allocator, as long as the block stays live
  /// meanwhile: the owner writes a block's map bytes only when it allocates, frees or
  /// resizes that block. 0 when p is not the start of a live block there.
  static std::size_t live_size_in_region(const void* region_start, const void* p) noexcept {
    const auto* r = reinterpret_cast<const detail::TreeRegion*>(
        align_up(reinterpret_cast<std::uintptr_t>(region_start), alignof(detail::TreeRegion)));
    if (r->magic != detail::TreeRegion::kMagic || r->granules == 0 || !r->in_usable(p)) return 0;
    const auto granule = static_cast<std::size_t>(r->end - r->begin) / r->granules;
    const auto off = static_cast<std::size_t>(static_cast<const std::byte*>(p) - r->begin);
    if (off % granule != 0) return 0;
    const std::uint8_t* m = r->map + off / granule;
    if (!detail::GranuleMap::is_live_head(*m)) return 0;
    const std::size_t len = detail::GranuleMap::live_length(m);
    return len * granule - canary_length(m, len);
  }

  // ----------------------------------------------------------------------- regions

  /// Adds a region (which the allocator does not own and which must outlive it or be
  /// taken back); its start holds the region's metadata: ~100 B + 1 byte per granule.
  /// Never merged with another region. known_zero: the memory is all zero (fresh mmap),
  /// so the map's pages are left untouched. False (counted as a failure) when the region
  /// is too small or overlaps one already added.
  bool add_region(Block region, bool known_zero = false) noexcept {
    if (core_.add_region(region, known_zero)) return true;
    counters_.failures.add(1);
    return false;
  }

  /// Takes back a region that is entirely free (the one free for longest), exactly as it
  /// was added; a null Block when there is none.
  Block take_free_region() noexcept { return core_.take_free_region(); }

  std::size_t region_count() const noexcept { return core_.region_count(); }
  /// Regions that are entirely free (take_free_region would return one).
  std::size_t free_region_count() const noexcept { return core_.free_region_count(); }
  /// Usable bytes of all regions.
  std::size_t capacity() const noexcept { return core_.capacity(); }
  /// Bytes of the regions not held by live blocks.
  std::size_t free_bytes() const noexcept {
    return core_.capacity() - (counters_.bytes_in_use.get() - oversize_.stats().bytes_in_use);
  }
  /// Region bytes spent on headers, granule maps and padding.
  std::size_t metadata_bytes() const noexcept { return core_.metadata_bytes(); }
  /// The longest free span: the largest request (up to the largest class) that succeeds
  /// now. Walks the spans of the highest non-empty class: for tests and diagnostics.
  std::size_t largest_free_span() const noexcept { return core_.largest_free_span(); }

  const TreeConfig& config() const noexcept { return core_.config(); }
  /// Requests that went to the oversize allocator.
  std::uint64_t oversize_allocations() const noexcept { return oversize_count_.get(); }
  Oversize& oversize() noexcept { return oversize_; }
  const Oversize& oversize() const noexcept { return oversize_; }

  /// Counters over both the regions and the oversize allocator; capacity is the regions'.
  Stats stats() const noexcept {
    Stats s = counters_.snapshot();
    s.capacity = core_.capacity();
    return s;
  }

  /// Walks every region and tree (see TreeCore::check_invariants), then checks that the
  /// statistics agree with what the walk counted, and the oversize allocator.
  CheckResult check_invariants() const {
    detail::TreeCore::Census c;
    if (CheckResult r = core_.check_invariants(&c); !r) return r;
    const Stats s = counters_.snapshot();
    const Stats o = oversize_.stats();
    CTXALLOC_INVARIANT(c.live_bytes + o.bytes_in_use == s.bytes_in_use, "tree: regions hold ",
                       c.live_bytes, " live bytes and oversize ", o.bytes_in_use, ", stats count ",
                       s.bytes_in_use);
    CTXALLOC_INVARIANT(c.live_blocks + o.live_blocks() == s.live_blocks(), "tree: regions hold ",
                       c.live_blocks, " live blocks and oversize ", o.live_blocks(),
                       ", stats count ", s.live_blocks());
    CTXALLOC_INVARIANT(c.live_bytes + c.free_bytes == core_.capacity(), "tree: ", c.live_bytes,
                       " live and ", c.free_bytes, " free bytes do not add up to capacity ",
                       core_.capacity());
    CTXALLOC_INVARIANT(s.peak_bytes >= s.bytes_in_use, "tree: peak ", s.peak_bytes,
                       " below bytes in use ", s.bytes_in_use);
    if (CheckResult r = oversize_.check_invariants(); !r)
      return check_fail("tree: oversize allocator: ", r.error());
    return CheckResult::ok();
  }

 private:
  template <class>
  friend struct TestPeer;

  // Invalid layouts (checked builds), zero sizes, large alignments, oversize requests.
  [[gnu::noinline]] Block allocate_slow(Layout layout) noexcept {
    if (auto answer = allocate_prologue(layout, [&] { return bad_argument(nullptr, "allocate"); }))
      return *answer;
    const std::size_t max = core_.max_class();
    const std::size_t g = core_.granule();
    const std::size_t pad = layout.align > g ? layout.align - g : 0;
    if (layout.size <= max && pad <= max - align_up(layout.size, g)) {
      const std::size_t n = align_up(layout.size, g);
      if (std::byte* p = core_.take(n, layout.align)) {
        counters_.on_allocate(n);
        return with_canary(p, n, layout.size);
      }
      return refuse();
    }
    const std::uint64_t before = oversize_.stats().bytes_in_use;
    Block b = oversize_.allocate(layout);
    if (b.ptr == nullptr) return refuse();
    oversize_count_.add(1);
    counters_.on_allocate(oversize_.stats().bytes_in_use - before);
    return b;
  }

  // Not in any region: null, the zero-size sentinel, an oversize block, or foreign.
  void deallocate_elsewhere(Block block, std::size_t align) noexcept {
    if (block.ptr == nullptr) return;
    if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return;
    if (!oversize_.contains(block.ptr)) {
      misuse(Misuse::foreign_pointer, block.ptr, "deallocate");
      return;
    }
    const Stats before = oversize_.stats();
    oversize_.deallocate(block, align);
    const Stats after = oversize_.stats();
    if (after.deallocations == before.deallocations) {  // the oversize allocator refused it
      counters_.misuses.add(after.misuses - before.misuses);
      return;
    }
    counters_.on_deallocate(before.bytes_in_use - after.bytes_in_use);
  }

  Block resize_elsewhere(Block block, Layout new_layout, Move move, bool grow) noexcept {
    if (!oversize_.contains(block.ptr)) {
      counters_.failures.add(1);
      return misuse(Misuse::foreign_pointer, block.ptr, grow ? "grow" : "shrink");
    }
    const std::uint64_t before = oversize_.stats().bytes_in_use;
    Block b =
        grow ? oversize_.grow(block, new_layout, move) : oversize_.shrink(block, new_layout, move);
    if (b.ptr == nullptr) return refuse();
    note_resize(grow, before, oversize_.stats().bytes_in_use);
    return b;
  }

  // A pointer in a region that is not a live block's start, or a size larger than the
  // block: a double free (the pointer is in a free span), an interior or metadata
  // pointer, or a wrong size.
  [[gnu::noinline, gnu::cold]] void bad_block(const detail::TreeRegion& r, Block block,
                                              std::size_t len, const char* op) noexcept {
    const Misuse what = len != 0 ? Misuse::wrong_size : core_.classify(r, block.ptr);
    misuse(what, block.ptr, op);
  }

  // ------------------------------------------------------------------ canaries
  // The canary's length of the live block of len granules whose map head is m: the map
  // byte of its last granule when that is an interior byte (00rrrrrr), else 0. Always 0
  // outside checked builds, where nothing writes it.
  static std::size_t canary_length(const std::uint8_t* m, std::size_t len) noexcept {
    if (!CTXALLOC_CHECKS || len < 2) return 0;
    const std::uint8_t b = m[len - 1];
    return (b & detail::GranuleMap::kKindMask) == 0 ? b : 0;
  }

  // The bytes of the live block at p (len granules) its caller may use.
  std::size_t usable(const detail::TreeRegion& r, const void* p, std::size_t len) const noexcept {
    return (len << core_.shift()) - canary_length(r.map + core_.index_of(r, p), len);
  }

  // Checked builds: writes the canary after `requested` bytes of the live block at p of
  // n bytes (recorded in its last granule's map byte) and returns the reported block.
  Block with_canary(std::byte* p, std::size_t n, std::size_t requested) noexcept {
    if (!CTXALLOC_CHECKS || !canaries_) return Block{p, n};
    const std::size_t len = n >> core_.shift();
    if (len < 2) return Block{p, n};
    detail::TreeRegion& r = *core_.region_of(p);
    const std::size_t slack = n - requested;
    const std::size_t c = slack < 63 ? slack : 63;
    r.map[core_.index_of(r, p) + len - 1] = static_cast<std::uint8_t>(c);
    detail::write_canary(p + n - c, p + n);
    return Block{p, n - c};
  }

  // Checked builds: reports an overrun of the canary of the live block at p (len
  // granules) under op; the caller goes on (the overrun stayed inside the block).
  void check_canary(const detail::TreeRegion& r, const std::byte* p, std::size_t len,
                    const char* op) noexcept {
    const std::size_t c = canary_length(r.map + core_.index_of(r, p), len);
    const std::byte* end = p + (len << core_.shift());
    if (c != 0 && !detail::canary_intact(end - c, end)) misuse(Misuse::overflow, p, op);
  }

  // Checked builds, before a free: the canary, the size (larger than the block's usable
  // size: reported, nothing freed) and the alignment (one the block does not have:
  // reported, nothing freed). False: do not free.
  [[gnu::noinline]] bool checked_free(const detail::TreeRegion& r, Block block, std::size_t len,
                                      std::size_t align) noexcept {
    if (block.size > usable(r, block.ptr, len)) {
      misuse(Misuse::wrong_size, block.ptr, "deallocate");
      return false;
    }
    if (misaligned(block.ptr, align)) {
      misuse(Misuse::wrong_alignment, block.ptr, "deallocate");
      return false;
    }
    check_canary(r, block.ptr, len, "deallocate");
    return true;
  }

  // StatsCounters::on_resize tells grows from shrinks by the byte counts; a resize that
  // keeps the size (the block already had room) must still count as what it was.
  void note_resize(bool grow, std::uint64_t old_bytes, std::uint64_t new_bytes) noexcept {
    (grow ? counters_.grows : counters_.shrinks).add(1);
    if (new_bytes >= old_bytes) {
      counters_.bytes_in_use.add(new_bytes - old_bytes);
      counters_.peak_bytes.raise_to(counters_.bytes_in_use.get());
    } else {
      counters_.bytes_in_use.sub(old_bytes - new_bytes);
    }
  }

  Block refuse() noexcept {
    counters_.failures.add(1);
    return Block{};
  }

  Block bad_argument(const void* p, const char* op) noexcept {
    counters_.failures.add(1);
    return misuse(Misuse::bad_argument, p, op);
  }

  Block misuse(Misuse what, const void* p, const char* op) noexcept {
    counters_.misuses.add(1);
    report_misuse(what, "tree", op, p);
    return Block{};
  }

  detail::TreeCore core_;
  Oversize oversize_;
  StatsCounters counters_;
  Counter oversize_count_;
  bool canaries_;  // checked builds: canaries requested when this allocator was built
};

/// The TreeAllocator with malloc for requests above the largest class.
using TreeAllocator = BasicTreeAllocator<MallocAllocator>;

static_assert(Allocator<TreeAllocator>);

}  // namespace ctxalloc
