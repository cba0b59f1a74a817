// The live mappings of a MemoryMapSource, ordered by address: a red-black tree whose
// nodes come from a pool of mmap'd pages, never from malloc (the source will serve
// malloc). Every operation is O(log n) in the number of mappings, interior pointers
// included (contains(p) for any p inside a mapping). The tree algorithms are
// Boost.Intrusive's, used only in mapping_index.cc so that this header stays free of
// Boost.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/check.h"

namespace ctxalloc {
template <class T>
struct TestPeer;
}  // namespace ctxalloc

namespace ctxalloc::detail {

/// One live mapping.
struct Mapping {
  std::byte* start = nullptr;
  std::size_t size = 0;      ///< bytes mapped, a multiple of unit
  std::size_t unit = 0;      ///< size granularity: the page size, or the hugepage size asked for
  std::size_t page = 0;      ///< the kernel page size of the mapping (start is aligned to it)
  std::uint8_t outcome = 0;  ///< a MapOutcome: what backs it
  std::byte* end() const noexcept { return start + size; }
};

/// A tree node: links, colour, and the mapping. 64 bytes.
struct MappingNode {
  MappingNode* parent = nullptr;
  MappingNode* left = nullptr;
  MappingNode* right = nullptr;
  std::uintptr_t red = 0;  // word-sized, so the node has no padding holes
  Mapping m;
};

class MappingIndex {
 public:
  MappingIndex() noexcept;
  /// Unmaps the node pool (not the mappings: their owner does that first).
  ~MappingIndex();
  MappingIndex(const MappingIndex&) = delete;
  MappingIndex& operator=(const MappingIndex&) = delete;

  /// Makes sure the next insert() has a node, mapping a pool slab if none is free; false
  /// when that mmap fails. Done before the mapping itself is created, so a failure
  /// leaves nothing to undo.
  bool reserve() noexcept;
  /// Records a mapping that overlaps no recorded one; reserve() must have succeeded.
  void insert(const Mapping& m) noexcept;
  /// The mapping starting exactly at start, or nullptr.
  const Mapping* find(const void* start) const noexcept;
  /// The mapping holding p (start <= p < end), or nullptr.
  const Mapping* find_containing(const void* p) const noexcept;
  /// Forgets the mapping starting at start; false when there is none.
  bool erase(const void* start) noexcept;
  /// Replaces the mapping starting at old_start (found by find) with m, which may start
  /// elsewhere (mremap moved it); reuses the node.
  void update(const void* old_start, const Mapping& m) noexcept;

  std::size_t count() const noexcept { return count_; }
  std::size_t bytes() const noexcept { return bytes_; }
  /// Bytes of mmap'd node pool.
  std::size_t metadata_bytes() const noexcept { return pool_bytes_; }

  /// The mappings in address order: for (auto* m = first(); m; m = next(m)).
  const Mapping* first() const noexcept;
  const Mapping* next(const Mapping* m) const noexcept;

  /// Walks the tree and the pool: address order without overlap, alignment, sizes,
  /// red-black rules, parent links, count and bytes, every node inside a pool slab, and
  /// pool nodes = live + free. `who` names the owner in the message.
  CheckResult check(const char* who) const;

 private:
  template <class>
  friend struct ::ctxalloc::TestPeer;
  struct Slab;

  MappingNode* node_of(const void* start) const noexcept;
  bool in_pool(const MappingNode* n) const noexcept;
  CheckResult check_tree(const char* who) const;
  CheckResult check_pool(const char* who) const;

  MappingNode header_;  // Boost's header: parent = root, left = leftmost, right = rightmost
  MappingNode* free_ = nullptr;  // free nodes, linked through `parent`
  Slab* slabs_ = nullptr;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
  std::size_t pool_bytes_ = 0;
  std::size_t pool_nodes_ = 0;
};

}  // namespace ctxalloc::detail
