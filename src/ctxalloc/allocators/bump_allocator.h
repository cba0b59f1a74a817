// BumpAllocator: hands out memory from one region by advancing a pointer. It never
// frees, with one exception: the most recent allocation (the block that ends where the
// free space begins) is freed, grown or shrunk in place. Freeing in LIFO order therefore
// gives back every block, like a stack; and the free that leaves no block live (in any
// order) rewinds the whole region, alignment padding and blocks freed out of order
// included, so an emptied allocator is a fresh one. Cost of allocate: an alignment
// round-up, two compares, one store and a counter. One owner thread; stats() may be read
// from any.
//
// Memory tools: the free part of the region, [next, end), and blocks freed out of order
// are poisoned (AddressSanitizer) or marked no-access (valgrind's memcheck), so a use
// after free, or a write past the most recent block, is reported. Under memcheck every
// request takes the slow paths, which mark; elsewhere the fast paths pay nothing for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ctxalloc/config.h"
#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/poison.h"

namespace ctxalloc {

class BumpAllocator {
 public:
  /// An allocator over [region.ptr, region.ptr + region.size), which it does not own.
  explicit BumpAllocator(Block region) noexcept
      : begin_(region.ptr),
        next_(region.ptr),
        end_(region.ptr + region.size),
        tool_paths_(detail::pool_slow_paths()) {
    // Under the tool paths no request passes the fast paths' limits (see the members).
    fast_end_ = tool_paths_ ? nullptr : end_;
    detail::poison(begin_, capacity());
  }

  /// Gives the region back to its owner as it came: addressable (memory tools).
  ~BumpAllocator() { detail::unpoison(begin_, capacity()); }

  BumpAllocator(const BumpAllocator&) = delete;
  BumpAllocator& operator=(const BumpAllocator&) = delete;

  Block allocate(Layout layout) noexcept {
    const Block b = try_allocate(layout);
    if (b.ptr != nullptr) [[likely]]
      return b;
    return allocate_slow(layout);
  }

  /// allocate()'s fast path alone: the block, or an empty Block (nothing done, nothing
  /// counted) where allocate() would take its slow path (exhaustion, size 0, a bad
  /// layout, or every request under memcheck). For callers that inline it and keep the
  /// rest out of line (Context::allocate).
  Block try_allocate(Layout layout) noexcept {
    if (CTXALLOC_CHECKS && !layout.valid()) return Block{};
    // In address arithmetic: align_up cannot overflow (user addresses are below 2^47,
    // alignments at most 2^30); p + size wraps only for sizes near SIZE_MAX, which then
    // land below p. So two compares catch exhaustion, overflow and size 0 (new_next == p).
    const auto next = reinterpret_cast<std::uintptr_t>(next_.get());
    const std::uintptr_t p = align_up(next, layout.align);
    const std::uintptr_t new_next = p + layout.size;
    if (new_next > reinterpret_cast<std::uintptr_t>(fast_end_) || new_next <= p) [[unlikely]]
      return Block{};
    if (p == 0) __builtin_unreachable();  // lets callers drop their null test
    next_.set(reinterpret_cast<std::byte*>(new_next));
    counters_.allocations.add(1);
    detail::asan_unpoison(reinterpret_cast<std::byte*>(p), layout.size);
    return Block{reinterpret_cast<std::byte*>(p), layout.size};
  }

  Block allocate_zeroed(Layout layout) noexcept {
    // Not known to be zero: memory freed in place may be handed out again.
    return detail::allocate_zeroed_by_fill(*this, layout);
  }

  /// Frees the most recent block in place; any other live block is only counted (and
  /// poisoned for the memory tools). The size must be the one allocate returned (blocks
  /// are exactly the size asked for). The free that leaves no block live rewinds the
  /// region (see rewind_if_empty).
  void deallocate(Block block, std::size_t align) noexcept {
    // The peak gate doubles as the tool paths' switch: a new peak, or any free under
    // memcheck, takes the slow path; the common LIFO free pays the compare it always had.
    if (is_most_recent(block) && used() <= peak_gate_.get() &&
        !(CTXALLOC_CHECKS && misaligned(block.ptr, align))) [[likely]] {
      next_.set(block.ptr);
      counters_.deallocations.add(1);
      detail::asan_poison(block.ptr, block.size);
      rewind_if_empty();
      return;
    }
    deallocate_slow(block, align);
  }

