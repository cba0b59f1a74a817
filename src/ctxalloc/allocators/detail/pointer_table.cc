#include "ctxalloc/allocators/detail/pointer_table.h"

#include "ctxalloc/core/bits.h"
#include "ctxalloc/sources/os_memory.h"

namespace ctxalloc::detail {

PointerTable::~PointerTable() {
  if (slots_ != nullptr) os_unmap(slots_, capacity() * sizeof(Entry));
}

bool PointerTable::grow() noexcept {
  // 170 entries fill one page; start there and double.
  const std::size_t new_cap = slots_ == nullptr ? 256 : capacity() * 2;
  void* mem = os_map_rw(new_cap * sizeof(Entry));
  if (mem == nullptr) return false;
  Entry* old = slots_;
  const std::size_t old_cap = capacity();
  slots_ = static_cast<Entry*>(mem);  // zero-filled: every slot empty
  mask_ = new_cap - 1;
  shift_ = 64 - log2_floor(new_cap);
  count_ = 0;
  for (std::size_t i = 0; i < old_cap; ++i)
    if (old[i].key != 0) insert(old[i].key, old[i].size, old[i].align);
  if (old != nullptr) os_unmap(old, old_cap * sizeof(Entry));
  return true;
}

void PointerTable::erase(Entry* e) noexcept {
  std::size_t hole = static_cast<std::size_t>(e - slots_);
  // Backward shift: move each later entry of the run into the hole when the hole lies
  // between its home and its slot (cyclically), so lookups never need tombstones.
  for (std::size_t i = (hole + 1) & mask_; slots_[i].key != 0; i = (i + 1) & mask_) {
    const std::size_t h = home(slots_[i].key);
    if (((i - h) & mask_) >= ((i - hole) & mask_)) {
      slots_[hole] = slots_[i];
      hole = i;
    }
  }
  slots_[hole].key = 0;
  --count_;
}

std::string PointerTable::check() const {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < capacity(); ++i) {
    if (slots_[i].key == 0) continue;
    ++seen;
    for (std::size_t j = home(slots_[i].key); j != i; j = (j + 1) & mask_) {
      if (slots_[j].key == 0)
        return "entry " + std::to_string(i) + " is cut off from its home slot " +
               std::to_string(home(slots_[i].key)) + " by empty slot " + std::to_string(j);
    }
  }
  if (seen != count_)
    return "holds " + std::to_string(seen) + " entries but counts " + std::to_string(count_);
  if (slots_ != nullptr && count_ * 4 > capacity() * 3) return "is more than 3/4 full";
  return "";
}

}  // namespace ctxalloc::detail
