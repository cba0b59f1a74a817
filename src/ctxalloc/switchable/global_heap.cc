#include "ctxalloc/switchable/global_heap.h"

#include <cstring>

#include "ctxalloc/core/misuse.h"

namespace ctxalloc {
namespace {

constexpr std::size_t kSeg = SegmentMap::kSegmentSize;

bool options_ok(const GlobalHeapOptions& o) noexcept {
  if (o.chunk_bytes == 0 || o.chunk_bytes % kSeg != 0) return false;
  // The largest class must fit in a chunk after its header and the tree's metadata
  // (at most 1/32 of the region plus a header).
  const std::size_t usable = o.chunk_bytes - o.chunk_bytes / 16 - 4096;
  return o.tree.max_class() <= usable;
}

}  // namespace

GlobalHeap::GlobalHeap(SegmentSource& segments, const GlobalHeapOptions& options) noexcept
    : segments_(segments),
      options_(options),
      config_ok_(options_ok(options)),
      chunk_tag_{OwnerKind::global_heap, this},
      large_tag_{OwnerKind::large, this},
      chunks_(segments, &chunk_tag_),
      tree_(options.tree),
      large_(options.large) {}

GlobalHeap::~GlobalHeap() {
  // The chunks go back when chunks_ is destroyed, after tree_. Large mappings still live are
  // unmapped by large_'s destructor; their segment-map entries must go first, or a later mapping at
  // the same address would find this (destroyed) heap as its owner.
  std::lock_guard<std::mutex> large_guard(large_lock_);
  large_.for_each_mapping([this](Block m) {
    SegmentMap::unregister_range(m.ptr, align_up(m.size, kSeg), &large_tag_);
  });
}

bool GlobalHeap::add_chunk() noexcept {
  if (!config_ok_) return false;
  const Block region = chunks_.add(options_.chunk_bytes / kSeg);
  if (region.ptr == nullptr) return false;
  if (!tree_.add_region(region)) {
    chunks_.remove(region);
    return false;
  }
  chunks_added_.add(1);
  return true;
}

void GlobalHeap::return_free_chunks(std::size_t keep) noexcept {
  while (tree_.free_region_count() > keep) {
    const Block region = tree_.take_free_region();
    if (region.ptr == nullptr) break;
    chunks_.remove(region);
    chunks_returned_.add(1);
  }
}

Block GlobalHeap::allocate(Layout layout) noexcept {
  // What the tree cannot hold (its oversize allocator is NullAllocator here), also for
  // its alignment alone, gets a mapping of its own.
  if (!tree_.config().fits(layout.size, layout.align)) {
    if (!layout.valid()) {
      std::lock_guard<std::mutex> guard(lock_);
      failures_.add(1);
      misuses_.add(1);
      report_misuse(Misuse::bad_argument, "global_heap", "allocate", nullptr);
      return Block{};
    }
    return allocate_large(layout);
  }
  std::lock_guard<std::mutex> guard(lock_);
  Block b = tree_.allocate(layout);
  // A refusal with room to grow: take a chunk and try once more. The tree counted the
  // first refusal as a failure; the retry's success is what the caller sees.
  // Size 0 included: with an alignment above the sentinel's it is a real block too.
  if (b.ptr == nullptr && layout.valid() && add_chunk()) b = tree_.allocate(layout);
  return b;
}

Block GlobalHeap::allocate_zeroed(Layout layout) noexcept {
  Block b = allocate(layout);
  // Large mappings come zeroed from the kernel; tree blocks may be reused memory.
  if (b.ptr != nullptr && b.size != 0 && !is_large(b.ptr)) std::memset(b.ptr, 0, b.size);
  return b;
}

bool GlobalHeap::is_large(const void* p) const noexcept {
  return SegmentMap::lookup(p) == &large_tag_;
}

void GlobalHeap::deallocate(Block block, std::size_t align) noexcept {
  if (block.ptr == nullptr || (block.size == 0 && is_zero_size_sentinel(block.ptr))) return;
  const OwnerTag* tag = SegmentMap::lookup(block.ptr);
  if (tag == &large_tag_) return deallocate_large(block);
  std::lock_guard<std::mutex> guard(lock_);
  if (tag != &chunk_tag_) {
    misuses_.add(1);
    report_misuse(Misuse::foreign_pointer, "global_heap", "deallocate", block.ptr);
    return;
  }
  tree_.deallocate(block, align);
  if (tree_.free_region_count() > options_.keep_free_chunks) {
    return_free_chunks(options_.keep_free_chunks);
  }
}

Block GlobalHeap::allocate_large(Layout layout) noexcept {
  // Mappings start on a segment boundary, so the segment map can name their owner; the
  // address space past the end of the last segment is reserved by nobody else's
  // registration (the next mapping of ours starts on a later boundary).
  const std::size_t align = layout.align > kSeg ? layout.align : kSeg;
  std::lock_guard<std::mutex> guard(large_lock_);
  const Block b = large_.allocate(Layout{layout.size, align});
  if (b.ptr == nullptr) return b;
  std::size_t span = 0;
  if (!align_up_checked(b.size, kSeg, &span) ||
      !SegmentMap::register_range(b.ptr, span, &large_tag_)) {
    large_.deallocate(b, align);
    failures_.add(1);
    return Block{};
  }
  return b;
}

void GlobalHeap::deallocate_large(Block block) noexcept {
  std::lock_guard<std::mutex> guard(large_lock_);
  const Block m = large_.mapping_of(block.ptr);
  if (m.ptr != block.ptr) {  // an interior pointer, or a mapping freed already
    misuses_.add(1);
    report_misuse(m.ptr == nullptr ? Misuse::double_free : Misuse::foreign_pointer, "global_heap",
                  "deallocate", block.ptr);
    return;
  }
  SegmentMap::unregister_range(m.ptr, align_up(m.size, kSeg), &large_tag_);
  large_.deallocate(Block{m.ptr, m.size}, kSeg);
}

Block GlobalHeap::resize_large(Block block, Layout new_layout, Move move, bool grow) noexcept {
  std::lock_guard<std::mutex> guard(large_lock_);
  const Block m = large_.mapping_of(block.ptr);
  if (m.ptr != block.ptr) {
    misuses_.add(1);
    report_misuse(Misuse::foreign_pointer, "global_heap", grow ? "grow" : "shrink", block.ptr);
    return Block{};
  }
  const std::size_t align = new_layout.align > kSeg ? new_layout.align : kSeg;
  const Layout l{new_layout.size, align};
  // The mapping may move (mremap): take its registration off first and put it back on
  // wherever it ends up, also when the resize fails.
  SegmentMap::unregister_range(m.ptr, align_up(m.size, kSeg), &large_tag_);
  Block r = grow ? large_.grow(Block{m.ptr, block.size}, l, move)
                 : large_.shrink(Block{m.ptr, block.size}, l, move);
  const Block now = large_.mapping_of(r.ptr != nullptr ? r.ptr : m.ptr);
  if (!SegmentMap::register_range(now.ptr, align_up(now.size, kSeg), &large_tag_)) {
    // Cannot happen: the range was ours a moment ago or is a fresh aligned mapping.
    failures_.add(1);
  }
  return r;
}

Block GlobalHeap::move_between(Block block, Layout new_layout, bool to_large) noexcept {
  Block fresh = allocate(new_layout);
  if (fresh.ptr == nullptr) return fresh;
  const std::size_t n = block.size < new_layout.size ? block.size : new_layout.size;
  std::memcpy(fresh.ptr, block.ptr, n);
  (void)to_large;
  deallocate(block, 1);  // its own alignment, not new_layout's (1: not known)
  return fresh;
}

Block GlobalHeap::grow(Block block, Layout new_layout, Move move) noexcept {
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) {
    return move == Move::forbidden ? Block{} : allocate(new_layout);
  }
  const bool from_large = is_large(block.ptr);
  // Also for the alignment alone: a tree block cannot be given one the tree cannot meet.
  const bool to_large = !tree_.config().fits(new_layout.size, new_layout.align);
  if (from_large) return resize_large(block, new_layout, move, true);
  if (to_large) {
    if (move == Move::forbidden) {
      std::lock_guard<std::mutex> guard(lock_);
      failures_.add(1);
      return Block{};
    }
    const std::size_t have = allocated_size(block.ptr);
    if (have == 0) {
      std::lock_guard<std::mutex> guard(lock_);
      misuses_.add(1);
      report_misuse(Misuse::foreign_pointer, "global_heap", "grow", block.ptr);
      return Block{};
    }
    return move_between(Block{block.ptr, have}, new_layout, true);
  }
  std::lock_guard<std::mutex> guard(lock_);
  Block r = tree_.grow(block, new_layout, Move::forbidden);
  if (r.ptr != nullptr || move == Move::forbidden) return r;
  r = tree_.grow(block, new_layout, Move::allowed);
  if (r.ptr == nullptr && add_chunk()) r = tree_.grow(block, new_layout, Move::allowed);
  return r;
}