  /// In place when block is the most recent one, meets new_layout.align and the region
  /// has room; otherwise (Move::allowed) a new block is secured first and the bytes
  /// copied.
  Block grow(Block block, Layout new_layout, Move move) noexcept {
    if (new_layout.size < block.size) return bad_argument(block.ptr, "grow");
    if (block.size == 0 && is_zero_size_sentinel(block.ptr)) {
      if (move == Move::forbidden) return refuse();
      return allocate(new_layout);
    }
    if (is_most_recent(block) && is_aligned(block.ptr, new_layout.align) &&
        new_layout.size <= static_cast<std::size_t>(end_ - block.ptr)) {
      next_.set(block.ptr + new_layout.size);
      counters_.grows.add(1);
      detail::unpoison_fresh(block.ptr + block.size, new_layout.size - block.size);
      return Block{block.ptr, new_layout.size};
    }
    if (move == Move::forbidden) return refuse();
    Block fresh = allocate(new_layout);
    if (fresh.ptr == nullptr) return fresh;
    std::memcpy(fresh.ptr, block.ptr, block.size);
    deallocate(block, 1);  // its own alignment is not known here (nor needed)
    counters_.grows.add(1);
    return fresh;
  }

  /// In place when the block meets new_layout.align: the most recent block gives its tail
  /// back to the region, any other block leaves its tail unused until reset(). A block
  /// that does not meet it moves (Move::allowed: a new block first, then the copy) or the
  /// shrink fails (Move::forbidden). Shrinking to 0 frees the block.
  Block shrink(Block block, Layout new_layout, Move move) noexcept {
    if (new_layout.size > block.size) return bad_argument(block.ptr, "shrink");
    if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return block;
    if (new_layout.size == 0) {
      deallocate(block, 1);
      return allocate(new_layout);
    }
    if (!is_aligned(block.ptr, new_layout.align)) {
      if (move == Move::forbidden) return refuse();
      const Block fresh = allocate(new_layout);
      if (fresh.ptr == nullptr) return fresh;
      std::memcpy(fresh.ptr, block.ptr, new_layout.size);
      deallocate(block, 1);
      counters_.shrinks.add(1);
      return fresh;
    }
    if (is_most_recent(block)) {
      note_peak();
      next_.set(block.ptr + new_layout.size);
    }
    // The tail is dead either way: given back to the region, or unused until reset().
    detail::poison(block.ptr + new_layout.size, block.size - new_layout.size);
    counters_.shrinks.add(1);
    return Block{block.ptr, new_layout.size};
  }

  bool contains(const void* p) const noexcept {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= begin_ && b < end_;
  }

  /// Forgets every allocation: the whole region is free again. The blocks live until
  /// now are counted as freed, so live_blocks() is 0 afterwards, as bytes_in_use is.
  void reset() noexcept {
    note_peak();
    detail::poison(begin_, used());
    next_.set(begin_);
    counters_.deallocations.set(counters_.allocations.get());
  }

  /// Bytes consumed from the region: live blocks, the alignment padding before them and
  /// blocks freed out of order (reclaimed when no block is live any more, or by reset).
  /// This is what stats().bytes_in_use reports.
  std::size_t used() const noexcept { return static_cast<std::size_t>(next_.get() - begin_); }
  std::size_t capacity() const noexcept { return static_cast<std::size_t>(end_ - begin_); }
  Block region() const noexcept { return Block{begin_, capacity()}; }

  Stats stats() const noexcept {
    Stats s = counters_.snapshot();
    s.bytes_in_use = used();
    s.peak_bytes = peak_.get() > s.bytes_in_use ? peak_.get() : s.bytes_in_use;
    s.capacity = capacity();
    return s;
  }

  /// Owner thread only, like every operation but stats().
  CheckResult check_invariants() const {
    const std::byte* next = next_.get();
    CTXALLOC_INVARIANT(begin_ <= end_, "bump: begin ", begin_, " after end ", end_);
    CTXALLOC_INVARIANT(next >= begin_ && next <= end_, "bump: next ", next, " outside region [",
                       begin_, ", ", end_, "]");
    const Stats s = counters_.snapshot();
    CTXALLOC_INVARIANT(s.deallocations <= s.allocations, "bump: ", s.deallocations,
                       " deallocations exceed ", s.allocations, " allocations");
    CTXALLOC_INVARIANT(peak_.get() <= capacity(), "bump: peak ", peak_.get(), " exceeds capacity ",
                       capacity());
    CTXALLOC_INVARIANT(
        tool_paths_ ? fast_end_ == nullptr : fast_end_ == end_ && peak_gate_.get() == peak_.get(),
        "bump: fast-path limits ", static_cast<const void*>(fast_end_), " and ", peak_gate_.get(),
        " disagree with end ", end_, " and peak ", peak_.get());
    // The free part is poisoned: its first whole 8-byte granule (AddressSanitizer's
    // unit) is probed, enough to show poisoning was not lost without an O(region) walk.
    const auto* probe =
        reinterpret_cast<const std::byte*>(align_up(reinterpret_cast<std::uintptr_t>(next), 8));
    if (detail::poisoning_active() && probe < end_ && end_ - probe >= 8) {
      CTXALLOC_INVARIANT(detail::is_poisoned(probe, 1),
                         "bump: the free part of the region is not poisoned at ", probe);
    }
    return CheckResult::ok();
  }

