#include "ctxalloc/allocators/size_class_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "support/misuse_test_helpers.h"
#include "support/random_driver.h"
#include "support/segment_provider.h"

namespace ctxalloc {

template <>
struct TestPeer<SizeClassAllocator> {
  using A = SizeClassAllocator;
  static void set_live_bit(const void* p) {
    const auto off = reinterpret_cast<std::uintptr_t>(p) & (A::kSegmentSize - 1);
    A::segment_of(p)->live[off >> (A::kGranuleShift + 6)] |= std::uint64_t{1}
                                                             << ((off >> A::kGranuleShift) & 63);
  }
  static void bump_used(const void* p, int delta) {
    const auto off = reinterpret_cast<std::uintptr_t>(p) & (A::kSegmentSize - 1);
    A::segment_of(p)->pages[off >> A::kPageShift].used += static_cast<std::uint32_t>(delta);
  }
};

namespace {

using testing::TestSegments;
using Peer = TestPeer<SizeClassAllocator>;

TEST(SizeClassAllocator, RoundsToItsClassesAndHonoursAlignment) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  const std::pair<std::size_t, std::size_t> cases[] = {
      {1, 16},      {16, 16},     {17, 32},     {128, 128},   {129, 160},  {257, 320},
      {1000, 1024}, {1024, 1024}, {1025, 1280}, {1500, 1536}, {2048, 2048}};
  for (auto [size, cls] : cases) {
    Block b = a.allocate(Layout{size, 8});
    ASSERT_TRUE(b) << size;
    EXPECT_EQ(b.size, cls) << size;
    EXPECT_TRUE(is_aligned(b.ptr, 16));
    EXPECT_EQ(a.allocated_size(b.ptr), cls);
  }
  for (std::size_t align = 32; align <= 2048; align *= 2) {
    Block b = a.allocate(Layout{align / 2 + 1, align});
    ASSERT_TRUE(b) << align;
    EXPECT_TRUE(is_aligned(b.ptr, align)) << align;
  }
  EXPECT_FALSE(a.allocate(Layout{2049, 8})) << "above 2 KiB is not this allocator's";
  EXPECT_FALSE(a.allocate(Layout{8, 4096}));
  EXPECT_FALSE(a.allocate(Layout{SIZE_MAX, 8}));
  EXPECT_TRUE(a.check_invariants());
}

TEST(SizeClassAllocator, ReusesTheLastFreedBlockFirst) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block x = a.allocate(Layout{40, 8});
  Block y = a.allocate(Layout{40, 8});
  a.deallocate(x, 8);
  EXPECT_EQ(a.allocate(Layout{48, 8}).ptr, x.ptr);
  a.deallocate(y, 8);
  EXPECT_EQ(a.stats().live_blocks(), 1u);
  EXPECT_EQ(a.stats().bytes_in_use, 48u);
}

TEST(SizeClassAllocator, ZeroSizeAndTheSentinel) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block z = a.allocate(Layout{0, 64});
  EXPECT_TRUE(is_zero_size_sentinel(z.ptr));
  a.deallocate(z, 64);
  EXPECT_EQ(a.stats().misuses, 0u);
  EXPECT_EQ(segs.outstanding(), 0) << "a zero-size request maps nothing";
}

TEST(SizeClassAllocator, FillsSegmentsThenGivesThemBackWhenEmpty) {
  TestSegments segs;
  std::vector<Block> blocks;
  {
    SizeClassAllocator a(segs.provider());
    // 3 segments' worth of 1 KiB blocks: 63 pages x 64 blocks each.
    const std::size_t n = 3 * 63 * 64;
    for (std::size_t i = 0; i < n; ++i) {
      blocks.push_back(a.allocate(Layout{1024, 16}));
      ASSERT_TRUE(blocks.back()) << i;
    }
    EXPECT_EQ(a.segments(), 3u);
    EXPECT_TRUE(a.check_invariants());
    std::shuffle(blocks.begin(), blocks.end(), std::mt19937(7));
    for (Block b : blocks)
      a.deallocate(b, 16);
    EXPECT_EQ(a.segments(), 1u) << "empty segments go back, one is kept";
    EXPECT_EQ(a.stats().bytes_in_use, 0u);
    EXPECT_TRUE(a.check_invariants());
  }
  EXPECT_EQ(segs.outstanding(), 0) << "the destructor returns the last segment";
}

TEST(SizeClassAllocator, ABoundedAllocatorFailsCleanlyAndRecovers) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider(), 1);
  std::vector<Block> blocks;
  for (;;) {
    Block b = a.allocate(Layout{512, 16});
    if (!b) break;
    blocks.push_back(b);
  }
  EXPECT_EQ(blocks.size(), 63u * 128u) << "exactly the capacity of one segment";
  EXPECT_EQ(a.stats().failures, 1u);
  EXPECT_FALSE(a.allocate(Layout{16, 16})) << "no page left for another class";
  a.deallocate(blocks.back(), 16);
  blocks.pop_back();
  EXPECT_TRUE(a.allocate(Layout{512, 16})) << "a freed block is found again";
  EXPECT_TRUE(a.check_invariants());
}

