#include "ctxalloc/switchable/global_heap.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

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

// ------------------------------------------------------------------ the large-mapping cache

GlobalHeapOptions cached(std::size_t bytes, std::size_t entries = 8, std::size_t slack = 100) {
  GlobalHeapOptions o;
  o.large_cache_bytes = bytes;
  o.large_cache_entries = entries;
  o.large_slack_percent = slack;
  return o;
}

bool mapped(const void* p) {
  unsigned char v = 0;
  const auto page = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{4095};
  return mincore(reinterpret_cast<void*>(page), 4096, &v) == 0;
}

TEST(GlobalHeapLargeCache, AFreedMappingServesTheNextRequestThatFitsIt) {
  SegmentSource segs;
  GlobalHeap h(segs, cached(64 << 20));
  Block a = h.allocate(Layout{8 << 20, 16});
  ASSERT_TRUE(a);
  std::memset(a.ptr, 0x3C, a.size);
  h.deallocate(Block{a.ptr, 0}, 16);
  EXPECT_EQ(h.cached_large(), 1u);
  EXPECT_EQ(h.cached_large_bytes(), a.size);
  EXPECT_EQ(h.large_mappings(), 0u) << "a cached mapping is no live block";
  EXPECT_EQ(h.stats().bytes_in_use, 0u);
  EXPECT_EQ(h.allocated_size(a.ptr), 0u) << "nor has it a size";
  EXPECT_EQ(SegmentMap::lookup(a.ptr), h.large_tag()) << "it stays registered";
  EXPECT_TRUE(h.check_invariants());
  Block b = h.allocate(Layout{(8 << 20) - 100, 16});
  ASSERT_TRUE(b);
  EXPECT_EQ(b.ptr, a.ptr) << "the cached mapping, not a new one";
  EXPECT_EQ(b.size, a.size);
  EXPECT_EQ(GlobalHeap::last_large_dirty_bytes(), a.size);
  EXPECT_EQ(static_cast<unsigned char>(b.ptr[12345]), 0x3Cu) << "its pages were kept";
  EXPECT_EQ(h.large_reuses(), 1u);
  EXPECT_EQ(h.cached_large(), 0u);
  EXPECT_EQ(h.large_mappings(), 1u);
  EXPECT_EQ(h.stats().bytes_in_use, b.size);
  EXPECT_EQ(h.stats().allocations, 2u);
  EXPECT_EQ(h.stats().deallocations, 1u);
  EXPECT_TRUE(h.check_invariants());
  h.deallocate(Block{b.ptr, 0}, 16);
  Block fresh = h.allocate(Layout{32 << 20, 16});
  ASSERT_TRUE(fresh);
  EXPECT_EQ(GlobalHeap::last_large_dirty_bytes(), 8u << 20)
      << "the 8 MiB mapping grew by mremap: only its old bytes may be dirty";
  EXPECT_EQ(fresh.size, std::size_t{32} << 20);
  EXPECT_EQ(static_cast<unsigned char>(fresh.ptr[(8 << 20) - 1]), 0x3Cu);
  EXPECT_EQ(static_cast<unsigned char>(fresh.ptr[(32 << 20) - 1]), 0u);
  EXPECT_EQ(h.large_reuses(), 2u);
  EXPECT_TRUE(h.check_invariants());
  h.deallocate(Block{fresh.ptr, 0}, 16);
}

TEST(GlobalHeapLargeCache, ZeroedAllocationsFromTheCacheAreZero) {
  SegmentSource segs;
  GlobalHeap h(segs, cached(64 << 20));
  for (std::size_t size : {std::size_t{6} << 20, std::size_t{5} << 20, std::size_t{9} << 20}) {
    Block b = h.allocate_zeroed(Layout{size, 16});
    ASSERT_TRUE(b);
    for (std::size_t k = 0; k < size; k += 4093)
      ASSERT_EQ(static_cast<unsigned char>(b.ptr[k]), 0u) << size << " at " << k;
    ASSERT_EQ(static_cast<unsigned char>(b.ptr[size - 1]), 0u);
    std::memset(b.ptr, 0xEE, b.size);
    h.deallocate(Block{b.ptr, 0}, 16);
  }
  EXPECT_EQ(h.large_reuses(), 2u);
}

