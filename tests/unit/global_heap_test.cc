#include "ctxalloc/switchable/global_heap.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "support/misuse_test_helpers.h"
#include "support/random_driver.h"

namespace ctxalloc {

template <>
struct TestPeer<SegmentChain> {
  static std::size_t& count(SegmentChain& c) { return c.count_; }
};

template <>
struct TestPeer<GlobalHeap> {
  static void miscount_chunks(GlobalHeap& h) { ++TestPeer<SegmentChain>::count(h.chunks_); }
};

namespace {

constexpr std::size_t kSeg = SegmentMap::kSegmentSize;

TEST(GlobalHeap, ServesSmallMediumAndLargeRequestsAndFindsTheirSizes) {
  SegmentSource segs;
  GlobalHeap h(segs);
  Block small = h.allocate(Layout{24, 8});
  Block medium = h.allocate(Layout{100000, 64});
  Block large = h.allocate(Layout{3 << 20, 16});
  ASSERT_TRUE(small && medium && large);
  EXPECT_TRUE(is_aligned(medium.ptr, 64));
  EXPECT_TRUE(is_aligned(large.ptr, kSeg)) << "large mappings start on a segment boundary";
  for (Block b : {small, medium, large}) {
    EXPECT_TRUE(h.contains(b.ptr));
    EXPECT_EQ(h.allocated_size(b.ptr), b.size);
    std::memset(b.ptr, 0x77, b.size);
  }
  EXPECT_EQ(SegmentMap::lookup(small.ptr), h.chunk_tag());
  EXPECT_EQ(SegmentMap::lookup(large.ptr), h.large_tag());
  EXPECT_EQ(h.large_mappings(), 1u);
  // Frees need no size.
  for (Block b : {small, medium, large})
    h.deallocate(Block{b.ptr, 0}, 8);
  EXPECT_EQ(h.stats().bytes_in_use, 0u);
  EXPECT_EQ(h.large_mappings(), 0u);
  EXPECT_EQ(SegmentMap::lookup(large.ptr), nullptr);
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeap, AlignmentsThatPushABlockPastTheTreesLargestClassGetAMapping) {
  SegmentSource segs;
  GlobalHeap h(segs);
  const std::size_t max_class = TreeConfig{}.max_class();
  // Small and medium sizes whose alignment padding exceeds the largest class.
  for (std::size_t align : {max_class / 2, max_class}) {
    for (std::size_t size : {std::size_t{100}, max_class / 2 + 4096, max_class - 16}) {
      const Block b = h.allocate(Layout{size, align});
      ASSERT_TRUE(b) << size << " aligned to " << align;
      EXPECT_TRUE(is_aligned(b.ptr, align));
      EXPECT_GE(b.size, size);
      std::memset(b.ptr, 0x5C, size);
      h.deallocate(Block{b.ptr, 0}, align);
    }
  }
  EXPECT_EQ(h.stats().bytes_in_use, 0u);
  const CheckResult r = h.check_invariants();
  EXPECT_TRUE(r) << r.error();
}

TEST(GlobalHeap, GrowsByChunksAndGivesEntirelyFreeChunksBack) {
  SegmentSource segs;
  GlobalHeapOptions opt;
  opt.keep_free_chunks = 1;
  GlobalHeap h(segs, opt);
  std::vector<Block> blocks;
  for (int i = 0; i < 12; ++i) {  // 12 MiB of 1 MiB blocks: several chunks
    blocks.push_back(h.allocate(Layout{1 << 20, 16}));
    ASSERT_TRUE(blocks.back()) << i;
  }
  const std::size_t grown = h.chunks();
  EXPECT_GE(grown, 4u);
  for (Block b : blocks)
    h.deallocate(b, 16);
  EXPECT_LE(h.chunks(), 2u) << "all but the kept free chunk went back";
  h.trim();
  EXPECT_EQ(h.chunks(), 0u);
  EXPECT_EQ(segs.bytes_out(), 0u);
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeap, LargeBlocksGrowByRemapAndShrinkBackIntoTheTree) {
  SegmentSource segs;
  GlobalHeap h(segs);
  Block b = h.allocate(Layout{2 << 20, 16});
  ASSERT_TRUE(b);
  std::memset(b.ptr, 0x5A, b.size);
  Block g = h.grow(b, Layout{9 << 20, 16}, Move::allowed);
  ASSERT_TRUE(g);
  EXPECT_EQ(SegmentMap::lookup(g.ptr), h.large_tag());
  EXPECT_EQ(static_cast<unsigned char>(g.ptr[(2 << 20) - 1]), 0x5Au);
  Block s = h.shrink(g, Layout{1000, 16}, Move::allowed);
  ASSERT_TRUE(s);
  EXPECT_EQ(SegmentMap::lookup(s.ptr), h.chunk_tag()) << "a few KiB do not keep a mapping";
  EXPECT_EQ(static_cast<unsigned char>(s.ptr[999]), 0x5Au);
  EXPECT_EQ(h.large_mappings(), 0u);
  Block m = h.grow(s, Layout{5 << 20, 16}, Move::allowed);
  ASSERT_TRUE(m);
  EXPECT_EQ(SegmentMap::lookup(m.ptr), h.large_tag());
  EXPECT_FALSE(h.grow(h.allocate(Layout{64, 8}), Layout{4 << 20, 8}, Move::forbidden));
  h.deallocate(m, 16);
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeap, BadOptionsRefuseEverythingWithoutCrashing) {
  SegmentSource segs;
  GlobalHeapOptions opt;
  opt.chunk_bytes = kSeg + 4096;
  GlobalHeap h(segs, opt);
  EXPECT_FALSE(h.config_ok());
  EXPECT_FALSE(h.allocate(Layout{64, 8}));
  EXPECT_EQ(segs.bytes_out(), 0u);
}

TEST(GlobalHeap, ExhaustionOfABoundedSourceFailsCleanly) {
  SegmentSource segs(MapOptions{}, 2 * kSeg);
  GlobalHeap h(segs);
  std::vector<Block> blocks;
  for (;;) {
    Block b = h.allocate(Layout{512 << 10, 16});
    if (!b) break;
    blocks.push_back(b);
  }
  EXPECT_EQ(h.chunks(), 2u);
  EXPECT_GE(blocks.size(), 12u);
  EXPECT_GT(h.stats().failures, 0u);
  h.deallocate(blocks.back(), 16);
  EXPECT_TRUE(h.allocate(Layout{512 << 10, 16})) << "freed space is found again";
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeap, RandomizedAgainstTheReferenceModel) {
  constexpr std::size_t kLimit = 64 * kSeg;
  SegmentSource segs(MapOptions{}, kLimit);
  GlobalHeap h(segs);
  testing::DriverOptions opt;
  opt.seed = testing::test_seed(0x61E4);
  opt.max_size = 64 << 10;  // the random-size range: 16 B to 64 KiB
  opt.max_align = 1 << 16;
  opt.target_live = 500;
  opt.check_every = 16384;  // a check walks every chunk's granule map
  testing::RandomDriver<GlobalHeap> driver(h, opt);
  ASSERT_TRUE(driver.run());
  ASSERT_TRUE(driver.free_all());
  h.trim();
  EXPECT_EQ(segs.bytes_out(), 0u);
  // The whole capacity comes back: as many 1 MiB blocks as a fresh heap on the same
  // bounded source holds.
  std::size_t again = 0;
  std::vector<Block> blocks;
  while (Block b = h.allocate(Layout{1 << 20, 16}))
    blocks.push_back(b), ++again;
  SegmentSource fresh_segs(MapOptions{}, kLimit);
  std::size_t fresh = 0;
  {
    GlobalHeap f(fresh_segs);
    while (f.allocate(Layout{1 << 20, 16}))
      ++fresh;
  }
  EXPECT_EQ(again, fresh);
  EXPECT_GE(fresh, 3u * 64u) << "three 1 MiB blocks per 4 MiB chunk";
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeap, RandomizedWithLargeMappings) {
  SegmentSource segs;
  GlobalHeap h(segs);
  testing::DriverOptions opt;
  opt.ops = 5'000;  // a large request is an mmap and a fill of megabytes
  opt.seed = testing::test_seed(0x1A46E);
  opt.max_size = 2 << 20;
  opt.target_live = 64;
  opt.max_live = 128;
  testing::RandomDriver<GlobalHeap> driver(h, opt);
  ASSERT_TRUE(driver.run());
  ASSERT_TRUE(driver.free_all());
  EXPECT_EQ(h.large_mappings(), 0u);
}

TEST(GlobalHeap, TwoThreadsAllocateAndFreeEachOthersBlocks) {
  // Also runs under ThreadSanitizer (suite mt).
  SegmentSource segs;
  GlobalHeap h(segs);
  std::mutex m;
  std::vector<std::pair<Block, unsigned char>> handoff;
  std::atomic<int> bad{0};
  auto worker = [&](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::pair<Block, unsigned char>> mine;
    const int rounds = static_cast<int>(testing::scaled(20000, 2000));
    for (int i = 0; i < rounds; ++i) {
      const std::size_t size = 1 + rng() % 20000;
      Block b = h.allocate(Layout{size, 16});
      if (!b) {
        ++bad;
        continue;
      }
      const auto tag = static_cast<unsigned char>(rng());
      std::memset(b.ptr, tag, size);
      b.size = size;
      if (rng() % 2 == 0) {
        std::lock_guard<std::mutex> g(m);
        handoff.emplace_back(b, tag);
      } else {
        mine.emplace_back(b, tag);
      }
      // free one of ours or one handed over by the other thread
      std::pair<Block, unsigned char> victim{};
      if (rng() % 2 == 0 && !mine.empty()) {
        victim = mine.back();
        mine.pop_back();
      } else {
        std::lock_guard<std::mutex> g(m);
        if (handoff.empty()) continue;
        victim = handoff.back();
        handoff.pop_back();
      }
      for (std::size_t k = 0; k < victim.first.size; k += 61) {
        if (static_cast<unsigned char>(victim.first.ptr[k]) != victim.second) ++bad;
      }
      h.deallocate(Block{victim.first.ptr, 0}, 16);
    }
    for (auto& [b, t] : mine)
      h.deallocate(Block{b.ptr, 0}, 16);
  };
  std::thread a(worker, 1), b(worker, 2);
  a.join();
  b.join();
  for (auto& [blk, t] : handoff)
    h.deallocate(Block{blk.ptr, 0}, 16);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(h.stats().bytes_in_use, 0u);
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeap, CheckInvariantsReportsCorruptedMetadata) {
  SegmentSource segs;
  GlobalHeap h(segs);
  ASSERT_TRUE(h.allocate(Layout{64, 8}));
  ASSERT_TRUE(h.check_invariants());
  TestPeer<GlobalHeap>::miscount_chunks(h);
  CheckResult r = h.check_invariants();
  EXPECT_FALSE(r);
  EXPECT_NE(r.error().find("global_heap"), std::string::npos) << r.error();
}

TEST(GlobalHeapMisuse, DoubleFreeIsReported) {
  SegmentSource segs;
  GlobalHeap h(segs);
  Block b = h.allocate(Layout{64, 8});
  ASSERT_TRUE(h.allocate(Layout{64, 8}));  // keeps the chunk from going back
  h.deallocate(b, 8);
  testing::expect_misuse([&] { h.deallocate(b, 8); }, "double free in tree.deallocate");
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeapMisuse, DoubleFreeOfALargeBlockIsReported) {
  SegmentSource segs;
  GlobalHeap h(segs);
  Block keep = h.allocate(Layout{2 << 20, 8});
  Block b = h.allocate(Layout{2 << 20, 8});
  h.deallocate(b, 8);
  // Its segment may now be someone else's or no one's: either way the free is refused.
  testing::expect_misuse([&] { h.deallocate(b, 8); }, "in (global_heap|tree)\\.deallocate");
  h.deallocate(keep, 8);
}

TEST(GlobalHeapMisuse, ForeignPointerIsReported) {
  SegmentSource segs;
  GlobalHeap h(segs);
  std::vector<char> elsewhere(64);
  testing::expect_misuse(
      [&] {
        h.deallocate(Block{reinterpret_cast<std::byte*>(elsewhere.data()), 64}, 8);
      },
      "foreign pointer in global_heap.deallocate");
}

}  // namespace
}  // namespace ctxalloc
