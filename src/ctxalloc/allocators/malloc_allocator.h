// MallocAllocator: the C library's malloc / posix_memalign / realloc / free as an
// Allocator, for a default oversize allocator, tests and comparisons. Whatever malloc the
// process has (glibc, mimalloc, jemalloc, tcmalloc) serves the blocks.
//
// malloc has no range of its own and cannot tell whether a pointer is one of its blocks,
// so the allocator keeps its own record: a hash table of live blocks (pointer, size,
// alignment) in an anonymous mapping, never in malloc. That gives exact answers where
// the Allocator concept needs them:
// - contains(p) is true exactly for the start of a live block it handed out (not for
//   interior pointers: malloc's memory is not one range);
// - allocated_size(p) and stats().bytes_in_use are exact (the sizes asked for);
// - freeing a pointer it does not hold is reported as a foreign pointer. A double free is
//   reported the same way: a freed pointer is forgotten, so the two look alike.
// Cost over malloc: one hash-table insert or erase (O(1) expected) per call.
// Blocks still live when the allocator is destroyed are freed then.
#pragma once

#include <cstddef>

#include "ctxalloc/allocators/detail/pointer_table.h"
#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"

namespace ctxalloc {

class MallocAllocator {
 public:
  MallocAllocator() noexcept = default;
  ~MallocAllocator();
  MallocAllocator(const MallocAllocator&) = delete;
  MallocAllocator& operator=(const MallocAllocator&) = delete;

  /// malloc (alignment up to alignof(max_align_t)) or posix_memalign; Block::size is
  /// the size asked for. Zero-size requests get the sentinel (docs/concepts.md).
  Block allocate(Layout layout) noexcept;

  /// calloc when malloc's alignment suffices, else allocate and clear.
  Block allocate_zeroed(Layout layout) noexcept;

  /// free. A null pointer and the zero-size sentinel are ignored; a pointer this
  /// allocator does not hold, or a size larger than the block's, is misuse.
  void deallocate(Block block, std::size_t align) noexcept;

  /// In place when the block already has room (malloc_usable_size); otherwise, unless
  /// Move::forbidden, realloc (or posix_memalign + copy + free for large alignments).
  Block grow(Block block, Layout new_layout, Move move) noexcept;

  /// In place (the block keeps its memory), except that with Move::allowed a shrink by
  /// 64 KiB or more goes through realloc so that malloc can return the memory.
  Block shrink(Block block, Layout new_layout, Move move) noexcept;

  /// True exactly for the start of a live block of this allocator.
  bool contains(const void* p) const noexcept { return lookup(p) != nullptr; }

  /// The size of the live block starting at p (the size asked for), or 0.
  std::size_t allocated_size(const void* p) const noexcept {
    const detail::PointerTable::Entry* e = lookup(p);
    return e == nullptr ? 0 : e->size;
  }

  /// Checks the table: every entry findable, the count and byte totals equal to the
  /// statistics, every block aligned as it was asked.
  CheckResult check_invariants() const;

  Stats stats() const noexcept { return counters_.snapshot(); }

 private:
  template <class>
  friend struct TestPeer;

  const detail::PointerTable::Entry* lookup(const void* p) const noexcept {
    return table_.find(reinterpret_cast<std::uintptr_t>(p));
  }
  Block record(void* p, Layout layout) noexcept;
  Block refuse() noexcept;
  Block misuse(Misuse what, const void* p, const char* op) noexcept;

  detail::PointerTable table_;
  StatsCounters counters_;
};

static_assert(Allocator<MallocAllocator>);

}  // namespace ctxalloc