TEST(GlobalHeapLargeCache, TheBoundsInBytesAndEntriesAreHonoured) {
  SegmentSource segs;
  GlobalHeap h(segs, cached(16 << 20, 2));
  std::vector<Block> blocks;
  for (int i = 0; i < 4; ++i) {
    blocks.push_back(h.allocate(Layout{5 << 20, 16}));
    ASSERT_TRUE(blocks.back());
  }
  for (Block b : blocks) {
    h.deallocate(Block{b.ptr, 0}, 16);
    EXPECT_LE(h.cached_large(), 2u);
    EXPECT_LE(h.cached_large_bytes(), std::size_t{16} << 20);
    EXPECT_TRUE(h.check_invariants());
  }
  EXPECT_EQ(h.cached_large(), 2u);
  EXPECT_EQ(h.large_evictions(), 2u) << "the two oldest went";
  EXPECT_FALSE(mapped(blocks[0].ptr));
  EXPECT_FALSE(mapped(blocks[1].ptr));
  EXPECT_EQ(SegmentMap::lookup(blocks[0].ptr), nullptr);
  EXPECT_TRUE(mapped(blocks[3].ptr));
  // A mapping larger than the whole cache is unmapped at once.
  Block big = h.allocate(Layout{20 << 20, 16});
  ASSERT_TRUE(big);
  EXPECT_EQ(h.cached_large(), 1u) << "the request took the larger cached one and grew it";
  h.deallocate(Block{big.ptr, 0}, 16);
  EXPECT_FALSE(mapped(big.ptr));
  EXPECT_EQ(h.cached_large(), 1u);
  // trim gives the rest back.
  h.trim();
  EXPECT_EQ(h.cached_large(), 0u);
  EXPECT_EQ(h.cached_large_bytes(), 0u);
  EXPECT_FALSE(mapped(blocks[3].ptr));
  EXPECT_FALSE(mapped(blocks[2].ptr));
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeapLargeCache, WithoutACacheEveryFreeUnmaps) {
  SegmentSource segs;
  GlobalHeap h(segs);  // large_cache_bytes 0: the default
  Block b = h.allocate(Layout{5 << 20, 16});
  ASSERT_TRUE(b);
  h.deallocate(Block{b.ptr, 0}, 16);
  EXPECT_EQ(h.cached_large(), 0u);
  EXPECT_FALSE(mapped(b.ptr));
}

TEST(GlobalHeapLargeCache, KeptTailsStayWithinTheSlackElseTheTailIsUnmapped) {
  SegmentSource segs;
  {
    GlobalHeap h(segs, cached(64 << 20, 8, 0));  // no slack: always cut to the request
    Block a = h.allocate(Layout{12 << 20, 16});
    ASSERT_TRUE(a);
    h.deallocate(Block{a.ptr, 0}, 16);
    Block b = h.allocate(Layout{5 << 20, 16});
    ASSERT_TRUE(b);
    EXPECT_EQ(b.ptr, a.ptr);
    EXPECT_EQ(b.size, std::size_t{5} << 20) << "the tail was unmapped";
    EXPECT_EQ(h.allocated_size(b.ptr), std::size_t{5} << 20);
    EXPECT_FALSE(mapped(a.ptr + (8 << 20)));
    EXPECT_TRUE(h.check_invariants());
    h.deallocate(Block{b.ptr, 0}, 16);
  }
  {
    GlobalHeap h(segs, cached(64 << 20, 8, 100));
    Block a = h.allocate(Layout{12 << 20, 16});
    ASSERT_TRUE(a);
    h.deallocate(Block{a.ptr, 0}, 16);
    Block b = h.allocate(Layout{8 << 20, 16});  // 4 MiB of tail: within 100% of 8 MiB
    ASSERT_TRUE(b);
    EXPECT_EQ(b.size, std::size_t{12} << 20) << "handed out whole";
    Block c = h.allocate(Layout{12 << 20, 16});
    h.deallocate(Block{c.ptr, 0}, 16);
    // 12 MiB for 3 MiB would keep 9 + 4 MiB of tails against 11 MiB asked: over 100%.
    Block d = h.allocate(Layout{3 << 20, 16});
    ASSERT_TRUE(d);
    EXPECT_EQ(d.ptr, c.ptr);
    EXPECT_EQ(d.size, std::size_t{3} << 20);
    EXPECT_TRUE(h.check_invariants());
    h.deallocate(Block{b.ptr, 0}, 16);
    h.deallocate(Block{d.ptr, 0}, 16);
    EXPECT_EQ(h.stats().bytes_in_use, 0u);
    EXPECT_TRUE(h.check_invariants());
  }
}

TEST(GlobalHeapLargeCache, ResizingACachedBlockKeepsItsContents) {
  SegmentSource segs;
  GlobalHeap h(segs, cached(64 << 20));
  Block a = h.allocate(Layout{6 << 20, 16});
  ASSERT_TRUE(a);
  h.deallocate(Block{a.ptr, 0}, 16);
  Block b = h.allocate(Layout{6 << 20, 16});
  ASSERT_EQ(b.ptr, a.ptr);
  for (std::size_t k = 0; k < b.size; k += 4096)
    b.ptr[k] = static_cast<std::byte>(k >> 12);
  Block g = h.grow(b, Layout{40 << 20, 16}, Move::allowed);
  ASSERT_TRUE(g);
  for (std::size_t k = 0; k < b.size; k += 4096)
    ASSERT_EQ(g.ptr[k], static_cast<std::byte>(k >> 12)) << k;
  Block s = h.shrink(g, Layout{5 << 20, 16}, Move::allowed);
  ASSERT_TRUE(s);
  for (std::size_t k = 0; k < (5 << 20); k += 4096)
    ASSERT_EQ(s.ptr[k], static_cast<std::byte>(k >> 12)) << k;
  EXPECT_EQ(h.stats().bytes_in_use, h.allocated_size(s.ptr));
  EXPECT_TRUE(h.check_invariants());
  h.deallocate(Block{s.ptr, 0}, 16);
  EXPECT_EQ(h.stats().bytes_in_use, 0u);
}

