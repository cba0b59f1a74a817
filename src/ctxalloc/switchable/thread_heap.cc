#include "ctxalloc/switchable/thread_heap.h"

#include <cstring>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/owner.h"

namespace ctxalloc {
namespace {

constexpr std::size_t kSeg = SegmentMap::kSegmentSize;
// The remote stack's value once the heap is abandoned: never a block address.
void* const kClosed = reinterpret_cast<void*>(std::uintptr_t{1});

void*& link_of(void* block) noexcept {
  return *static_cast<void**>(block);
}

}  // namespace

ThreadHeap::ThreadHeap(SegmentSource& segments, GlobalHeap& global) noexcept
    : small_(segments.provider()),
      medium_tag_{OwnerTag{owner_kind::tree, &medium_}, this},
      medium_chunks_(segments, &medium_tag_.tag),
      spill_tag_{OwnerTag{owner_kind::spill, &spill_}, this},
      spill_chunks_(segments, &spill_tag_.tag),
      flows_(this, segments),
      segments_(segments),
      global_(global) {
  small_.set_user(this);
  small_.set_refill_hook(RefillHook{
      this, [](void* self) noexcept {
        auto* h = static_cast<ThreadHeap*>(self);
        void* chain = h->remote_small_.load(std::memory_order_relaxed);
        if (chain != nullptr && chain != kClosed) {
          h->drain_chain(h->remote_small_.exchange(nullptr, std::memory_order_acquire), true);
        }
      }});
}

ThreadHeap::~ThreadHeap() {
  drain_remote();
}

ThreadHeap* ThreadHeap::of_tag(const OwnerTag* tag) noexcept {
  return tag->kind == owner_kind::size_class ? of_small(tag) : of_heap_tag(tag);
}

Block ThreadHeap::allocate(Layout layout) noexcept {
  if (layout.size <= kSmallMax &&
      (layout.size == 0 || SizeClassAllocator::class_size_for(layout.size, layout.align) != 0)) {
    const Block b = small_.allocate(layout);
    if (b.ptr != nullptr) return b;
  }
  // Too large for the tree, also for its alignment alone (adding a segment would not
  // help): the global heap maps it, unless the fallback tiers leave it out.
  if (!medium_.config().fits(layout.size, layout.align)) {
    if (!tiers_.global) return refuse();
    large_.add(1);
    return global_.allocate(layout);
  }
  const Block b = allocate_medium(layout);
  return b.ptr != nullptr ? b : fallback(layout);
}

Block ThreadHeap::fallback(Layout layout) noexcept {
  if (!tiers_.global) return refuse();
  fallbacks_.add(1);
  return global_.allocate(layout);
}

Block ThreadHeap::refuse() noexcept {
  refused_.add(1);
  return Block{};
}

Block ThreadHeap::allocate_medium(Layout layout) noexcept {
  Block b = medium_.allocate(layout);
  if (b.ptr == nullptr && add_medium_segment()) b = medium_.allocate(layout);
  return b;
}

bool ThreadHeap::add_medium_segment() noexcept {
  const Block region = medium_chunks_.add(1);
  if (region.ptr == nullptr) return false;
  if (!medium_.add_region(region)) {
    medium_chunks_.remove(region);
    return false;
  }
  return true;
}

void ThreadHeap::return_free_medium_segments(std::size_t keep) noexcept {
  while (medium_.free_region_count() > keep) {
    const Block region = medium_.take_free_region();
    if (region.ptr == nullptr) break;
    medium_chunks_.remove(region);
  }
}

void ThreadHeap::free_owned(void* p, const OwnerTag* tag) noexcept {
  if (tag->owner == &small_) {
    small_.free_owned(p, tag);
    return;
  }
  medium_.deallocate(Block{static_cast<std::byte*>(p), 0}, 1);
  // Keep one entirely free segment for the next burst; give back the rest.
  if (medium_.free_region_count() > 1) return_free_medium_segments(1);
}

std::size_t ThreadHeap::allocated_size(const void* p, const OwnerTag* tag) const noexcept {
  return tag->owner == &small_ ? small_.allocated_size(p) : medium_.allocated_size(p);
}

std::size_t ThreadHeap::live_size_any_thread(const void* p, const OwnerTag* tag) noexcept {
  if (tag->kind == owner_kind::size_class) return SizeClassAllocator::class_size_at(p);
  const auto chunk = reinterpret_cast<std::uintptr_t>(p) & ~(kSeg - 1);
  return BasicTreeAllocator<NullAllocator>::live_size_in_region(
      reinterpret_cast<const std::byte*>(chunk) + SegmentChain::kHeader, p);
}

Block ThreadHeap::resize(void* p, const OwnerTag* tag, Layout new_layout, Move move) noexcept {
  const std::size_t have = allocated_size(p, tag);
  if (have == 0) {
    misuses_.add(1);
    report_misuse(Misuse::double_free, "thread_heap", "resize", p);
    return Block{};
  }
  auto* bp = static_cast<std::byte*>(p);
  const bool small = tag->owner == &small_;
  if (new_layout.size == 0) {
    free_owned(p, tag);
    return allocate(new_layout);
  }
  if (is_aligned(p, new_layout.align)) {
    if (new_layout.size <= have) {
      // Shrinking in place; a tree block also gives its tail back.
      if (small) return Block{bp, have};
      return medium_.shrink(Block{bp, have}, new_layout, Move::forbidden);
    }
    if (!small) {
      const Block r = medium_.grow(Block{bp, have}, new_layout, Move::forbidden);
      if (r.ptr != nullptr) return r;
    }
  }
  if (move == Move::forbidden) return Block{};
  const Block fresh = allocate(new_layout);
  if (fresh.ptr == nullptr) return fresh;
  std::memcpy(fresh.ptr, p, have < new_layout.size ? have : new_layout.size);
  free_owned(p, tag);
  return fresh;
}

Block ThreadHeap::allocate_spill(Layout layout, SpillFrom* from) noexcept {
  Block b = spill_block(layout);
  if (b.ptr == nullptr) {
    spill_failures_.add(1);
    return b;
  }
  // Spill chunks are one segment each, so the chunk (and the source it came from) is
  // found by masking: a later spill into a chunk of the global heap's memory counts as
  // global too, not only the spill that brought the chunk in.
  const SegmentSource* src = SegmentChain::source_of_single(b.ptr);
  if (context_source_ != nullptr && src == context_source_) {
    *from = SpillFrom::own;
    spills_own_.add(1);
  } else if (src == &segments_) {
    *from = SpillFrom::thread;
    spills_thread_.add(1);
  } else {
    *from = SpillFrom::global;
    spills_global_.add(1);
  }
  return b;
}

Block ThreadHeap::spill_block(Layout layout) noexcept {
  Block b = spill_.allocate(layout);
  if (b.ptr != nullptr || layout.size > spill_.config().max_class()) return b;
  Block region = context_source_ != nullptr ? spill_chunks_.add(1, context_source_) : Block{};
  if (region.ptr == nullptr && tiers_.thread) region = spill_chunks_.add(1);
  if (region.ptr == nullptr && tiers_.global) {
    // The thread's own budget is spent: the global heap's memory, still tracked here.
    region = spill_chunks_.add(1, &global_.segments());
  }
  if (region.ptr == nullptr) return Block{};
  if (!spill_.add_region(region)) {
    spill_chunks_.remove(region);
    return Block{};
  }
  return spill_.allocate(layout);
}

void ThreadHeap::free_spill(void* block) noexcept {
  spill_.deallocate(Block{static_cast<std::byte*>(block), 0}, 1);
  while (spill_.free_region_count() > 1) {
    const Block region = spill_.take_free_region();
    if (region.ptr == nullptr) break;
    spill_chunks_.remove(region);
  }
}

void ThreadHeap::free_other(void* p) noexcept {
  const OwnerTag* tag = SegmentMap::lookup(p);
  if (tag == &medium_tag_.tag) {
    medium_.deallocate(Block{static_cast<std::byte*>(p), 0}, 1);
  } else if (tag != nullptr && detail::owner_ops(tag).free_drained != nullptr) {
    detail::owner_ops(tag).free_drained(p, tag);  // a block of one of this heap's contexts
  } else {
    misuses_.add(1);
    report_misuse(Misuse::foreign_pointer, "thread_heap", "free_remote", p);
  }
}

void ThreadHeap::drain_chain(void* chain, bool small) noexcept {
  std::uint64_t n = 0;
  while (chain != nullptr) {
    void* next = link_of(chain);
    if (small) {
      small_.free_trusted(chain);  // checked against the live bitmap all the same
    } else {
      free_other(chain);
    }
    chain = next;
    ++n;
  }
  if (!small && medium_.free_region_count() > 1) return_free_medium_segments(1);
  remote_received_.add(n);
}

void ThreadHeap::drain_remote() noexcept {
  for (std::atomic<void*>* stack : {&remote_small_, &remote_medium_}) {
    void* head = stack->load(std::memory_order_relaxed);
    if (head == nullptr || head == kClosed) continue;
    drain_chain(stack->exchange(nullptr, std::memory_order_acquire), stack == &remote_small_);
  }
}

void ThreadHeap::push_remote(void* first, void* last, bool small) noexcept {
  std::atomic<void*>& stack = small ? remote_small_ : remote_medium_;
  void* head = stack.load(std::memory_order_relaxed);
  for (;;) {
    if (head == kClosed) {
      std::lock_guard<std::mutex> guard(lock_);
      if (abandoned()) {
        // No owner: free directly, under the lock that stands in for one.
        link_of(last) = nullptr;
        drain_chain(first, small);
        return;
      }
      head = stack.load(std::memory_order_relaxed);  // adopted meanwhile
      continue;
    }
    link_of(last) = head;
    if (stack.compare_exchange_weak(head, first, std::memory_order_release,
                                    std::memory_order_relaxed)) {
      return;
    }
  }
}

void ThreadHeap::abandon() noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  drain_remote();
  // Close the stacks; whatever was pushed since the drain comes back with the close.
  drain_chain(remote_small_.exchange(kClosed, std::memory_order_acq_rel), true);
  drain_chain(remote_medium_.exchange(kClosed, std::memory_order_acq_rel), false);
  trim();
  abandoned_.store(true, std::memory_order_release);
}

