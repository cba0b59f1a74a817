#include "ctxalloc/switchable/global_heap.h"

#include <cstring>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/switchable/owner.h"

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
      chunk_tag_{owner_kind::global_heap, this},
      large_tag_{owner_kind::large, this},
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
  if (b.ptr == nullptr || b.size == 0) return b;
  // Fresh mappings come zeroed from the kernel; tree blocks and reused mappings may
  // hold old bytes (a reused one only up to what it had before).
  std::size_t dirty = is_large(b.ptr) ? last_large_dirty_bytes() : b.size;
  if (dirty > b.size) dirty = b.size;
  std::memset(b.ptr, 0, dirty);
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

// What the last large allocate of this thread reused (GlobalHeap::last_large_dirty_bytes).
constinit thread_local std::size_t t_large_dirty [[gnu::tls_model("initial-exec")]] = 0;

std::size_t GlobalHeap::last_large_dirty_bytes() noexcept {
  return t_large_dirty;
}

Block GlobalHeap::allocate_large(Layout layout) noexcept {
  // Mappings start on a segment boundary, so the segment map can name their owner; the
  // address space past the end of the last segment is reserved by nobody else's
  // registration (the next mapping of ours starts on a later boundary).
  const std::size_t align = layout.align > kSeg ? layout.align : kSeg;
  std::lock_guard<std::mutex> guard(large_lock_);
  t_large_dirty = 0;
  if (cache_count_ != 0) {
    const Block r = take_cached(layout.size, align);
    if (r.ptr != nullptr) return r;
  }
  const Block b = large_.allocate(Layout{layout.size, align});
  if (b.ptr == nullptr) return b;
  std::size_t span = 0;
  if (!align_up_checked(b.size, kSeg, &span) ||
      !SegmentMap::register_range(b.ptr, span, &large_tag_)) {
    large_.deallocate(b, align);
    failures_.add(1);
    return Block{};
  }
  large_counters_.on_allocate(b.size);
  return b;
}

Block GlobalHeap::take_cached(std::size_t size, std::size_t align) noexcept {
  const std::size_t unit = large_.source().granularity();
  std::size_t want = 0;
  if (!align_up_checked(size == 0 ? 1 : size, unit, &want)) return Block{};
  // The smallest cached mapping that holds the request, else the largest smaller one.
  std::size_t best = kMaxLargeCache;
  std::size_t largest = kMaxLargeCache;
  for (std::size_t i = 0; i < cache_count_; ++i) {
    const CachedMapping& c = cache_[i];
    if (!is_aligned(c.ptr, align)) continue;
    if (c.size >= want && (best == kMaxLargeCache || c.size < cache_[best].size)) best = i;
    if (largest == kMaxLargeCache || c.size > cache_[largest].size) largest = i;
  }
  const std::size_t pick = best != kMaxLargeCache ? best : largest;
  if (pick == kMaxLargeCache) return Block{};
  const CachedMapping c = cache_[pick];
  for (std::size_t i = pick + 1; i < cache_count_; ++i)
    cache_[i - 1] = cache_[i];
  --cache_count_;
  cache_bytes_ -= c.size;
  const Block m{c.ptr, c.size};
  Block r = m;
  if (c.size > want) {
    // Keep the faulted-in tail while the kept tails stay within the slack.
    const std::size_t excess = c.size - want;
    const std::size_t asked = large_counters_.bytes_in_use.get() - kept_excess_ + want;
    const bool keep = oversized_count_ < kMaxOversized &&
                      (kept_excess_ + excess) * 100 <= asked * options_.large_slack_percent;
    if (keep) {
      oversized_[oversized_count_++] = Oversized{c.ptr, excess};
      kept_excess_ += excess;
    } else {
      r = remap_locked(m, m, Layout{want, align}, Move::forbidden, false);
    }
  } else if (c.size < want) {
    r = remap_locked(m, m, Layout{want, align}, Move::allowed, true);
  }
  if (r.ptr == nullptr) {
    // The resize failed (the kernel is out of mappings or memory): the mapping goes,
    // the caller maps afresh.
    evict_cached_block(large_.mapping_of(m.ptr));
    return Block{};
  }
  const Block now = large_.mapping_of(r.ptr);
  t_large_dirty = c.size < now.size ? c.size : now.size;
  large_reuses_.add(1);
  large_counters_.on_allocate(now.size);
  return now;
}

