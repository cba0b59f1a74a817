#include "ctxalloc/allocators/malloc_allocator.h"

#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ctxalloc/config.h"

namespace ctxalloc {
namespace {

// malloc's own alignment guarantee; larger alignments go through posix_memalign.
constexpr std::size_t kMallocAlign = alignof(std::max_align_t);

// A shrink that saves this much goes through realloc (when moving is allowed), so that
// malloc can give the tail back; smaller ones just record the new size.
constexpr std::size_t kReallocShrinkSaving = 64 * 1024;

void* raw_allocate(std::size_t size, std::size_t align) noexcept {
  // No object may exceed PTRDIFF_MAX bytes; glibc refuses such sizes too.
  if (size > static_cast<std::size_t>(PTRDIFF_MAX)) return nullptr;
  if (align <= kMallocAlign) return std::malloc(size);
  void* p = nullptr;
  return ::posix_memalign(&p, align, size) == 0 ? p : nullptr;
}

}  // namespace

MallocAllocator::~MallocAllocator() {
  table_.for_each(
      [](const detail::PointerTable::Entry& e) { std::free(reinterpret_cast<void*>(e.key)); });
}

Block MallocAllocator::refuse() noexcept {
  counters_.failures.add(1);
  return Block{};
}

Block MallocAllocator::misuse(Misuse what, const void* p, const char* op) noexcept {
  counters_.misuses.add(1);
  report_misuse(what, "malloc", op, p);
  return Block{};
}

// Records a fresh block from malloc; the table has room (reserve_one succeeded).
Block MallocAllocator::record(void* p, Layout layout) noexcept {
  table_.insert(reinterpret_cast<std::uintptr_t>(p), layout.size, layout.align);
  counters_.on_allocate(layout.size);
  return Block{static_cast<std::byte*>(p), layout.size};
}

Block MallocAllocator::allocate(Layout layout) noexcept {
  if (!layout.valid()) {
    counters_.failures.add(1);
    return misuse(Misuse::bad_argument, nullptr, "allocate");
  }
  if (layout.size == 0) {
    if (zero_size_uses_sentinel(layout.align)) return zero_size_block(layout.align);
    layout.size = 1;
  }
  if (!table_.reserve_one()) return refuse();
  void* p = raw_allocate(layout.size, layout.align);
  if (p == nullptr) return refuse();
  return record(p, layout);
}

Block MallocAllocator::allocate_zeroed(Layout layout) noexcept {
  if (!layout.valid() || layout.size == 0 || layout.align > kMallocAlign)
    return detail::allocate_zeroed_by_fill(*this, layout);
  if (!table_.reserve_one()) return refuse();
  void* p =
      layout.size <= static_cast<std::size_t>(PTRDIFF_MAX) ? std::calloc(1, layout.size) : nullptr;
  if (p == nullptr) return refuse();
  return record(p, layout);
}

void MallocAllocator::deallocate(Block block, std::size_t /*align*/) noexcept {
  if (block.ptr == nullptr) return;
  detail::PointerTable::Entry* e = table_.find(reinterpret_cast<std::uintptr_t>(block.ptr));
  if (e == nullptr) {
    if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return;
    misuse(Misuse::foreign_pointer, block.ptr, "deallocate");
    return;
  }
  if (block.size > e->size) {
    misuse(Misuse::wrong_size, block.ptr, "deallocate");
    return;
  }
  counters_.on_deallocate(e->size);
  table_.erase(e);
  std::free(block.ptr);
}

Block MallocAllocator::grow(Block block, Layout new_layout, Move move) noexcept {
  if (new_layout.size < block.size || !new_layout.valid()) {
    counters_.failures.add(1);
    return misuse(Misuse::bad_argument, block.ptr, "grow");
  }
  if (block.size == 0 && is_zero_size_sentinel(block.ptr))
    return move == Move::forbidden ? refuse() : allocate(new_layout);
  detail::PointerTable::Entry* e = table_.find(reinterpret_cast<std::uintptr_t>(block.ptr));
  if (e == nullptr) {
    counters_.failures.add(1);
    return misuse(Misuse::foreign_pointer, block.ptr, "grow");
  }
  const std::size_t old_size = e->size;
  const bool aligned = is_aligned(block.ptr, new_layout.align);
  if (aligned && new_layout.size <= ::malloc_usable_size(block.ptr)) {
    if (new_layout.size > old_size) e->size = new_layout.size;
    counters_.on_resize(old_size, e->size);
    return Block{block.ptr, e->size};
  }
  if (move == Move::forbidden || !table_.reserve_one()) return refuse();
  e = table_.find(reinterpret_cast<std::uintptr_t>(block.ptr));  // reserve may rehash
  void* fresh;
  if (new_layout.align <= kMallocAlign && e->align <= kMallocAlign) {
    fresh = new_layout.size <= static_cast<std::size_t>(PTRDIFF_MAX)
                ? std::realloc(block.ptr, new_layout.size)
                : nullptr;
    if (fresh == nullptr) return refuse();  // the old block is untouched
  } else {
    fresh = raw_allocate(new_layout.size, new_layout.align);
    if (fresh == nullptr) return refuse();
    std::memcpy(fresh, block.ptr, old_size);
    std::free(block.ptr);
  }
  // The new block meets the alignment of this request, not necessarily the first one's.
  table_.erase(e);
  table_.insert(reinterpret_cast<std::uintptr_t>(fresh), new_layout.size, new_layout.align);
  counters_.on_resize(old_size, new_layout.size);
  return Block{static_cast<std::byte*>(fresh), new_layout.size};
}

Block MallocAllocator::shrink(Block block, Layout new_layout, Move move) noexcept {
  if (new_layout.size > block.size || !new_layout.valid()) {
    counters_.failures.add(1);
    return misuse(Misuse::bad_argument, block.ptr, "shrink");
  }
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return block;
  detail::PointerTable::Entry* e = table_.find(reinterpret_cast<std::uintptr_t>(block.ptr));
  if (e == nullptr) {
    counters_.failures.add(1);
    return misuse(Misuse::foreign_pointer, block.ptr, "shrink");
  }
  if (new_layout.size == 0) {
    deallocate(block, new_layout.align);
    return allocate(new_layout);
  }
  const std::size_t old_size = e->size;
  if (!is_aligned(block.ptr, new_layout.align)) {
    // A larger alignment than the block has: a new block (Move::allowed) or a refusal.
    if (move == Move::forbidden || !table_.reserve_one()) return refuse();
    void* fresh = raw_allocate(new_layout.size, new_layout.align);
    if (fresh == nullptr) return refuse();
    std::memcpy(fresh, block.ptr, new_layout.size);
    std::free(block.ptr);
    table_.erase(table_.find(reinterpret_cast<std::uintptr_t>(block.ptr)));  // reserve may rehash
    table_.insert(reinterpret_cast<std::uintptr_t>(fresh), new_layout.size, new_layout.align);
    counters_.on_resize(old_size, new_layout.size);
    return Block{static_cast<std::byte*>(fresh), new_layout.size};
  }
  if (move == Move::allowed && e->align <= kMallocAlign && new_layout.align <= kMallocAlign &&
      old_size - new_layout.size >= kReallocShrinkSaving && table_.reserve_one()) {
    e = table_.find(reinterpret_cast<std::uintptr_t>(block.ptr));
    void* fresh = std::realloc(block.ptr, new_layout.size);
    if (fresh != nullptr) {
      const std::size_t align = e->align;
      table_.erase(e);
      table_.insert(reinterpret_cast<std::uintptr_t>(fresh), new_layout.size, align);
      counters_.on_resize(old_size, new_layout.size);
      return Block{static_cast<std::byte*>(fresh), new_layout.size};
    }
    // realloc failed: the block is untouched; shrink it in place instead.
  }
  e->size = new_layout.size;
  counters_.on_resize(old_size, new_layout.size);
  return Block{block.ptr, new_layout.size};
}

CheckResult MallocAllocator::check_invariants() const {
  if (std::string e = table_.check(); !e.empty()) return check_fail("malloc: table ", e);
  const Stats s = counters_.snapshot();
  std::size_t bytes = 0;
  std::uintptr_t misaligned = 0;
  table_.for_each([&](const detail::PointerTable::Entry& e) {
    bytes += e.size;
    if ((e.key & (e.align - 1)) != 0) misaligned = e.key;
  });
  CTXALLOC_INVARIANT(misaligned == 0, "malloc: block ", reinterpret_cast<void*>(misaligned),
                     " is not aligned as asked");
  CTXALLOC_INVARIANT(table_.count() == s.live_blocks(), "malloc: table holds ", table_.count(),
                     " blocks, stats count ", s.live_blocks());
  CTXALLOC_INVARIANT(bytes == s.bytes_in_use, "malloc: table holds ", bytes, " bytes, stats count ",
                     s.bytes_in_use);
  return CheckResult::ok();
}

}  // namespace ctxalloc