void ThreadHeap::adopt() noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  remote_small_.store(nullptr, std::memory_order_release);
  remote_medium_.store(nullptr, std::memory_order_release);
  abandoned_.store(false, std::memory_order_release);
}

std::size_t ThreadHeap::live_contexts() const noexcept {
  const FlowChunks::Figures f = flows_.figures();
  return arenas_.live_blocks() + f.contexts_live;
}

void ThreadHeap::trim() noexcept {
  flows_.trim();
  small_.trim();
  return_free_medium_segments(0);
  while (spill_.free_region_count() > 0) {
    const Block region = spill_.take_free_region();
    if (region.ptr == nullptr) break;
    spill_chunks_.remove(region);
  }
}

std::size_t ThreadHeap::live_bytes() const noexcept {
  return small_.stats().bytes_in_use + medium_.stats().bytes_in_use + spill_.stats().bytes_in_use;
}

ThreadHeapStats ThreadHeap::stats() const noexcept {
  ThreadHeapStats s;
  s.small = small_.stats();
  s.medium = medium_.stats();
  s.medium.misuses += misuses_.get();
  s.fallbacks = fallbacks_.get();
  s.large = large_.get();
  s.remote_received = remote_received_.get();
  s.medium_segments = medium_chunks_.count();
  s.small_segments = small_.segments();
  s.spill = spill_.stats();
  s.spill_segments = spill_chunks_.count();
  s.contexts_live = live_contexts();
  s.context_blocks_own = spills_own_.get();
  s.context_spills_thread = spills_thread_.get();
  s.context_spills_global = spills_global_.get();
  s.context_spill_failures = spill_failures_.get();
  s.refused = refused_.get();
  return s;
}

