// std::pmr adaptors, both ways:
//  - MemoryResource<A>: any ctxalloc Allocator as a std::pmr::memory_resource, so that
//    std::pmr containers (vector, string, deque, ...) allocate from it;
//  - PmrAllocator: any std::pmr::memory_resource as a ctxalloc Allocator.
#pragma once

#include <cstring>
#include <memory_resource>
#include <new>

#include "ctxalloc/core/allocator.h"

namespace ctxalloc {

/// A std::pmr::memory_resource over an Allocator it does not own. As the standard asks,
/// do_allocate throws std::bad_alloc when the allocator refuses; the allocator itself
/// never throws.
template <Allocator A>
class MemoryResource final : public std::pmr::memory_resource {
 public:
  explicit MemoryResource(A& allocator) noexcept : a_(&allocator) {}

  A& allocator() const noexcept { return *a_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    const Block b = a_->allocate(Layout{bytes, align});
    if (b.ptr == nullptr) throw std::bad_alloc();
    return b.ptr;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t align) override {
    a_->deallocate(Block{static_cast<std::byte*>(p), bytes}, align);
  }
  // Two resources are interchangeable when they wrap the same allocator object.
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    const auto* o = dynamic_cast<const MemoryResource*>(&other);
    return o != nullptr && o->a_ == a_;
  }

  A* a_;
};

/// A std::pmr::memory_resource (which it does not own) as an Allocator. A resource
/// cannot say which pointers are its own, so contains() is always false and misuse
/// (double free, foreign pointer) is the resource's to detect, not this adaptor's.
/// Grow and shrink move (a resource has no resize), so Move::forbidden succeeds only
/// when the size does not change.
class PmrAllocator {
 public:
  explicit PmrAllocator(std::pmr::memory_resource* r = std::pmr::get_default_resource()) noexcept
      : r_(r) {}

  Block allocate(Layout layout) noexcept {
    if (!layout.valid()) {
      counters_.failures.add(1);
      return Block{};
    }
    if (layout.size == 0 && zero_size_uses_sentinel(layout.align)) {
      return zero_size_block(layout.align);
    }
    void* p = nullptr;
    try {
      p = r_->allocate(layout.size, layout.align);
    } catch (...) {  // bad_alloc, or whatever the resource throws: never past this line
      counters_.failures.add(1);
      return Block{};
    }
    counters_.on_allocate(layout.size);
    return Block{static_cast<std::byte*>(p), layout.size};
  }

  Block allocate_zeroed(Layout layout) noexcept {
    return detail::allocate_zeroed_by_fill(*this, layout);
  }

  void deallocate(Block block, std::size_t align) noexcept {
    if (block.ptr == nullptr || (block.size == 0 && is_zero_size_sentinel(block.ptr))) return;
    r_->deallocate(block.ptr, block.size, align);
    counters_.on_deallocate(block.size);
  }

  Block grow(Block block, Layout new_layout, Move move) noexcept {
    return resize(block, new_layout, move);
  }
  Block shrink(Block block, Layout new_layout, Move move) noexcept {
    return resize(block, new_layout, move);
  }

  /// A memory resource cannot tell its pointers from others: always false. Owner lookup
  /// must not rely on this adaptor.
  bool contains(const void*) const noexcept { return false; }

  CheckResult check_invariants() const {
    const Stats s = counters_.snapshot();
    CTXALLOC_INVARIANT(s.deallocations <= s.allocations, "pmr: ", s.deallocations,
                       " deallocations exceed ", s.allocations, " allocations");
    CTXALLOC_INVARIANT(s.peak_bytes >= s.bytes_in_use, "pmr: peak below bytes in use");
    return CheckResult::ok();
  }

  Stats stats() const noexcept { return counters_.snapshot(); }
  std::pmr::memory_resource* resource() const noexcept { return r_; }

 private:
  template <class>
  friend struct TestPeer;

  Block resize(Block block, Layout new_layout, Move move) noexcept {
    if (new_layout.size == block.size && is_aligned(block.ptr, new_layout.align)) return block;
    if (move == Move::forbidden) {
      counters_.failures.add(1);
      return Block{};
    }
    // A memory resource must get back the alignment the block was allocated with, and
    // nothing here knows another: the old block goes back with new_layout.align, so a
    // resize through this adaptor must keep the block's alignment (a new one moves the
    // block, and the resource is told the new one on the old block's free).
    const bool growing = new_layout.size > block.size;
    Block fresh = allocate(new_layout);
    if (fresh.ptr == nullptr) return fresh;
    std::memcpy(fresh.ptr, block.ptr, growing ? block.size : new_layout.size);
    deallocate(block, new_layout.align);
    (growing ? counters_.grows : counters_.shrinks).add(1);
    return fresh;
  }

  std::pmr::memory_resource* r_;
  StatsCounters counters_;
};

static_assert(Allocator<PmrAllocator>);

}  // namespace ctxalloc
