#include "ctxalloc/switchable/thread_heap.h"
#include "ctxalloc/switchable/owner.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "support/random_driver.h"

namespace ctxalloc {
namespace {

constexpr std::size_t kSeg = SegmentMap::kSegmentSize;

bool is_small(const void* p) {
  return SegmentMap::lookup(p)->kind == owner_kind::size_class;
}

// ThreadHeap's owner-thread API seen as an Allocator, so the randomized driver and the
// reference model can check it like every other allocator.
class HeapAsAllocator {
 public:
  explicit HeapAsAllocator(ThreadHeap& h) : h_(h) {}
  Block allocate(Layout l) noexcept { return h_.allocate(l); }
  Block allocate_zeroed(Layout l) noexcept {
    Block b = h_.allocate(l);
    if (b.ptr != nullptr && b.size != 0) std::memset(b.ptr, 0, b.size);
    return b;
  }
  void deallocate(Block b, std::size_t align) noexcept {
    const OwnerTag* tag = SegmentMap::lookup(b.ptr);
    if (tag != nullptr && h_.owns_tag(tag)) {
      h_.free_owned(b.ptr, tag);
    } else if (tag != nullptr) {
      h_.global().deallocate(b, align);
    }
  }
  Block grow(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }
  Block shrink(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }
  bool contains(const void* p) const noexcept { return SegmentMap::lookup(p) != nullptr; }
  CheckResult check_invariants() const { return h_.check_invariants(); }
  Stats stats() const noexcept {
    Stats s = h_.stats().total();
    const Stats g = h_.global().stats();
    s.bytes_in_use += g.bytes_in_use;
    s.allocations += g.allocations;
    s.deallocations += g.deallocations;
    s.peak_bytes = s.bytes_in_use;
    return s;
  }

