// An open-addressing hash table of live pointers (linear probing, backward-shift
// deletion, so no tombstones), kept in its own anonymous mapping: the MallocAllocator's
// bookkeeping must not call malloc, whose blocks it tracks. Lookups, inserts and erases
// are O(1) expected; the table doubles (one mmap, a rehash, one munmap) when it is 3/4
// full. 24 bytes per slot, at most 1/0.375 slots per live pointer after a doubling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ctxalloc/core/allocator.h"

namespace ctxalloc::detail {

class PointerTable {
 public:
  struct Entry {
    std::uintptr_t key;  // 0: the slot is empty
    std::size_t size;
    std::size_t align;
  };

  PointerTable() noexcept = default;
  ~PointerTable();
  PointerTable(const PointerTable&) = delete;
  PointerTable& operator=(const PointerTable&) = delete;

  /// Makes room for one more entry (may map a larger table); false when mmap fails.
  bool reserve_one() noexcept {
    if ((count_ + 1) * 4 <= capacity() * 3) [[likely]]
      return true;
    return grow();
  }

  /// Adds key (not 0, not present); reserve_one() must have succeeded since the last
  /// insert.
  void insert(std::uintptr_t key, std::size_t size, std::size_t align) noexcept {
    std::size_t i = home(key);
    while (slots_[i].key != 0)
      i = (i + 1) & mask_;
    slots_[i] = Entry{key, size, align};
    ++count_;
  }

  /// The entry of key, or nullptr. Valid until the next insert or erase.
  Entry* find(std::uintptr_t key) noexcept {
    if (slots_ == nullptr || key == 0) return nullptr;
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i];
      if (slots_[i].key == 0) return nullptr;
    }
  }
  const Entry* find(std::uintptr_t key) const noexcept {
    return const_cast<PointerTable*>(this)->find(key);
  }

  /// Removes an entry find() returned, shifting later entries of its probe run back.
  void erase(Entry* e) noexcept;

  std::size_t count() const noexcept { return count_; }
  std::size_t capacity() const noexcept { return slots_ == nullptr ? 0 : mask_ + 1; }

  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < capacity(); ++i)
      if (slots_[i].key != 0) f(slots_[i]);
  }

  /// Every entry reachable from its home slot without crossing an empty slot, and the
  /// count right; an error message or "".
  std::string check() const;

 private:
  template <class>
  friend struct ::ctxalloc::TestPeer;

  std::size_t home(std::uintptr_t key) const noexcept {
    // Fibonacci hashing of the address without its always-zero low bits.
    return static_cast<std::size_t>(((key >> 4) * 0x9E3779B97F4A7C15ULL) >> shift_) & mask_;
  }
  bool grow() noexcept;

  Entry* slots_ = nullptr;
  std::size_t mask_ = 0;
  unsigned shift_ = 64;
  std::size_t count_ = 0;
};

}  // namespace ctxalloc::detail
