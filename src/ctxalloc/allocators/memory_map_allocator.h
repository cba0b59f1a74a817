// MemoryMapAllocator: one kernel mapping per allocation. For requests too large for any
// size class (the tree allocator and the global heap send theirs here) and for memory
// that must have its own NUMA policy or hugepages. Grow and shrink use mremap, which
// moves page tables instead of bytes, so a growing buffer is never copied (hugetlb
// blocks excepted: mremap cannot grow them). Fresh mappings are zero, so
// allocate_zeroed costs nothing extra.
//
// It knows its live mappings without the caller's help (the MemoryMapSource's index, in
// its own mmap'd pages): the size of a pointer's mapping, contains() for any byte of a
// mapping, and check_invariants() walking them. Every call is a system call or more:
// use it for large or special blocks, not for small ones. One owner thread.
#pragma once

#include <cstddef>

#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/sources/mmap_source.h"

namespace ctxalloc {

class MemoryMapAllocator {
 public:
  /// Mappings made with these options (hugepages, NUMA policy, populate, lock, ...).
  /// Bad options make every allocation fail; config_error() says why.
  explicit MemoryMapAllocator(const MapOptions& options = {}) noexcept : source_(options) {}
  /// Unmaps every live mapping.
  ~MemoryMapAllocator() = default;
  MemoryMapAllocator(const MemoryMapAllocator&) = delete;
  MemoryMapAllocator& operator=(const MemoryMapAllocator&) = delete;

  /// A mapping of layout.size rounded up to the page (or hugepage) size, aligned to
  /// layout.align. The reported size is the mapping's.
  Block allocate(Layout layout) noexcept;
  /// The same: fresh anonymous mappings are already zero, nothing is written.
  Block allocate_zeroed(Layout layout) noexcept { return allocate(layout); }
  /// Unmaps the block's mapping. block.size may be the size asked for or the size given.
  void deallocate(Block block, std::size_t align) noexcept;
  /// mremap in place, else (Move::allowed) mremap to a new address keeping `align`.
  Block grow(Block block, Layout new_layout, Move move) noexcept;
  /// Unmaps the tail in place; to 0 frees the block.
  Block shrink(Block block, Layout new_layout, Move move) noexcept;

  /// Whether p lies inside a live mapping (any byte of it). O(log n).
  bool contains(const void* p) const noexcept { return source_.holds(p); }
  /// The size of the live mapping holding p (0 when none does). O(log n).
  std::size_t mapping_size(const void* p) const noexcept { return source_.block_of(p).size; }
  /// The live mapping holding p, or a null Block.
  Block mapping_of(const void* p) const noexcept { return source_.block_of(p); }
  /// Calls f(Block) for every live mapping, in address order. Owner thread only.
  template <class F>
  void for_each_mapping(F&& f) const {
    source_.for_each_block(static_cast<F&&>(f));
  }
  std::size_t live_mappings() const noexcept { return source_.stats().live_blocks(); }

  Stats stats() const noexcept;
  /// The source's checks (index walk, each mapping still mapped) plus the counters.
  CheckResult check_invariants() const;

  /// Options, errors, what the kernel gave (report(p)), per-outcome counters.
  const MemoryMapSource& source() const noexcept { return source_; }
  const SourceError& config_error() const noexcept { return source_.config_error(); }

 private:
  template <class>
  friend struct TestPeer;

  Block refuse() noexcept;
  Block bad_argument(const void* p, const char* op) noexcept;
  void misuse(Misuse what, const void* p, const char* op) noexcept;
  // The live block starting at p, or null after reporting the misuse.
  Block live_block(Block block, const char* op) noexcept;

  MemoryMapSource source_;
  StatsCounters counters_;
};

static_assert(Allocator<MemoryMapAllocator>);

}  // namespace ctxalloc
