// The Allocator concept every ctxalloc allocator satisfies (docs/concepts.md has it as a
// table), and the helpers that implement its shared parts.
#pragma once

#include <concepts>
#include <cstring>

#include "ctxalloc/core/check.h"
#include "ctxalloc/core/layout.h"
#include "ctxalloc/core/stats.h"

namespace ctxalloc {

/// Whether grow/shrink may move the block (the crate's "current memory can not be moved").
enum class Move : bool { allowed, forbidden };

/// Failure on the allocator API is a null Block, never an exception: allocators are
/// called from operator new, malloc, C and DPDK callbacks. The reason is counted in
/// stats().failures (or stats().misuses for caller errors).
template <class A>
concept Allocator = requires(A& a, const A& ca, Layout layout, Block block, std::size_t align,
                             Move move, const void* p) {
  { a.allocate(layout) }
  noexcept->std::same_as<Block>;
  { a.allocate_zeroed(layout) }
  noexcept->std::same_as<Block>;
  { a.deallocate(block, align) }
  noexcept->std::same_as<void>;
  { a.grow(block, layout, move) }
  noexcept->std::same_as<Block>;
  { a.shrink(block, layout, move) }
  noexcept->std::same_as<Block>;
  { ca.contains(p) }
  noexcept->std::same_as<bool>;
  { ca.check_invariants() } -> std::same_as<CheckResult>;
  { ca.stats() }
  noexcept->std::same_as<Stats>;
};

namespace detail {

/// allocate() then zero the whole reported size.
template <class A>
Block allocate_zeroed_by_fill(A& a, Layout layout) noexcept {
  Block b = a.allocate(layout);
  if (b.ptr != nullptr && b.size != 0) std::memset(b.ptr, 0, b.size);
  return b;
}

/// The moving half of grow: secure the new block first, copy, then release the old one,
/// so a failure leaves the old block untouched.
template <class A>
Block grow_by_moving(A& a, Block old, Layout new_layout) noexcept {
  Block fresh = a.allocate(new_layout);
  if (fresh.ptr == nullptr) return fresh;
  if (old.size != 0) {
    std::memcpy(fresh.ptr, old.ptr, old.size);
    // 1: "not known". The old block's own alignment is not new_layout's: a block moved
    // because it lacks new_layout.align would be reported as a wrong-alignment free.
    a.deallocate(old, 1);
  }
  return fresh;
}

/// The moving half of shrink (for allocators that cannot shrink a block in place).
template <class A>
Block shrink_by_moving(A& a, Block old, Layout new_layout) noexcept {
  Block fresh = a.allocate(new_layout);
  if (fresh.ptr == nullptr) return fresh;
  if (new_layout.size != 0) std::memcpy(fresh.ptr, old.ptr, new_layout.size);
  a.deallocate(old, 1);  // as in grow_by_moving
  return fresh;
}

}  // namespace detail
}  // namespace ctxalloc

namespace ctxalloc {
/// Tests specialise this to reach an allocator's internals (to corrupt its metadata on
/// purpose and show that check_invariants() notices). Allocators befriend it.
template <class T>
struct TestPeer;
}  // namespace ctxalloc