Block GlobalHeap::shrink(Block block, Layout new_layout, Move move) noexcept {
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return block;
  if (is_large(block.ptr)) {
    if (tree_.config().fits(new_layout.size, new_layout.align) && move == Move::allowed &&
        new_layout.size != 0) {
      // Back from a mapping into the tree: a mapping of a few KiB would waste a segment.
      return move_between(block, new_layout, false);
    }
    return resize_large(block, new_layout, move, false);
  }
  if (new_layout.size != 0 && !is_aligned(block.ptr, new_layout.align)) {
    // A larger alignment than the block has: a new block, made as allocate makes one (a
    // mapping when the tree cannot meet it, a new chunk when the tree has no room).
    if (move == Move::allowed) return move_between(block, new_layout, false);
    std::lock_guard<std::mutex> guard(lock_);
    failures_.add(1);
    return Block{};
  }
  std::lock_guard<std::mutex> guard(lock_);
  return tree_.shrink(block, new_layout, move);
}

bool GlobalHeap::contains(const void* p) const noexcept {
  const OwnerTag* tag = SegmentMap::lookup(p);
  return tag == &chunk_tag_ || tag == &large_tag_;
}

std::size_t GlobalHeap::allocated_size(const void* p) const noexcept {
  const OwnerTag* tag = SegmentMap::lookup(p);
  if (tag == &chunk_tag_) {
    std::lock_guard<std::mutex> guard(lock_);
    return tree_.allocated_size(p);
  }
  if (tag == &large_tag_) {
    std::lock_guard<std::mutex> guard(large_lock_);
    const Block m = large_.mapping_of(p);
    return m.ptr == p ? m.size : 0;
  }
  return 0;
}