int GlobalHeap::cached_index(const void* p) const noexcept {
  for (std::size_t i = 0; i < cache_count_; ++i) {
    if (cache_[i].ptr == p) return static_cast<int>(i);
  }
  return -1;
}

void GlobalHeap::unmap_large(Block m) noexcept {
  SegmentMap::unregister_range(m.ptr, align_up(m.size, kSeg), &large_tag_);
  large_.deallocate(m, kSeg);
}

void GlobalHeap::evict_cached_block(Block m) noexcept {
  if (m.ptr == nullptr) return;
  unmap_large(m);
  large_evictions_.add(1);
}

void GlobalHeap::evict_cached(std::size_t i) noexcept {
  const CachedMapping c = cache_[i];
  for (std::size_t j = i + 1; j < cache_count_; ++j)
    cache_[j - 1] = cache_[j];
  --cache_count_;
  cache_bytes_ -= c.size;
  evict_cached_block(Block{c.ptr, c.size});
}

std::size_t GlobalHeap::forget_oversized(const void* p) noexcept {
  for (std::size_t i = 0; i < oversized_count_; ++i) {
    if (oversized_[i].ptr != p) continue;
    const std::size_t excess = oversized_[i].excess;
    oversized_[i] = oversized_[--oversized_count_];
    kept_excess_ -= excess;
    return excess;
  }
  return 0;
}

void GlobalHeap::deallocate_large(Block block) noexcept {
  std::lock_guard<std::mutex> guard(large_lock_);
  const Block m = large_.mapping_of(block.ptr);
  if (m.ptr != block.ptr || cached_index(block.ptr) >= 0) {
    // An interior pointer, a mapping freed already (unmapped or in the cache).
    misuses_.add(1);
    report_misuse(
        m.ptr == nullptr || m.ptr == block.ptr ? Misuse::double_free : Misuse::foreign_pointer,
        "global_heap", "deallocate", block.ptr);
    return;
  }
  forget_oversized(m.ptr);
  large_counters_.on_deallocate(m.size);
  const std::size_t entries =
      options_.large_cache_entries < kMaxLargeCache ? options_.large_cache_entries : kMaxLargeCache;
  if (entries == 0 || m.size > options_.large_cache_bytes) {
    unmap_large(m);
    return;
  }
  while (cache_count_ != 0 &&
         (cache_count_ >= entries || cache_bytes_ + m.size > options_.large_cache_bytes)) {
    evict_cached(0);  // the oldest
  }
  cache_[cache_count_++] = CachedMapping{m.ptr, m.size};
  cache_bytes_ += m.size;
}

Block GlobalHeap::remap_locked(Block m, Block block, Layout l, Move move, bool grow) noexcept {
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

Block GlobalHeap::resize_large(Block block, Layout new_layout, Move move, bool grow) noexcept {
  std::lock_guard<std::mutex> guard(large_lock_);
  const Block m = large_.mapping_of(block.ptr);
  if (m.ptr != block.ptr || cached_index(block.ptr) >= 0) {
    misuses_.add(1);
    report_misuse(Misuse::foreign_pointer, "global_heap", grow ? "grow" : "shrink", block.ptr);
    return Block{};
  }
  const std::size_t align = new_layout.align > kSeg ? new_layout.align : kSeg;
  const Block r = remap_locked(m, block, Layout{new_layout.size, align}, move, grow);
  if (r.ptr != nullptr) {
    forget_oversized(m.ptr);  // the block is as large as asked now
    large_counters_.on_resize(m.size, large_.mapping_of(r.ptr).size);
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
    return m.ptr == p && cached_index(p) < 0 ? m.size : 0;
  }
  return 0;
}

void GlobalHeap::trim() noexcept {
  {
    std::lock_guard<std::mutex> guard(lock_);
    return_free_chunks(0);
  }
  std::lock_guard<std::mutex> guard(large_lock_);
  while (cache_count_ != 0)
    evict_cached(cache_count_ - 1);
}

std::size_t GlobalHeap::chunks() const noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  return chunks_.count();
}