 private:
  template <class>
  friend struct TestPeer;

  // Zero-size requests, invalid layouts (checked builds), real exhaustion, and every
  // request under the tool paths, which marks the block it hands out.
  [[gnu::noinline]] Block allocate_slow(Layout layout) noexcept {
    if (auto answer = allocate_prologue(layout, [&] { return bad_argument(nullptr, "allocate"); }))
      return *answer;
    const auto next = reinterpret_cast<std::uintptr_t>(next_.get());
    const std::uintptr_t p = align_up(next, layout.align);
    const std::uintptr_t new_next = p + layout.size;
    if (new_next > reinterpret_cast<std::uintptr_t>(end_) || new_next <= p)
      return refuse();  // the region is full; the state is unchanged
    next_.set(reinterpret_cast<std::byte*>(new_next));
    counters_.allocations.add(1);
    detail::unpoison_fresh(reinterpret_cast<std::byte*>(p), layout.size);
    return Block{reinterpret_cast<std::byte*>(p), layout.size};
  }

  // Everything but a LIFO free below the peak: a LIFO free at a new peak or under the
  // tool paths, an out-of-order free (counted, poisoned), null, the zero-size sentinel,
  // and misuse.
  [[gnu::noinline]] void deallocate_slow(Block block, std::size_t align) noexcept {
    if (CTXALLOC_CHECKS && misaligned(block.ptr, align)) {
      misuse(Misuse::wrong_alignment, block.ptr, "deallocate");
      return;
    }
    if (is_most_recent(block)) {
      note_peak();
      next_.set(block.ptr);
    } else if (!handed_out(block.ptr)) {
      // Also every free once nothing is live: the region has been rewound.
      if (block.ptr == nullptr) return;  // like free(NULL)
      if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return;
      misuse(contains(block.ptr) ? Misuse::double_free : Misuse::foreign_pointer, block.ptr,
             "deallocate");
      return;
    } else if (detail::is_poisoned(block.ptr, 1)) {
      // Only the memory tools can tell: a block freed out of order is poisoned.
      misuse(Misuse::double_free, block.ptr, "deallocate");
      return;
    }
    counters_.deallocations.add(1);
    detail::poison(block.ptr, block.size);
    rewind_if_empty();
  }

  // After a free: with no block live, nothing in [begin_, next_) is anyone's any more
  // (what is left is alignment padding and blocks freed out of order, all poisoned), so
  // the region starts over and bytes_in_use is 0 again. Without this, allocate(0, 64 KiB)
  // and its free left 61,440 bytes of padding counted in use for ever. Costs the LIFO
  // free two loads and a compare. The count is exact for every valid sequence; an
  // undetected second free of a block freed out of order (release builds without the
  // memory tools) makes it too low, which can rewind the region under a live block --
  // docs/hardening.md lists this with the bump allocator's other limits.
  void rewind_if_empty() noexcept {
    if (counters_.allocations.get() == counters_.deallocations.get()) [[unlikely]] {
      // The whole consumed part, padding included: a granule the memory tools could not
      // poison while a neighbour in it was live is poisoned now.
      detail::poison(begin_, used());
      next_.set(begin_);
    }
  }

  // The block that ends where the free space begins. Blocks are exactly the size asked
  // for, so no separate "most recent" pointer is needed, and after it is freed the block
  // before it (if it ends there too) becomes the most recent: LIFO frees all reclaim.
  bool is_most_recent(Block block) const noexcept {
    return block.ptr + block.size == next_.get() && block.size != 0;
  }

  Block refuse() noexcept {
    counters_.failures.add(1);
    return Block{};
  }

  Block bad_argument(const void* p, const char* op) noexcept {
    counters_.failures.add(1);
    misuse(Misuse::bad_argument, p, op);
    return Block{};
  }

  // A block freed out of order is never reclaimed, so any address in the handed-out part
  // of the region may be live.
  bool handed_out(const std::byte* p) const noexcept { return p >= begin_ && p < next_.get(); }

  void misuse(Misuse what, const void* p, const char* op) noexcept {
    counters_.misuses.add(1);
    report_misuse(what, "bump", op, p);
  }

  void note_peak() noexcept {
    if (used() > peak_.get()) {
      peak_.set(used());
      if (!tool_paths_) peak_gate_.set(used());
    }
  }

  std::byte* begin_;
  Relaxed<std::byte*> next_;
  std::byte* end_;
  // The fast paths' limits. Normally end_ and the peak; under the tool paths (memcheck,
  // or a test asking for them) null and "never", so every request reaches a slow path.
  std::byte* fast_end_;
  Relaxed<std::size_t> peak_gate_;
  Relaxed<std::size_t> peak_;  // high-water mark, brought up to date whenever next_ drops
  bool tool_paths_;
  StatsCounters counters_;
};

static_assert(Allocator<BumpAllocator>);

}  // namespace ctxalloc