TEST(GlobalHeapLargeCache, RandomizedWithACache) {
  SegmentSource segs;
  GlobalHeap h(segs, cached(24 << 20, 4, 50));
  testing::DriverOptions opt;
  opt.ops = 4'000;
  opt.seed = testing::test_seed(0xCAC4E);
  opt.max_size = 6 << 20;
  opt.target_live = 12;
  opt.max_live = 24;
  opt.check_every = 64;
  testing::RandomDriver<GlobalHeap> driver(h, opt);
  ASSERT_TRUE(driver.run());
  ASSERT_TRUE(driver.free_all());
  EXPECT_GT(h.large_reuses(), 0u);
  EXPECT_EQ(h.large_mappings(), 0u);
  EXPECT_EQ(h.stats().bytes_in_use, 0u);
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeapLargeCache, ThreadsShareTheCache) {
  // Also runs under ThreadSanitizer (suite mt).
  SegmentSource segs;
  GlobalHeap h(segs, cached(48 << 20, 6, 75));
  std::atomic<int> bad{0};
  auto worker = [&](unsigned seed) {
    std::mt19937 rng(seed);
    const int rounds = static_cast<int>(testing::scaled(400, 100));
    std::vector<std::pair<Block, unsigned char>> live;
    for (int i = 0; i < rounds; ++i) {
      const std::size_t size = (2 << 20) + rng() % (10 << 20);
      Block b = (i % 3 == 0) ? h.allocate_zeroed(Layout{size, 16}) : h.allocate(Layout{size, 16});
      if (!b) {
        ++bad;
        continue;
      }
      if (i % 3 == 0 && (b.ptr[0] != std::byte{0} || b.ptr[size - 1] != std::byte{0})) ++bad;
      const auto tag = static_cast<unsigned char>(rng());
      b.ptr[0] = static_cast<std::byte>(tag);
      b.ptr[size - 1] = static_cast<std::byte>(tag);
      b.size = size;
      live.emplace_back(b, tag);
      if (live.size() > 3) {
        const std::size_t k = rng() % live.size();
        auto [v, t] = live[k];
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
        if (static_cast<unsigned char>(v.ptr[0]) != t ||
            static_cast<unsigned char>(v.ptr[v.size - 1]) != t) {
          ++bad;
        }
        h.deallocate(Block{v.ptr, 0}, 16);
      }
    }
    for (auto& [b, t] : live)
      h.deallocate(Block{b.ptr, 0}, 16);
  };
  std::thread a(worker, 7), b(worker, 8);
  a.join();
  b.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(h.large_reuses(), 0u);
  EXPECT_EQ(h.stats().bytes_in_use, 0u);
  EXPECT_TRUE(h.check_invariants());
}

TEST(GlobalHeapMisuse, DoubleFreeOfACachedMappingIsReported) {
  SegmentSource segs;
  GlobalHeap h(segs, cached(64 << 20));
  Block b = h.allocate(Layout{5 << 20, 16});
  ASSERT_TRUE(b);
  h.deallocate(Block{b.ptr, 0}, 16);
  ASSERT_EQ(h.cached_large(), 1u);
  testing::expect_misuse(
      [&] {
        h.deallocate(Block{b.ptr, 0}, 16);
      },
      "double free in global_heap.deallocate");
  EXPECT_EQ(h.cached_large(), 1u) << "cached once, not twice";
  Block grown{};
  testing::expect_misuse(
      [&] {
        grown = h.grow(Block{b.ptr, b.size}, Layout{9 << 20, 16}, Move::allowed);
      },
      "foreign pointer in global_heap.grow");
  EXPECT_FALSE(grown) << "nor resized";
  EXPECT_TRUE(h.check_invariants());
  Block again = h.allocate(Layout{5 << 20, 16});
  EXPECT_EQ(again.ptr, b.ptr);
  Block other = h.allocate(Layout{5 << 20, 16});
  EXPECT_NE(other.ptr, b.ptr);
  h.deallocate(Block{again.ptr, 0}, 16);
  h.deallocate(Block{other.ptr, 0}, 16);
  EXPECT_TRUE(h.check_invariants());
}

}  // namespace
}  // namespace ctxalloc
