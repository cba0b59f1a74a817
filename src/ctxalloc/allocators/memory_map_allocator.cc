#include "ctxalloc/allocators/memory_map_allocator.h"

namespace ctxalloc {

Block MemoryMapAllocator::refuse() noexcept {
  counters_.failures.add(1);
  return Block{};
}

Block MemoryMapAllocator::bad_argument(const void* p, const char* op) noexcept {
  counters_.failures.add(1);
  misuse(Misuse::bad_argument, p, op);
  return Block{};
}

void MemoryMapAllocator::misuse(Misuse what, const void* p, const char* op) noexcept {
  counters_.misuses.add(1);
  report_misuse(what, "mmap", op, p);
}

Block MemoryMapAllocator::live_block(Block block, const char* op) noexcept {
  const Block live = source_.block_of(block.ptr);
  if (live.ptr == nullptr || live.ptr != block.ptr) {
    // Freed already (the source remembers recent releases), inside a mapping but not its
    // start, or never ours.
    misuse(source_.misuse_kind(block.ptr), block.ptr, op);
    return Block{};
  }
  // The caller may pass the size it asked for (less than one unit below the mapping's)
  // or the size it was given; size 0 names the one-unit block of a zero-size request.
  const std::size_t unit = source_.granularity();
  const bool size_ok = block.size == 0 ? live.size == unit
                                       : block.size <= live.size && live.size - block.size < unit;
  if (!size_ok) {
    misuse(Misuse::wrong_size, block.ptr, op);
    return Block{};
  }
  return live;
}

Block MemoryMapAllocator::allocate(Layout layout) noexcept {
  if (auto answer = allocate_prologue(layout, [&] { return bad_argument(nullptr, "allocate"); }))
    return *answer;
  const Block b = source_.obtain_aligned(layout.size, layout.align);
  if (b.ptr == nullptr) return refuse();
  counters_.on_allocate(b.size);
  return b;
}

void MemoryMapAllocator::deallocate(Block block, std::size_t /*align*/) noexcept {
  if (block.ptr == nullptr) return;  // like free(NULL)
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return;
  const Block live = live_block(block, "deallocate");
  if (live.ptr == nullptr) return;
  source_.release(live);
  counters_.on_deallocate(live.size);
}

Block MemoryMapAllocator::grow(Block block, Layout new_layout, Move move) noexcept {
  if (!new_layout.valid() || new_layout.size < block.size) return bad_argument(block.ptr, "grow");
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) {
    if (move == Move::forbidden) return refuse();
    return allocate(new_layout);
  }
  const Block live = live_block(block, "grow");
  if (live.ptr == nullptr) return refuse();
  const std::size_t size = new_layout.size == 0 ? 1 : new_layout.size;
  const Block r = source_.resize(live, size, new_layout.align, move);
  if (r.ptr == nullptr) return refuse();
  counters_.on_resize(live.size, r.size);
  return r;
}

Block MemoryMapAllocator::shrink(Block block, Layout new_layout, Move move) noexcept {
  if (!new_layout.valid() || new_layout.size > block.size) return bad_argument(block.ptr, "shrink");
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return block;
  const Block live = live_block(block, "shrink");
  if (live.ptr == nullptr) return refuse();
  if (new_layout.size == 0) {
    source_.release(live);
    counters_.on_deallocate(live.size);
    return allocate(new_layout);
  }
  const Block r = source_.resize(live, new_layout.size, new_layout.align, move);
  if (r.ptr == nullptr) return refuse();
  counters_.shrinks.add(1);
  counters_.bytes_in_use.sub(live.size - r.size);
  return r;
}

Stats MemoryMapAllocator::stats() const noexcept {
  Stats s = counters_.snapshot();
  s.capacity = 0;  // grows without bound (the kernel says when it is full)
  return s;
}

CheckResult MemoryMapAllocator::check_invariants() const {
  if (CheckResult r = source_.check_invariants(); !r) return r;
  const Stats s = counters_.snapshot();
  const SourceStats src = source_.stats();
  CTXALLOC_INVARIANT(s.live_blocks() == src.live_blocks(), "mmap: ", s.live_blocks(),
                     " live allocations but ", src.live_blocks(), " live mappings");
  CTXALLOC_INVARIANT(s.bytes_in_use == src.bytes_held, "mmap: ", s.bytes_in_use,
                     " bytes in use but the mappings hold ", src.bytes_held);
  CTXALLOC_INVARIANT(s.peak_bytes >= s.bytes_in_use, "mmap: peak ", s.peak_bytes,
                     " below bytes in use ", s.bytes_in_use);
  return CheckResult::ok();
}

}  // namespace ctxalloc