void GlobalHeap::trim() noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  return_free_chunks(0);
}

std::size_t GlobalHeap::chunks() const noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  return chunks_.count();
}

std::size_t GlobalHeap::large_mappings() const noexcept {
  std::lock_guard<std::mutex> guard(large_lock_);
  return large_.live_mappings();
}

Stats GlobalHeap::stats() const noexcept {
  Stats s = tree_.stats();
  s += large_.stats();
  s.peak_bytes = tree_.stats().peak_bytes + large_.stats().peak_bytes;  // an upper bound
  s.failures += failures_.get();
  s.misuses += misuses_.get();
  return s;
}

CheckResult GlobalHeap::check_invariants() const {
  std::lock_guard<std::mutex> guard(lock_);
  if (CheckResult r = tree_.check_invariants(); !r) return check_fail("global_heap: ", r.error());
  if (CheckResult r =
          chunks_.check("global_heap", [this](Block region) { return tree_.contains(region.ptr); });
      !r) {
    return r;
  }
  CTXALLOC_INVARIANT(tree_.region_count() == chunks_.count(), "global_heap: the tree has ",
                     tree_.region_count(), " regions for ", chunks_.count(), " chunks");
  CTXALLOC_INVARIANT(tree_.free_region_count() <= options_.keep_free_chunks + 1,
                     "global_heap: ", tree_.free_region_count(),
                     " entirely free chunks kept, more than ", options_.keep_free_chunks);
  std::lock_guard<std::mutex> large_guard(large_lock_);
  if (CheckResult r = large_.check_invariants(); !r) {
    return check_fail("global_heap: large: ", r.error());
  }
  return CheckResult::ok();
}

}  // namespace ctxalloc
