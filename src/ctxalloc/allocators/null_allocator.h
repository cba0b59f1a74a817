// NullAllocator: refuses every request, owns nothing (std::pmr::null_memory_resource's
// counterpart). Useful as the oversize allocator of a TreeAllocator whose owner routes
// large requests elsewhere before they reach the tree (the thread and global heaps do).
#pragma once

#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"

namespace ctxalloc {

class NullAllocator {
 public:
  Block allocate(Layout layout) noexcept {
    if (layout.size == 0 && layout.valid() && zero_size_uses_sentinel(layout.align)) {
      return zero_size_block(layout.align);
    }
    counters_.failures.add(1);
    return Block{};
  }
  Block allocate_zeroed(Layout layout) noexcept { return allocate(layout); }
  /// Nothing was ever handed out, so any real block is foreign.
  void deallocate(Block block, std::size_t) noexcept {
    if (block.ptr == nullptr || (block.size == 0 && is_zero_size_sentinel(block.ptr))) return;
    counters_.misuses.add(1);
    report_misuse(Misuse::foreign_pointer, "null", "deallocate", block.ptr);
  }
  Block grow(Block, Layout, Move) noexcept { return refuse(); }
  Block shrink(Block, Layout, Move) noexcept { return refuse(); }
  bool contains(const void*) const noexcept { return false; }
  CheckResult check_invariants() const {
    CTXALLOC_INVARIANT(counters_.allocations.get() == 0, "null: an allocation was counted");
    return CheckResult::ok();
  }
  Stats stats() const noexcept { return counters_.snapshot(); }

 private:
  Block refuse() noexcept {
    counters_.failures.add(1);
    return Block{};
  }
  StatsCounters counters_;
};

static_assert(Allocator<NullAllocator>);

}  // namespace ctxalloc
