#include "ctxalloc/sources/detail/slab_table.h"

#include <sys/mman.h>

#include <cstring>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/sources/kernel_info.h"
#include "ctxalloc/sources/os_memory.h"

namespace ctxalloc::detail {
namespace {

std::uintptr_t addr(const void* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p);
}

std::size_t pages_for(std::size_t bytes) noexcept {
  return align_up(bytes, page_size());
}

}  // namespace

SlabTable::~SlabTable() {
  if (list_ != nullptr) os_unmap(list_, pages_for(list_capacity_ * sizeof(Entry)));
  if (set_ != nullptr) os_unmap(set_, pages_for(set_capacity_ * sizeof(std::uintptr_t)));
}

std::size_t SlabTable::metadata_bytes() const noexcept {
  return (list_ != nullptr ? pages_for(list_capacity_ * sizeof(Entry)) : 0) +
         (set_ != nullptr ? pages_for(set_capacity_ * sizeof(std::uintptr_t)) : 0);
}

void SlabTable::insert_chunk(std::uintptr_t chunk) noexcept {
  std::size_t i = slot(chunk);
  while (set_[i] != 0)
    i = (i + 1) & (set_capacity_ - 1);
  set_[i] = chunk;
}

bool SlabTable::grow_set(std::size_t want) noexcept {
  std::size_t cap = set_capacity_ == 0 ? page_size() / sizeof(std::uintptr_t) : set_capacity_;
  while (cap < 2 * want)
    cap *= 2;
  if (cap == set_capacity_) return true;
  auto* fresh = static_cast<std::uintptr_t*>(os_map_rw(cap * sizeof(std::uintptr_t)));
  if (fresh == nullptr) return false;
  std::uintptr_t* old = set_;
  const std::size_t old_cap = set_capacity_;
  set_ = fresh;
  set_capacity_ = cap;
  set_shift_ = 64 - log2_floor(cap);
  for (std::size_t i = 0; i < old_cap; ++i)
    if (old[i] != 0) insert_chunk(old[i]);
  if (old != nullptr) os_unmap(old, pages_for(old_cap * sizeof(std::uintptr_t)));
  return true;
}

bool SlabTable::reserve(std::size_t chunks) noexcept {
  if (entries_ == list_capacity_) {
    const std::size_t cap = list_capacity_ == 0 ? page_size() / sizeof(Entry) : 2 * list_capacity_;
    void* p = list_ == nullptr ? os_map_rw(cap * sizeof(Entry))
                               : ::mremap(list_, pages_for(list_capacity_ * sizeof(Entry)),
                                          pages_for(cap * sizeof(Entry)), MREMAP_MAYMOVE);
    if (p == nullptr || p == MAP_FAILED) return false;
    list_ = static_cast<Entry*>(p);
    list_capacity_ = cap;
  }
  return grow_set(chunks_ + chunks);
}

void SlabTable::add(const Entry& e) noexcept {
  list_[entries_++] = e;
  for (std::size_t c = 0; c < e.chunks; ++c)
    insert_chunk(addr(e.first_chunk) + c * chunk_);
  chunks_ += e.chunks;
}

CheckResult SlabTable::check(const char* who) const {
  std::size_t chunks = 0;
  for (std::size_t i = 0; i < entries_; ++i) {
    const Entry& e = list_[i];
    CTXALLOC_INVARIANT(e.first_chunk >= e.parent.ptr &&
                           e.first_chunk + e.chunks * chunk_ <= e.parent.end() &&
                           addr(e.first_chunk) % chunk_ == 0,
                       who, ": slab ", i, "'s chunks lie outside its parent block ", e.parent.ptr);
    for (std::size_t c = 0; c < e.chunks; ++c)
      CTXALLOC_INVARIANT(holds(e.first_chunk + c * chunk_), who, ": chunk ",
                         static_cast<const void*>(e.first_chunk + c * chunk_),
                         " is missing from the chunk set");
    for (std::size_t j = 0; j < i; ++j)
      CTXALLOC_INVARIANT(
          e.parent.ptr >= list_[j].parent.end() || list_[j].parent.ptr >= e.parent.end(), who,
          ": slabs ", j, " and ", i, " overlap");
    chunks += e.chunks;
  }
  std::size_t in_set = 0;
  for (std::size_t i = 0; i < set_capacity_; ++i)
    in_set += set_[i] != 0 ? 1 : 0;
  CTXALLOC_INVARIANT(chunks == chunks_ && in_set == chunks_, who, ": ", chunks,
                     " chunks in the slabs, ", in_set, " in the set, count ", chunks_);
  CTXALLOC_INVARIANT(set_capacity_ == 0 || 2 * chunks_ <= set_capacity_, who,
                     ": chunk set over half full");
  return CheckResult::ok();
}

}  // namespace ctxalloc::detail