CheckResult ThreadHeap::check_invariants() const {
  if (CheckResult r = small_.check_invariants(); !r) return check_fail("thread_heap: ", r.error());
  if (CheckResult r = medium_.check_invariants(); !r) {
    return check_fail("thread_heap: ", r.error());
  }
  if (CheckResult r = medium_chunks_.check(
          "thread_heap", [this](Block region) { return medium_.contains(region.ptr); });
      !r) {
    return r;
  }
  CTXALLOC_INVARIANT(medium_.region_count() == medium_chunks_.count(),
                     "thread_heap: ", medium_chunks_.count(), " medium segments, ",
                     medium_.region_count(), " regions in the tree");
  CTXALLOC_INVARIANT(small_.user() == this, "thread_heap: size-class front not linked back");
  if (CheckResult r = spill_.check_invariants(); !r) {
    return check_fail("thread_heap: spill: ", r.error());
  }
  if (CheckResult r = spill_chunks_.check(
          "thread_heap spill", [this](Block region) { return spill_.contains(region.ptr); });
      !r) {
    return r;
  }
  if (CheckResult r = arenas_.check_invariants(); !r) return check_fail("thread_heap: ", r.error());
  if (CheckResult r = flows_.check_invariants(); !r) return check_fail("thread_heap: ", r.error());
  return CheckResult::ok();
}

}  // namespace ctxalloc