std::size_t GlobalHeap::large_mappings() const noexcept {
  std::lock_guard<std::mutex> guard(large_lock_);
  return large_.live_mappings() - cache_count_;
}

std::size_t GlobalHeap::cached_large() const noexcept {
  std::lock_guard<std::mutex> guard(large_lock_);
  return cache_count_;
}

std::size_t GlobalHeap::cached_large_bytes() const noexcept {
  std::lock_guard<std::mutex> guard(large_lock_);
  return cache_bytes_;
}

Stats GlobalHeap::stats() const noexcept {
  // The large part as callers see it: a mapping freed into the cache is a deallocation,
  // one taken from it an allocation; the mapping allocator's own counters see neither.
  Stats large = large_counters_.snapshot();
  const Stats maps = large_.stats();
  large.failures = maps.failures;
  large.misuses = maps.misuses;
  Stats s = tree_.stats();
  s += large;
  s.peak_bytes = tree_.stats().peak_bytes + large.peak_bytes;  // an upper bound
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
  std::size_t cached = 0;
  for (std::size_t i = 0; i < cache_count_; ++i) {
    const CachedMapping& c = cache_[i];
    const Block m = large_.mapping_of(c.ptr);
    CTXALLOC_INVARIANT(m.ptr == c.ptr && m.size == c.size, "global_heap: cached mapping ",
                       static_cast<const void*>(c.ptr), " of ", c.size,
                       " bytes is not a mapping of the heap");
    CTXALLOC_INVARIANT(SegmentMap::lookup(c.ptr) == &large_tag_, "global_heap: cached mapping ",
                       static_cast<const void*>(c.ptr), " lost its registration");
    for (std::size_t j = 0; j < oversized_count_; ++j) {
      CTXALLOC_INVARIANT(oversized_[j].ptr != c.ptr, "global_heap: cached mapping ",
                         static_cast<const void*>(c.ptr), " also counted as a live block");
    }
    cached += c.size;
  }
  CTXALLOC_INVARIANT(cached == cache_bytes_, "global_heap: the cache holds ", cached,
                     " bytes, counted ", cache_bytes_);
  CTXALLOC_INVARIANT(cache_bytes_ <= options_.large_cache_bytes && cache_count_ <= kMaxLargeCache,
                     "global_heap: the cache holds ", cache_count_, " mappings of ", cache_bytes_,
                     " bytes, over its bound of ", options_.large_cache_bytes);
  CTXALLOC_INVARIANT(
      large_.live_mappings() == cache_count_ + large_counters_.snapshot().live_blocks(),
      "global_heap: ", large_.live_mappings(), " mappings, ", cache_count_, " cached and ",
      large_counters_.snapshot().live_blocks(), " live blocks");
  std::size_t excess = 0;
  for (std::size_t j = 0; j < oversized_count_; ++j) {
    const Block m = large_.mapping_of(oversized_[j].ptr);
    CTXALLOC_INVARIANT(m.ptr == oversized_[j].ptr && oversized_[j].excess < m.size,
                       "global_heap: a kept tail of ", oversized_[j].excess,
                       " bytes on no live mapping");
    excess += oversized_[j].excess;
  }
  CTXALLOC_INVARIANT(excess == kept_excess_, "global_heap: kept tails of ", excess,
                     " bytes, counted ", kept_excess_);
  return CheckResult::ok();
}

}  // namespace ctxalloc
