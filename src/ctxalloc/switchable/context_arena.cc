#include "ctxalloc/switchable/context_arena.h"

#include "ctxalloc/switchable/owner.h"

namespace ctxalloc {

Block ArenaSegments::obtain_aligned(std::size_t size, std::size_t align) noexcept {
  constexpr std::size_t kSeg = SegmentMap::kSegmentSize;
  if (size == 0 || size % kSeg != 0 || align > kSeg) return Block{};
  const Block b = source_->obtain(size / kSeg);
  if (b.ptr == nullptr) return b;
  if (!SegmentMap::register_range(b.ptr, b.size, tag_)) {
    source_->release(b);
    return Block{};
  }
  return b;
}

void ArenaSegments::release(Block block) noexcept {
  SegmentMap::unregister_range(block.ptr, block.size, tag_);
  source_->release(block);
}

namespace {
ArenaOptions arena_options(std::size_t block_bytes) noexcept {
  ArenaOptions o;
  o.block_size = block_bytes;
  o.slab_bytes = SegmentMap::kSegmentSize;  // a slab is one registered segment
  return o;
}
}  // namespace

ContextArena::ContextArena(SegmentSource& source, ThreadHeap* heap,
                           std::size_t block_bytes) noexcept
    : tag_{owner_kind::context_arena, this},
      heap_(heap),
      block_bytes_(block_bytes),
      arena_(ArenaSegments(&source, &tag_), arena_options(block_bytes)) {}

ContextArenas::~ContextArenas() {
  for (unsigned i = 0; i < kCount; ++i) {
    if (ContextArena* a = at(i)) a->~ContextArena();
  }
}

ContextArena* ContextArenas::get(std::size_t bytes, SegmentSource& source,
                                 ThreadHeap* heap) noexcept {
  if (!is_pow2(bytes)) return nullptr;
  const unsigned shift = log2_floor(bytes);
  if (shift < kMinShift || shift > kMaxShift) return nullptr;
  const unsigned i = shift - kMinShift;
  if (!made_[i]) {
    new (slots_[i].bytes) ContextArena(source, heap, bytes);
    made_[i] = true;
  }
  return at(i);
}

std::size_t ContextArenas::live_blocks() const noexcept {
  std::size_t n = 0;
  for (unsigned i = 0; i < kCount; ++i) {
    if (const ContextArena* a = at(i)) n += a->live_blocks();
  }
  return n;
}

CheckResult ContextArenas::check_invariants() const {
  for (unsigned i = 0; i < kCount; ++i) {
    if (const ContextArena* a = at(i)) {
      if (CheckResult r = a->check_invariants(); !r)
        return check_fail("context arena: ", r.error());
    }
  }
  return CheckResult::ok();
}

}  // namespace ctxalloc
