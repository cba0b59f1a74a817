// The slabs of an ArenaSource: the blocks it took from its parent (to give back on
// destruction), cut into power-of-two "chunks" aligned to their size, and a hash set of
// chunk addresses so that "is p inside one of our slabs?" is p & ~(chunk - 1) and one
// hash lookup: O(1), and without reading the memory at p (a foreign pointer may point
// at nothing). Both tables live in mmap'd pages that double when full.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/check.h"
#include "ctxalloc/core/layout.h"

namespace ctxalloc {
template <class T>
struct TestPeer;
}  // namespace ctxalloc

namespace ctxalloc::detail {

class SlabTable {
 public:
  /// One block from the parent: where it is, and its chunks.
  struct Entry {
    Block parent;            ///< as the parent returned it (released as is)
    std::byte* first_chunk;  ///< the first chunk-aligned address inside it
    std::size_t chunks;      ///< whole chunks from there on
  };

  /// chunk_bytes: a power of two.
  explicit SlabTable(std::size_t chunk_bytes) noexcept
      : chunk_(chunk_bytes), chunk_shift_(static_cast<unsigned>(std::countr_zero(chunk_bytes))) {}
  ~SlabTable();
  SlabTable(const SlabTable&) = delete;
  SlabTable& operator=(const SlabTable&) = delete;

  /// Room for one more entry with `chunks` chunks; false when the tables cannot grow.
  bool reserve(std::size_t chunks) noexcept;
  /// Records an entry; reserve() must have succeeded for it.
  void add(const Entry& e) noexcept;
  /// Whether p lies in one of the recorded chunks: a mask, a multiply and (at half load
  /// at most) about 1.5 probes. Inline: every arena release asks it.
  bool holds(const void* p) const noexcept {
    const std::uintptr_t chunk = reinterpret_cast<std::uintptr_t>(p) & ~(chunk_ - 1);
    if (set_ == nullptr || chunk == 0) return false;
    for (std::size_t i = slot(chunk);; i = (i + 1) & (set_capacity_ - 1)) {
      if (set_[i] == chunk) return true;
      if (set_[i] == 0) return false;
    }
  }

  std::size_t chunk_bytes() const noexcept { return chunk_; }
  std::size_t entries() const noexcept { return entries_; }
  const Entry& entry(std::size_t i) const noexcept { return list_[i]; }
  std::size_t chunks() const noexcept { return chunks_; }
  /// Bytes of the two tables' pages.
  std::size_t metadata_bytes() const noexcept;

  /// Every chunk of every entry is in the set and the set holds nothing else; chunks lie
  /// inside their parent block; chunks do not overlap.
  CheckResult check(const char* who) const;

 private:
  template <class>
  friend struct ::ctxalloc::TestPeer;

  // Fibonacci hashing of the chunk number: consecutive chunks spread over the table.
  std::size_t slot(std::uintptr_t chunk) const noexcept {
    return static_cast<std::size_t>(((chunk >> chunk_shift_) * 0x9E3779B97F4A7C15ULL) >>
                                    set_shift_);
  }
  bool grow_set(std::size_t want) noexcept;
  void insert_chunk(std::uintptr_t chunk) noexcept;

  std::size_t chunk_;
  unsigned chunk_shift_;
  unsigned set_shift_ = 63;  // 64 - log2(set_capacity_)
  Entry* list_ = nullptr;
  std::size_t entries_ = 0;
  std::size_t list_capacity_ = 0;  // entries
  std::uintptr_t* set_ = nullptr;  // open addressing, linear probing; 0 = empty
  std::size_t set_capacity_ = 0;   // a power of two, kept at least twice chunks_
  std::size_t chunks_ = 0;
};

}  // namespace ctxalloc::detail