 private:
  Block resize(Block b, Layout l, Move m) noexcept {
    const OwnerTag* tag = SegmentMap::lookup(b.ptr);
    if (tag != nullptr && h_.owns_tag(tag)) return h_.resize(b.ptr, tag, l, m);
    return l.size >= b.size ? h_.global().grow(b, l, m) : h_.global().shrink(b, l, m);
  }
  ThreadHeap& h_;
};

TEST(ThreadHeap, SmallMediumAndLargeGoWhereTheyBelong) {
  SegmentSource segs;
  GlobalHeap global(segs);
  ThreadHeap h(segs, global);
  Block small = h.allocate(Layout{100, 16});
  Block medium = h.allocate(Layout{20000, 16});
  Block large = h.allocate(Layout{2 << 20, 16});
  ASSERT_TRUE(small && medium && large);
  EXPECT_EQ(SegmentMap::lookup(small.ptr)->kind, owner_kind::size_class);
  EXPECT_EQ(SegmentMap::lookup(medium.ptr)->kind, owner_kind::tree);
  EXPECT_EQ(SegmentMap::lookup(large.ptr)->kind, owner_kind::large);
  EXPECT_EQ(ThreadHeap::of_tag(SegmentMap::lookup(small.ptr)), &h);
  EXPECT_EQ(ThreadHeap::of_tag(SegmentMap::lookup(medium.ptr)), &h);
  EXPECT_EQ(h.stats().large, 1u);
  EXPECT_EQ(h.stats().fallbacks, 0u);
  h.free_owned(small.ptr, SegmentMap::lookup(small.ptr));
  h.free_owned(medium.ptr, SegmentMap::lookup(medium.ptr));
  global.deallocate(large, 16);
  EXPECT_EQ(h.live_bytes(), 0u);
  EXPECT_TRUE(h.check_invariants());
}

TEST(ThreadHeap, AlignmentsTheTreeCannotPadGoToTheGlobalHeapWithoutGrowingTheHeap) {
  SegmentSource segs;
  GlobalHeap global(segs);
  ThreadHeap h(segs, global);
  const std::size_t max_class = TreeConfig{}.max_class();
  for (int i = 0; i < 20; ++i) {
    for (std::size_t align : {max_class / 2, max_class}) {
      const Block b = h.allocate(Layout{max_class / 2 + 4096, align});
      ASSERT_TRUE(b);
      EXPECT_TRUE(is_aligned(b.ptr, align));
      EXPECT_EQ(SegmentMap::lookup(b.ptr)->kind, owner_kind::large);
      global.deallocate(b, align);
    }
  }
  // Each refusal used to add a medium segment that could not help: 40 segments.
  EXPECT_EQ(h.stats().medium_segments, 0u);
  EXPECT_EQ(h.stats().large, 40u);
  EXPECT_TRUE(h.check_invariants());
}

TEST(ThreadHeap, ABoundedHeapFallsBackToTheGlobalHeapAndCountsIt) {
  SegmentSource thread_segs(MapOptions{}, 2 * kSeg);  // one for the front, one for the tree
  SegmentSource global_segs;
  GlobalHeap global(global_segs);
  ThreadHeap h(thread_segs, global);
  std::vector<Block> blocks;
  for (int i = 0; i < 16; ++i)
    blocks.push_back(h.allocate(Layout{512 << 10, 16}));
  for (Block b : blocks)
    ASSERT_TRUE(b);
  EXPECT_GT(h.stats().fallbacks, 0u);
  EXPECT_GT(global.stats().bytes_in_use, 0u) << "the overflow went to the global heap";
  for (Block b : blocks) {
    const OwnerTag* tag = SegmentMap::lookup(b.ptr);
    if (h.owns_tag(tag)) {
      h.free_owned(b.ptr, tag);
    } else {
      global.deallocate(b, 16);
    }
  }
  EXPECT_EQ(global.stats().bytes_in_use, 0u);
  EXPECT_TRUE(h.check_invariants());
}

// Spill blocks (what exhausted contexts take) are counted by where they land: the
// thread's own segments, else the global heap's memory -- every block in a chunk of the
// global heap's memory, not only the one that brought the chunk in.
TEST(ThreadHeap, SpillsAreCountedByTheMemoryTheyLandOn) {
  SegmentSource thread_segs(MapOptions{}, kSeg);  // one segment: room for a few spills
  SegmentSource global_segs(MapOptions{}, 2 * kSeg);
  GlobalHeap global(global_segs);
  ThreadHeap h(thread_segs, global);
  std::vector<void*> spilled;
  SpillFrom from = SpillFrom::thread;
  // 512 KiB blocks: fewer than eight fit in one segment, so the thread runs out first.
  for (int i = 0; i < 12; ++i) {
    const Block b = h.allocate_spill(Layout{512 << 10, 16}, &from);
    ASSERT_TRUE(b) << i;
    EXPECT_EQ(from == SpillFrom::global, SegmentMap::lookup(b.ptr) != nullptr &&
                                             SegmentChain::source_of_single(b.ptr) == &global_segs);
    spilled.push_back(b.ptr);
  }
  ThreadHeapStats st = h.stats();
  EXPECT_GT(st.context_spills_thread, 0u);
  EXPECT_GE(st.context_spills_global, 12u - 7u);
  EXPECT_EQ(st.context_spills_thread + st.context_spills_global, 12u);
  // Both sources spent (three segments hold about 21 such blocks): spills then fail,
  // each counted once.
  for (int i = 0; i < 16; ++i) {
    const Block b = h.allocate_spill(Layout{512 << 10, 16}, &from);
    if (b.ptr == nullptr) break;
    spilled.push_back(b.ptr);
  }
  EXPECT_FALSE(h.allocate_spill(Layout{512 << 10, 16}, &from));
  st = h.stats();
  EXPECT_GE(st.context_spill_failures, 1u);
  for (void* p : spilled)
    h.free_spill(p);
  EXPECT_TRUE(h.check_invariants());
  EXPECT_EQ(h.stats().spill.bytes_in_use, 0u);
}

// A configuration may cut the chain short: without the thread tier contexts spill
// straight onto the global heap's memory; without the global tier nothing reaches the
// global heap and requests past the thread's budget are refused (counted).
TEST(ThreadHeap, FallbackTiersCutTheChainShort) {
  SegmentSource thread_segs(MapOptions{}, 2 * kSeg);
  SegmentSource global_segs(MapOptions{}, 4 * kSeg);
  GlobalHeap global(global_segs);
  {
    ThreadHeap h(thread_segs, global);
    h.set_fallback_tiers(FallbackTiers{false, true});
    SpillFrom from = SpillFrom::thread;
    const Block b = h.allocate_spill(Layout{1000, 16}, &from);
    ASSERT_TRUE(b);
    EXPECT_EQ(from, SpillFrom::global);
    EXPECT_EQ(SegmentChain::source_of_single(b.ptr), &global_segs);
    EXPECT_EQ(h.stats().context_spills_thread, 0u);
    EXPECT_EQ(h.stats().context_spills_global, 1u);
    h.free_spill(b.ptr);
  }
  {
    ThreadHeap h(thread_segs, global);
    h.set_fallback_tiers(FallbackTiers{true, false});
    EXPECT_FALSE(h.allocate(Layout{2 << 20, 16})) << "large requests are the global heap's";
    std::vector<Block> blocks;
    for (int i = 0; i < 16; ++i) {
      const Block b = h.allocate(Layout{512 << 10, 16});
      if (b.ptr == nullptr) break;
      EXPECT_TRUE(h.owns_tag(SegmentMap::lookup(b.ptr)));
      blocks.push_back(b);
    }
    EXPECT_LT(blocks.size(), 16u);
    EXPECT_EQ(h.stats().fallbacks, 0u);
    EXPECT_EQ(h.stats().refused, 2u);
    EXPECT_EQ(global.stats().allocations, 0u);
    // The tree holds both segments: a spill finds no thread memory and may not go global.
    SpillFrom from = SpillFrom::global;
    EXPECT_FALSE(h.allocate_spill(Layout{1000, 16}, &from));
    EXPECT_EQ(h.stats().context_spill_failures, 1u);
    EXPECT_EQ(global_segs.bytes_out(), 0u);
    for (Block b : blocks)
      h.free_owned(b.ptr, SegmentMap::lookup(b.ptr));
    EXPECT_TRUE(h.check_invariants());
  }
  EXPECT_EQ(global_segs.bytes_out(), 0u);
}

TEST(ThreadHeap, ResizeMovesAcrossItsPartsKeepingTheBytes) {
  SegmentSource segs;
  GlobalHeap global(segs);
  ThreadHeap h(segs, global);
  Block b = h.allocate(Layout{64, 16});
  std::memset(b.ptr, 0x42, 64);
  Block m = h.resize(b.ptr, SegmentMap::lookup(b.ptr), Layout{5000, 16}, Move::allowed);
  ASSERT_TRUE(m);
  EXPECT_EQ(SegmentMap::lookup(m.ptr)->kind, owner_kind::tree);
  EXPECT_EQ(static_cast<unsigned char>(m.ptr[63]), 0x42u);
  Block g = h.resize(m.ptr, SegmentMap::lookup(m.ptr), Layout{6000, 16}, Move::forbidden);
  EXPECT_EQ(g.ptr, m.ptr) << "the tree grows in place into free space behind the block";
  EXPECT_FALSE(h.resize(g.ptr, SegmentMap::lookup(g.ptr), Layout{5 << 20, 16}, Move::forbidden))
      << "more than a segment cannot grow in place";
  EXPECT_EQ(ThreadHeap::live_size_any_thread(g.ptr, SegmentMap::lookup(g.ptr)), g.size);
  h.free_owned(g.ptr, SegmentMap::lookup(g.ptr));
  EXPECT_EQ(h.live_bytes(), 0u);
}

TEST(ThreadHeap, RemoteFreesAreDrainedByTheOwner) {
  SegmentSource segs;
  GlobalHeap global(segs);
  ThreadHeap h(segs, global);
  std::vector<void*> blocks;
  for (int i = 0; i < 4000; ++i) {
    const std::size_t size = i % 3 == 0 ? 3000 : 48;
    blocks.push_back(h.allocate(Layout{size, 16}).ptr);
  }
  std::thread other([&] {
    for (void* p : blocks)
      h.push_remote(p, p, is_small(p));
  });
  other.join();
  h.drain_remote();
  EXPECT_EQ(h.live_bytes(), 0u);
  EXPECT_EQ(h.stats().remote_received, 4000u);
  EXPECT_TRUE(h.check_invariants());
}

TEST(ThreadHeap, AnAbandonedHeapTakesFreesUnderItsLockAndCanBeAdopted) {
  SegmentSource segs;
  GlobalHeap global(segs);
  ThreadHeap h(segs, global);
  void* a = h.allocate(Layout{32, 16}).ptr;
  void* b = h.allocate(Layout{2000, 16}).ptr;
  h.abandon();
  EXPECT_TRUE(h.abandoned());
  std::thread other([&] {
    h.push_remote(a, a, is_small(a));
    h.push_remote(b, b, is_small(b));
  });
  other.join();
  EXPECT_EQ(h.live_bytes(), 0u) << "freed directly, no owner needed";
  h.adopt();
  EXPECT_FALSE(h.abandoned());
  void* c = h.allocate(Layout{32, 16}).ptr;
  std::thread again([&] { h.push_remote(c, c, is_small(c)); });
  again.join();
  h.drain_remote();
  EXPECT_EQ(h.live_bytes(), 0u);
  EXPECT_TRUE(h.check_invariants());
}

TEST(ThreadHeap, RandomizedAgainstTheReferenceModel) {
  SegmentSource segs;
  GlobalHeap global(segs);
  ThreadHeap h(segs, global);
  HeapAsAllocator a(h);
  testing::DriverOptions opt;
  opt.seed = testing::test_seed(0x7E4);
  opt.max_size = 128 << 10;  // small, medium and (rarely) fallback-free large tree blocks
  opt.max_align = 4096;
  opt.target_live = 800;
  opt.max_live = 2000;
  opt.exact_bytes = false;  // blocks are rounded to classes; the model sums reported sizes
  testing::RandomDriver<HeapAsAllocator> driver(a, opt);
  ASSERT_TRUE(driver.run());
  ASSERT_TRUE(driver.free_all());
  EXPECT_EQ(h.live_bytes(), 0u);
  h.trim();
  EXPECT_EQ(h.stats().small_segments + h.stats().medium_segments, 0u);
  EXPECT_TRUE(h.check_invariants());
}

}  // namespace
}  // namespace ctxalloc