TEST(SizeClassAllocator, GrowsInPlaceWithinItsClassAndMovesBeyond) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block b = a.allocate(Layout{100, 16});  // class 112
  std::memset(b.ptr, 0x3C, 100);
  Block g = a.grow(b, Layout{112, 16}, Move::forbidden);
  EXPECT_EQ(g.ptr, b.ptr);
  EXPECT_FALSE(a.grow(g, Layout{113, 16}, Move::forbidden));
  Block m = a.grow(g, Layout{500, 16}, Move::allowed);
  ASSERT_TRUE(m);
  EXPECT_NE(m.ptr, b.ptr);
  EXPECT_EQ(m.size, 512u);
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(static_cast<unsigned char>(m.ptr[i]), 0x3Cu);
  EXPECT_EQ(a.allocated_size(b.ptr), 0u) << "the old block was freed";
  Block s = a.shrink(m, Layout{10, 16}, Move::forbidden);
  EXPECT_EQ(s.ptr, m.ptr);
  EXPECT_EQ(a.stats().live_blocks(), 1u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(SizeClassAllocator, RemoteFreesFromAnotherThreadComeBackToTheOwner) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  constexpr int kRounds = 50;
  constexpr int kPerRound = 1000;
  for (int r = 0; r < kRounds; ++r) {
    std::vector<void*> blocks;
    for (int i = 0; i < kPerRound; ++i) {
      Block b = a.allocate(Layout{static_cast<std::size_t>(16 + (i % 60) * 16), 16});
      ASSERT_TRUE(b);
      std::memset(b.ptr, r, 16);
      blocks.push_back(b.ptr);
    }
    std::thread consumer([&] {
      for (std::size_t i = 0; i < blocks.size(); i += 2) {
        // chains of two, as a batching consumer would push them
        auto** first = static_cast<void**>(blocks[i]);
        *first = blocks[i + 1];
        a.free_remote_chain(blocks[i], blocks[i + 1]);
      }
    });
    consumer.join();
    a.drain_remote();
    ASSERT_EQ(a.stats().live_blocks(), 0u) << r;
  }
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_EQ(a.stats().misuses, 0u);
  EXPECT_TRUE(a.check_invariants());
}

struct SizeClassHooks : testing::DefaultHooks<SizeClassAllocator> {
  bool failure_allowed(const SizeClassAllocator&, const testing::ReferenceModel&, Layout l) const {
    return SizeClassAllocator::class_size_for(l.size, l.align) == 0;
  }
};

TEST(SizeClassAllocator, RandomizedAgainstTheReferenceModel) {
  TestSegments segs;
  constexpr std::size_t kSegments = 8;
  SizeClassAllocator a(segs.provider(), kSegments);
  testing::DriverOptions opt;
  opt.seed = testing::test_seed(0x5C1A55);
  opt.max_size = 2048;
  opt.max_align = 2048;
  opt.target_live = 2000;
  testing::RandomDriver<SizeClassAllocator, SizeClassHooks> driver(a, opt);
  ASSERT_TRUE(driver.run());
  EXPECT_GT(driver.report().in_place, 100u);
  ASSERT_TRUE(driver.free_all());
  a.trim();
  EXPECT_EQ(a.segments(), 0u) << "nothing live: every segment can go back";
  EXPECT_EQ(segs.outstanding(), 0);
  // The whole capacity can be allocated again: every page of every segment, one class.
  std::vector<Block> all;
  for (std::size_t i = 0; i < kSegments * 63 * 64; ++i) {
    all.push_back(a.allocate(Layout{1024, 16}));
    ASSERT_TRUE(all.back()) << i;
  }
  EXPECT_FALSE(a.allocate(Layout{1024, 16}));
  EXPECT_EQ(a.segments(), kSegments);
  EXPECT_TRUE(a.check_invariants());
}

TEST(SizeClassAllocator, CheckInvariantsReportsCorruptedMetadata) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block b = a.allocate(Layout{64, 16});
  Block c = a.allocate(Layout{64, 16});
  a.deallocate(c, 16);
  ASSERT_TRUE(a.check_invariants());
  Peer::set_live_bit(c.ptr);  // a freed block marked live
  CheckResult r = a.check_invariants();
  EXPECT_FALSE(r);
  EXPECT_NE(r.error().find("size_class"), std::string::npos) << r.error();
  Peer::bump_used(b.ptr, 5);
  EXPECT_FALSE(a.check_invariants());
}

TEST(SizeClassAllocatorMisuse, DoubleFreeIsReported) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block b = a.allocate(Layout{64, 16});
  a.deallocate(b, 16);
  testing::expect_misuse([&] { a.deallocate(b, 16); }, "double free in size_class.deallocate");
  EXPECT_TRUE(a.check_invariants()) << "the double free changed nothing";
}

TEST(SizeClassAllocatorMisuse, InteriorPointerIsReported) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block b = a.allocate(Layout{64, 16});
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{b.ptr + 16, 16}, 16);
      },
      "double free in size_class.deallocate");
  EXPECT_EQ(a.stats().live_blocks(), 1u);
}

TEST(SizeClassAllocatorMisuse, ForeignPointerIsReported) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  std::vector<char> elsewhere(64);
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{reinterpret_cast<std::byte*>(elsewhere.data()), 64}, 16);
      },
      "foreign pointer in size_class.deallocate");
}

TEST(SizeClassAllocatorMisuse, WrongSizeIsReported) {
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block b = a.allocate(Layout{64, 16});
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{b.ptr, 4096}, 16);
      },
      "wrong size in size_class.deallocate");
  EXPECT_EQ(a.stats().live_blocks(), 1u);
}

}  // namespace
}  // namespace ctxalloc
