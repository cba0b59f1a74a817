#include "ctxalloc/allocators/tree_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "ctxalloc/core/dyn_allocator.h"
#include "ctxalloc/core/sanitizers.h"
#include "support/misuse_test_helpers.h"
#include "support/random_driver.h"
#include "support/test_region.h"
#include "support/tree_placement_oracle.h"

#if defined(CTXALLOC_ASAN_ACTIVE)
// These tests ask malloc (the oversize allocator) for impossible sizes on purpose: under
// ASan it must return null as glibc's does, not abort.
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=1";
}
#endif

namespace ctxalloc {

template <>
struct TestPeer<detail::TreeCore> {
  static std::uint8_t* map(detail::TreeCore& c) { return c.regions_.all().begin()->map; }
  static std::uint64_t& bitmap(detail::TreeCore& c) { return c.nonempty_; }
  static std::size_t& capacity(detail::TreeCore& c) { return c.capacity_; }
  static detail::SpanTree& tree(detail::TreeCore& c, unsigned k) { return c.trees_[k]; }
  static detail::SizeTree& sizes(detail::TreeCore& c, unsigned k) { return c.sizes_[k]; }
  static unsigned class_of(const detail::TreeCore& c, std::size_t bytes) {
    return c.class_of(bytes);
  }
  /// (class, start, length) of every free span, in class then address order.
  static std::vector<std::tuple<unsigned, const std::byte*, std::size_t>> spans(
      const detail::TreeCore& c) {
    std::vector<std::tuple<unsigned, const std::byte*, std::size_t>> out;
    for (unsigned k = 0; k < TreeConfig::kMaxClasses; ++k)
      for (const detail::FreeSpan& s : c.trees_[k])
        out.emplace_back(k, s.begin(), s.length());
    return out;
  }
};

template <>
struct TestPeer<TreeAllocator> {
  static detail::TreeCore& core(TreeAllocator& a) { return a.core_; }
  static StatsCounters& counters(TreeAllocator& a) { return a.counters_; }
};

namespace {

using CorePeer = TestPeer<detail::TreeCore>;
using TreePeer = TestPeer<TreeAllocator>;
using testing::DriverOptions;
using testing::RandomDriver;
using testing::ReferenceModel;
using testing::TestRegion;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * 1024;

// Allocates and fills with a pattern; checks the block's size and alignment.
Block must_allocate(TreeAllocator& a, std::size_t size, std::size_t align = 16) {
  Block b = a.allocate(Layout{size, align});
  EXPECT_TRUE(b) << size << " aligned " << align;
  if (b) {
    EXPECT_GE(b.size, size);
    EXPECT_TRUE(is_aligned(b.ptr, align));
    std::memset(b.ptr, 0x5A, b.size);
  }
  return b;
}

TEST(TreeConfig, AcceptsOnlyPowerOfTwoClassesFromTheGranuleUp) {
  const TreeConfig d;
  EXPECT_EQ(d.min_class(), 32u);
  EXPECT_EQ(d.max_class(), kMiB);
  EXPECT_EQ(d.classes(), 16u);
  EXPECT_TRUE(TreeConfig::make(32, 32));
  EXPECT_TRUE(TreeConfig::make(64, 64 * kKiB));
  EXPECT_FALSE(TreeConfig::make(16, kMiB)) << "a granule must hold a free span's node";
  EXPECT_FALSE(TreeConfig::make(48, kMiB));
  EXPECT_FALSE(TreeConfig::make(32, 1000));
  EXPECT_FALSE(TreeConfig::make(64, 32));
  EXPECT_FALSE(TreeConfig::make(32, std::size_t{1} << 37));
  EXPECT_FALSE(TreeConfig::make(0, 0));
}

TEST(TreeAllocator, RoundsToTheGranuleAndAllocatesFromTheLowestAddress) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  ASSERT_EQ(a.region_count(), 1u);
  Block x = must_allocate(a, 1);
  Block y = must_allocate(a, 100);
  Block z = must_allocate(a, 32);
  EXPECT_EQ(x.size, 32u);
  EXPECT_EQ(y.size, 128u);
  EXPECT_EQ(y.ptr, x.ptr + 32);
  EXPECT_EQ(z.ptr, y.ptr + 128);
  EXPECT_TRUE(a.contains(x.ptr));
  EXPECT_EQ(a.allocated_size(y.ptr), 128u);
  EXPECT_EQ(a.stats().bytes_in_use, 192u);
  EXPECT_EQ(a.free_bytes(), a.capacity() - 192);
  // The region's metadata sits before the first block: header, map, padding.
  EXPECT_GT(x.ptr, r.data());
  EXPECT_EQ(a.metadata_bytes(), r.size() - a.capacity());
  EXPECT_LT(a.metadata_bytes(), r.size() / 32 + 256) << "one map byte per 32 B granule";
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, FreeingMergesWithBothNeighboursIntoOneSpan) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = must_allocate(a, 64);
  Block y = must_allocate(a, 96);
  Block z = must_allocate(a, 200);
  Block keep = must_allocate(a, 32);
  a.deallocate(x, 16);
  a.deallocate(z, 16);
  ASSERT_TRUE(a.check_invariants());
  auto spans = CorePeer::spans(TreePeer::core(a));
  ASSERT_EQ(spans.size(), 3u) << "x, z and the rest of the region";
  a.deallocate(y, 16);  // merges x, y and z into one span of 64 + 96 + 224 bytes
  ASSERT_TRUE(a.check_invariants());
  spans = CorePeer::spans(TreePeer::core(a));
  ASSERT_EQ(spans.size(), 2u);
  const auto& [k, start, len] = spans.front();
  EXPECT_EQ(start, x.ptr);
  EXPECT_EQ(len, 64u + 96u + 224u);
  EXPECT_EQ(k, 3u) << "384 bytes are filed in the 256 B class";
  EXPECT_EQ(a.free_region_count(), 0u);
  a.deallocate(keep, 16);
  EXPECT_EQ(a.free_region_count(), 1u);
  EXPECT_EQ(a.largest_free_span(), a.capacity());
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, NothingIsLostAfterFillingWithTheSmallestClassAndFreeingRandomly) {
  TestRegion r(3 * kMiB);
  TreeAllocator a(r.block());
  std::vector<Block> blocks;
  for (;;) {
    Block b = a.allocate(Layout{32, 32});
    if (!b) break;
    blocks.push_back(b);
  }
  EXPECT_EQ(blocks.size() * 32, a.capacity()) << "every granule was handed out";
  EXPECT_EQ(a.stats().failures, 1u);
  EXPECT_FALSE(a.allocate(Layout{kMiB, 16}));
  std::mt19937_64 rng(testing::test_seed(42));
  std::shuffle(blocks.begin(), blocks.end(), rng);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    a.deallocate(blocks[i], 32);
    if (i % 8192 == 0) {
      ASSERT_TRUE(a.check_invariants()) << a.check_invariants().error();
    }
  }
  ASSERT_TRUE(a.check_invariants());
  EXPECT_EQ(a.largest_free_span(), a.capacity()) << "everything merged back into one span";
  EXPECT_EQ(a.free_region_count(), 1u);
  Block largest = a.allocate(Layout{kMiB, 16});
  ASSERT_TRUE(largest) << "the largest class succeeds again";
  EXPECT_TRUE(a.contains(largest.ptr));
  EXPECT_EQ(a.oversize_allocations(), 0u);
  Block second = a.allocate(Layout{kMiB, 16});
  ASSERT_TRUE(second);
  EXPECT_EQ(second.ptr, largest.ptr + kMiB);
}

TEST(TreeAllocator, LargerRequestsSkipSmallHolesAndSmallRequestsFillTheLowestHole) {
  TestRegion r(kMiB);
  TreeAllocator a(r.block());
  std::vector<Block> holes;
  std::vector<Block> keep;
  for (int i = 0; i < 100; ++i) {
    holes.push_back(must_allocate(a, 64));
    keep.push_back(must_allocate(a, 64));
  }
  for (Block h : holes)
    a.deallocate(h, 16);
  ASSERT_TRUE(a.check_invariants());
  // 200 B (224 rounded) cannot use a 64 B hole: the bitmap sends it to the big span at once.
  Block big = must_allocate(a, 200);
  EXPECT_EQ(big.ptr, keep.back().ptr + 64);
  // A 64 B request takes the lowest-addressed hole.
  Block small = must_allocate(a, 64);
  EXPECT_EQ(small.ptr, holes.front().ptr);
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, PrefersATighterSpanOfTheClassBelow) {
  TestRegion r(kMiB);
  TreeAllocator a(r.block());
  Block hole = must_allocate(a, 224);  // becomes a 224 B span: class 128 (128..255 B)
  Block fence = must_allocate(a, 32);
  a.deallocate(hole, 16);
  // 200 B rounds to 224: its class is 256, but the lowest span of the class below fits.
  Block b = must_allocate(a, 200);
  EXPECT_EQ(b.ptr, hole.ptr);
  // 240 B does not fit the 224 B span... there is none now; make another and check.
  a.deallocate(b, 16);
  Block c = must_allocate(a, 240);
  EXPECT_EQ(c.ptr, fence.ptr + 32) << "a 224 B span cannot hold 256 B";
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, TakesTheBestFitOfTheClassBelowNotTheFirst) {
  TestRegion r(kMiB);
  TreeAllocator a(r.block());
  // Three holes of the 256 B class (256 .. 511 B), fenced by live blocks.
  Block loose = must_allocate(a, 480);
  must_allocate(a, 32);
  Block tight = must_allocate(a, 288);
  must_allocate(a, 32);
  Block tight2 = must_allocate(a, 288);
  must_allocate(a, 32);
  a.deallocate(loose, 16);
  a.deallocate(tight2, 16);
  a.deallocate(tight, 16);
  // 260 B rounds to 288: its class is 512, the class below holds 480, 288 and 288.
  Block b = must_allocate(a, 260);
  EXPECT_EQ(b.ptr, tight.ptr) << "the shortest span that fits, the lower of two equal ones";
  Block c = must_allocate(a, 270);
  EXPECT_EQ(c.ptr, tight2.ptr);
  Block d = must_allocate(a, 300);
  EXPECT_EQ(d.ptr, loose.ptr);
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, AlignsInsideALargerSpanAndRefilesBothLeftovers) {
  TestRegion r(4 * kMiB);
  TreeAllocator a(r.block());
  std::vector<Block> blocks;
  for (std::size_t align = 1; align <= kMiB / 2; align *= 2) {
    blocks.push_back(must_allocate(a, 1, 1));  // knock the next free address off alignment
    Block b = must_allocate(a, 40, align);
    EXPECT_TRUE(is_aligned(b.ptr, align)) << align;
    EXPECT_EQ(a.allocated_size(b.ptr), 64u);
    blocks.push_back(b);
    ASSERT_TRUE(a.check_invariants()) << align << ": " << a.check_invariants().error();
  }
  // Size plus padding beyond the largest class: the oversize allocator, still aligned.
  Block o = a.allocate(Layout{kMiB, 4096});
  ASSERT_TRUE(o);
  EXPECT_TRUE(is_aligned(o.ptr, 4096));
  EXPECT_EQ(a.oversize_allocations(), 1u);
  blocks.push_back(o);
  for (Block b : blocks)
    a.deallocate(b, 1);
  ASSERT_TRUE(a.check_invariants());
  EXPECT_EQ(a.largest_free_span(), a.capacity());
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
}

TEST(TreeAllocator, GrowsInPlaceByAbsorbingTheFollowingFreeSpan) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = must_allocate(a, 100);
  Block y = must_allocate(a, 1000);
  Block fence = must_allocate(a, 32);
  for (std::size_t i = 0; i < x.size; ++i)
    x.ptr[i] = static_cast<std::byte>(i);
  // y is live: x cannot grow in place.
  EXPECT_FALSE(a.grow(x, Layout{200, 16}, Move::forbidden));
  EXPECT_EQ(a.stats().failures, 1u);
  a.deallocate(y, 16);
  Block g = a.grow(x, Layout{500, 16}, Move::forbidden);
  ASSERT_EQ(g.ptr, x.ptr);
  EXPECT_EQ(g.size, 512u);
  for (std::size_t i = 0; i < x.size; ++i)
    ASSERT_EQ(g.ptr[i], static_cast<std::byte>(i));
  ASSERT_TRUE(a.check_invariants());
  // The rest of y's old span is still free and starts right after g.
  Block next = must_allocate(a, 600);
  EXPECT_EQ(next.ptr, g.ptr + 512);
  // Growing within the reported size is in place and free.
  Block same = a.grow(Block{g.ptr, 500}, Layout{512, 16}, Move::forbidden);
  EXPECT_EQ(same, g);
  EXPECT_EQ(a.stats().grows, 2u);
  (void)fence;
}

TEST(TreeAllocator, GrowsInPlacePastTheLargestClass) {
  TestRegion r(4 * kMiB);
  TreeAllocator a(r.block());
  Block x = must_allocate(a, kMiB);
  Block g = a.grow(x, Layout{2 * kMiB + 5, 16}, Move::forbidden);
  ASSERT_EQ(g.ptr, x.ptr);
  EXPECT_EQ(g.size, 2 * kMiB + 32);
  EXPECT_EQ(a.allocated_size(g.ptr), g.size);
  EXPECT_EQ(a.oversize_allocations(), 0u);
  ASSERT_TRUE(a.check_invariants());
  a.deallocate(g, 16);
  EXPECT_EQ(a.largest_free_span(), a.capacity());
}

TEST(TreeAllocator, GrowMovesWhenThereIsNoRoomAndKeepsTheBytes) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = must_allocate(a, 64);
  Block fence = must_allocate(a, 64);
  for (std::size_t i = 0; i < 64; ++i)
    x.ptr[i] = static_cast<std::byte>(i * 3);
  Block g = a.grow(x, Layout{4000, 16}, Move::allowed);
  ASSERT_TRUE(g);
  EXPECT_NE(g.ptr, x.ptr);
  for (std::size_t i = 0; i < 64; ++i)
    ASSERT_EQ(g.ptr[i], static_cast<std::byte>(i * 3));
  EXPECT_EQ(a.allocated_size(x.ptr), 0u) << "the old block was freed";
  EXPECT_EQ(a.stats().live_blocks(), 2u);
  // Growing past the largest class moves to the oversize allocator.
  Block o = a.grow(g, Layout{2 * kMiB, 16}, Move::allowed);
  ASSERT_TRUE(o);
  EXPECT_FALSE(TreePeer::core(a).region_of(o.ptr));
  EXPECT_EQ(a.oversize_allocations(), 1u);
  for (std::size_t i = 0; i < 64; ++i)
    ASSERT_EQ(o.ptr[i], static_cast<std::byte>(i * 3));
  a.deallocate(o, 16);
  a.deallocate(fence, 16);
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, ShrinksInPlaceAndTheTailMergesWithTheFollowingSpan) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = must_allocate(a, 4096);
  Block s = a.shrink(x, Layout{1000, 16}, Move::forbidden);
  ASSERT_EQ(s.ptr, x.ptr);
  EXPECT_EQ(s.size, 1024u);
  EXPECT_EQ(a.allocated_size(x.ptr), 1024u);
  ASSERT_TRUE(a.check_invariants());
  // The tail merged with the rest of the region: one span right after the block.
  auto spans = CorePeer::spans(TreePeer::core(a));
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(std::get<1>(spans[0]), x.ptr + 1024);
  EXPECT_EQ(a.stats().bytes_in_use, 1024u);
  Block z = a.shrink(s, Layout{0, 16}, Move::allowed);
  EXPECT_TRUE(is_zero_size_sentinel(z.ptr));
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_EQ(a.largest_free_span(), a.capacity());
}

TEST(TreeAllocator, RequestsAboveTheLargestClassGoToTheOversizeAllocator) {
  TestRegion r(256 * kKiB);
  TreeAllocator a(r.block());
  Block big = a.allocate(Layout{2 * kMiB, 64});
  ASSERT_TRUE(big);
  EXPECT_TRUE(is_aligned(big.ptr, 64));
  EXPECT_EQ(a.oversize_allocations(), 1u);
  EXPECT_EQ(a.oversize().stats().live_blocks(), 1u);
  EXPECT_TRUE(a.contains(big.ptr));
  EXPECT_EQ(a.allocated_size(big.ptr), 2 * kMiB);
  EXPECT_EQ(a.stats().bytes_in_use, 2 * kMiB);
  std::memset(big.ptr, 1, big.size);
  a.deallocate(Block{big.ptr, 0}, 64);  // unsized free works for oversize blocks too
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_EQ(a.oversize().stats().live_blocks(), 0u);
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, RecoversBlockSizesWithoutTheCaller) {
  TestRegion r(4 * kMiB);
  TreeAllocator a(r.block());
  std::vector<Block> blocks;
  for (std::size_t size : {1, 31, 32, 33, 2016, 2048, 2049, 100000, 1048576}) {
    Block b = must_allocate(a, size);
    EXPECT_EQ(a.allocated_size(b.ptr), align_up(size, 32)) << size;
    EXPECT_EQ(a.allocated_size(b.ptr + 32), 0u) << "an interior pointer is no block";
    blocks.push_back(b);
  }
  EXPECT_EQ(a.allocated_size(r.data()), 0u) << "metadata is no block";
  int on_stack = 0;
  EXPECT_EQ(a.allocated_size(&on_stack), 0u);
  for (Block b : blocks)
    a.deallocate(Block{b.ptr, 0}, 16);  // unsized free
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_EQ(a.largest_free_span(), a.capacity());
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, KeepsRegionsApartEvenWhenTheyAreAdjacent) {
  TestRegion r(512 * kKiB);
  TreeAllocator a;
  EXPECT_EQ(a.capacity(), 0u);
  EXPECT_FALSE(a.allocate(Layout{64, 16})) << "no region yet";
  const Block lo{r.data(), 256 * kKiB};
  const Block hi{r.data() + 256 * kKiB, 256 * kKiB};
  ASSERT_TRUE(a.add_region(hi));
  ASSERT_TRUE(a.add_region(lo));
  EXPECT_EQ(a.region_count(), 2u);
  EXPECT_FALSE(a.add_region(Block{r.data() + 1000, 4096})) << "overlaps a region";
  EXPECT_FALSE(a.add_region(Block{r.data() + 256 * kKiB - 64, 4096})) << "overlaps both";
  alignas(64) static std::byte tiny[128];
  EXPECT_FALSE(a.add_region(Block{tiny, sizeof tiny})) << "no room for metadata and a granule";
  EXPECT_EQ(a.region_count(), 2u);
  std::vector<Block> blocks;
  for (Block b; (b = a.allocate(Layout{1000, 16}));)
    blocks.push_back(b);
  EXPECT_LT(blocks.front().ptr, hi.ptr) << "the lower region first";
  for (Block b : blocks)
    a.deallocate(b, 16);
  ASSERT_TRUE(a.check_invariants());
  EXPECT_EQ(a.free_region_count(), 2u) << "two spans, never merged across the regions";
  EXPECT_EQ(CorePeer::spans(TreePeer::core(a)).size(), 2u);
  EXPECT_FALSE(a.allocate(Layout{a.capacity() / 2 + 4096, 16}))
      << "no span is longer than one region";
}

TEST(TreeAllocator, HandlesARegionOfASingleGranule) {
  // 104 B header + 1 map byte + padding to 128 + one 32 B granule.
  alignas(64) static std::byte buf[160];
  TreeAllocator a;
  ASSERT_TRUE(a.add_region(Block{buf, sizeof buf}));
  EXPECT_EQ(a.capacity(), 32u);
  EXPECT_EQ(a.free_region_count(), 1u);
  ASSERT_TRUE(a.check_invariants()) << a.check_invariants().error();
  Block b = must_allocate(a, 20);
  EXPECT_EQ(b.ptr, buf + 128);
  EXPECT_EQ(a.free_region_count(), 0u);
  EXPECT_FALSE(a.allocate(Layout{1, 1}));
  a.deallocate(b, 16);
  EXPECT_EQ(a.free_region_count(), 1u);
  ASSERT_TRUE(a.check_invariants()) << a.check_invariants().error();
  EXPECT_EQ(a.take_free_region(), (Block{buf, sizeof buf}));
}

TEST(TreeAllocator, TakesBackEntirelyFreeRegionsExactlyAsAdded) {
  TestRegion r1(256 * kKiB);
  TestRegion r2(256 * kKiB);
  TreeAllocator a;
  ASSERT_TRUE(a.add_region(r1.block()));
  ASSERT_TRUE(a.add_region(r2.block()));
  EXPECT_EQ(a.free_region_count(), 2u);
  const bool first_lower = r1.data() < r2.data();
  Block x = must_allocate(a, 1000);  // lands in the lower region
  EXPECT_EQ(a.free_region_count(), 1u);
  Block back = a.take_free_region();
  EXPECT_EQ(back, first_lower ? r2.block() : r1.block());
  EXPECT_EQ(a.region_count(), 1u);
  EXPECT_FALSE(a.take_free_region()) << "the other region holds a live block";
  EXPECT_FALSE(a.contains(back.ptr + 4096));
  a.deallocate(x, 16);
  EXPECT_EQ(a.free_region_count(), 1u);
  Block back2 = a.take_free_region();
  EXPECT_EQ(back2, first_lower ? r1.block() : r2.block());
  EXPECT_EQ(a.capacity(), 0u);
  EXPECT_FALSE(a.allocate(Layout{64, 16}));
  ASSERT_TRUE(a.check_invariants());
  // Given back memory can be added again (as the GlobalHeap would reuse a chunk).
  ASSERT_TRUE(a.add_region(back));
  EXPECT_TRUE(must_allocate(a, 64));
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, ZeroSizeRequestsGetTheSentinel) {
  TestRegion r(256 * kKiB);
  TreeAllocator a(r.block());
  for (std::size_t align = 1; align < kSentinelLimit; align *= 2) {
    Block b = a.allocate(Layout{0, align});
    ASSERT_TRUE(b);
    EXPECT_EQ(b.size, 0u);
    EXPECT_TRUE(is_zero_size_sentinel(b.ptr));
    EXPECT_FALSE(a.contains(b.ptr));
    a.deallocate(b, align);
  }
  EXPECT_EQ(a.stats().allocations, 0u);
  EXPECT_EQ(a.stats().misuses, 0u);
  Block g = a.grow(a.allocate(Layout{0, 8}), Layout{24, 8}, Move::allowed);
  ASSERT_TRUE(g);
  EXPECT_TRUE(a.contains(g.ptr));
  // 64 KiB alignment has no sentinel: a real block.
  Block real = a.allocate(Layout{0, 64 * kKiB});
  ASSERT_TRUE(real);
  EXPECT_TRUE(a.contains(real.ptr));
  EXPECT_TRUE(is_aligned(real.ptr, 64 * kKiB));
  a.deallocate(real, 64 * kKiB);
  a.deallocate(g, 8);
  EXPECT_EQ(a.stats().live_blocks(), 0u);
}

TEST(TreeAllocator, SizesNearTheLimitsFailCleanly) {
  TestRegion r(256 * kKiB);
  TreeAllocator a(r.block());
  Block live = must_allocate(a, 100);
  const Stats before = a.stats();
  for (std::size_t size : {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2, SIZE_MAX - 4095}) {
    EXPECT_FALSE(a.allocate(Layout{size, 1})) << size;
    EXPECT_FALSE(a.allocate(Layout{size, 4096})) << size;
    EXPECT_FALSE(a.grow(live, Layout{size, 16}, Move::allowed)) << size;
  }
  EXPECT_EQ(a.stats().failures, before.failures + 12);
  EXPECT_EQ(a.stats().bytes_in_use, before.bytes_in_use) << "failures change nothing";
  EXPECT_EQ(a.allocated_size(live.ptr), 128u);
  // A region-sized request with the largest alignment goes to malloc and may succeed;
  // either way nothing breaks.
  Block huge_align = a.allocate(Layout{64, kMaxAlign});
  if (huge_align) a.deallocate(huge_align, kMaxAlign);
  ASSERT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, AllocateZeroedClearsReusedMemory) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = must_allocate(a, 300);
  std::memset(x.ptr, 0xFF, x.size);
  a.deallocate(x, 16);
  Block z = a.allocate_zeroed(Layout{300, 16});
  ASSERT_EQ(z.ptr, x.ptr);
  for (std::size_t i = 0; i < z.size; ++i)
    ASSERT_EQ(z.ptr[i], std::byte{0}) << i;
}

TEST(TreeAllocator, WorksBehindTheRuntimePolymorphicWrapper) {
  TestRegion r(64 * kKiB);
  std::unique_ptr<DynAllocator> d = make_dyn_allocator<TreeAllocator>("tree", r.block());
  Block b = d->allocate(Layout{128, 64});
  ASSERT_TRUE(b);
  EXPECT_TRUE(d->contains(b.ptr));
  d->deallocate(b, 64);
  EXPECT_EQ(d->stats().bytes_in_use, 0u);
  EXPECT_TRUE(d->check_invariants());
}

TEST(TreeAllocator, HonoursASmallerConfiguration) {
  TestRegion r(256 * kKiB);
  const auto cfg = TreeConfig::make(64, 4096);
  ASSERT_TRUE(cfg);
  TreeAllocator a(r.block(), *cfg);
  Block b = must_allocate(a, 1);
  EXPECT_EQ(b.size, 64u);
  Block o = must_allocate(a, 4097);
  EXPECT_EQ(a.oversize_allocations(), 1u);
  EXPECT_FALSE(TreePeer::core(a).region_of(o.ptr));
  a.deallocate(o, 16);
  a.deallocate(b, 16);
  ASSERT_TRUE(a.check_invariants());
}

// ---------------------------------------------------------------- randomized, with oracle

void run_randomized(std::size_t region_size, TreeConfig cfg, DriverOptions opt) {
  TestRegion r(region_size);
  TreeAllocator a(r.block(), cfg);
  testing::TreePlacementOracle oracle;
  const detail::TreeRegion& region = *TreePeer::core(a).region_of(r.data() + region_size - 1);
  oracle.begin = reinterpret_cast<std::uintptr_t>(region.begin);
  oracle.end = reinterpret_cast<std::uintptr_t>(region.end);
  oracle.granule = cfg.min_class();
  oracle.max_class = cfg.max_class();
  oracle.top = cfg.classes() - 1;
  RandomDriver<TreeAllocator, testing::TreePlacementOracle> driver(a, opt, oracle);
  ASSERT_TRUE(driver.run());
  const testing::DriverReport& rep = driver.report();
  std::printf(
      "ops %llu: %llu allocations (%llu failed, %llu oversize), %llu frees, %llu grows, "
      "%llu shrinks, %llu in place\n",
      static_cast<unsigned long long>(testing::scaled(opt.ops)),
      static_cast<unsigned long long>(rep.allocations),
      static_cast<unsigned long long>(rep.failed_allocations),
      static_cast<unsigned long long>(driver.hooks().oversize),
      static_cast<unsigned long long>(rep.frees), static_cast<unsigned long long>(rep.grows),
      static_cast<unsigned long long>(rep.shrinks), static_cast<unsigned long long>(rep.in_place));
  EXPECT_EQ(driver.hooks().mismatches, 0u) << driver.hooks().first_mismatch;
  // Every path must have been taken (the shares are those of release runs, with margin).
  const std::uint64_t n = testing::scaled(opt.ops);
  EXPECT_GT(rep.in_place, n / 20);
  EXPECT_GE(rep.failed_allocations, 1 + n / 5000) << "the region must fill up";
  EXPECT_GE(driver.hooks().oversize, 1 + n / 1000) << "some requests must go oversize";
  ASSERT_TRUE(driver.free_all());
  EXPECT_EQ(driver.hooks().mismatches, 0u) << driver.hooks().first_mismatch;
  // Nothing lost: the region is one free span again and the largest class fits.
  EXPECT_EQ(a.largest_free_span(), a.capacity());
  EXPECT_EQ(a.free_region_count(), 1u);
  EXPECT_TRUE(a.allocate(Layout{cfg.max_class(), 16}));
  EXPECT_TRUE(a.check_invariants());
}

TEST(TreeAllocator, RandomizedAgainstTheReferenceModelAndAPlacementOracle) {
  DriverOptions opt;
  opt.seed = testing::test_seed(0x7EE);
  opt.max_size = 4096;
  opt.max_align = 4096;
  opt.target_live = 256;
  // 8 classes (32 B .. 4 KiB), so that large and over-aligned requests go oversize.
  run_randomized(256 * kKiB, *TreeConfig::make(32, 4096), opt);
}

TEST(TreeAllocator, RandomizedWithTheDefaultClassesAndLargeBlocks) {
  // Few operations: the driver writes and verifies every payload byte, and blocks here
  // average ~60 KiB.
  DriverOptions opt;
  opt.ops = 40'000;
  opt.seed = testing::test_seed(0x7EF);
  opt.max_size = kMiB;
  opt.max_align = 64 * kKiB;
  opt.target_live = 48;
  opt.check_every = 1024;
  run_randomized(8 * kMiB, TreeConfig{}, opt);
}

// ---------------------------------------------------------------- corruption and misuse

TEST(TreeAllocator, CheckInvariantsReportsCorruptedMetadata) {
  TestRegion r(256 * kKiB);
  auto fresh = [&]() {
    auto a = std::make_unique<TreeAllocator>(r.block());
    Block x = a->allocate(Layout{100, 16});
    Block y = a->allocate(Layout{3000, 16});
    Block z = a->allocate(Layout{64, 16});
    a->deallocate(y, 16);  // a free span between two live blocks
    EXPECT_TRUE(a->check_invariants());
    return std::make_tuple(std::move(a), x, y, z);
  };
  auto expect_caught = [](TreeAllocator& a, const char* what) {
    CheckResult c = a.check_invariants();
    EXPECT_FALSE(c) << "not caught: " << what;
    EXPECT_NE(c.error().find("tree"), std::string::npos) << c.error();
    return c.error();
  };
  {  // a live block's head byte erased from the map
    auto [a, x, y, z] = fresh();
    std::uint8_t* m = CorePeer::map(TreePeer::core(*a));
    const std::size_t i = TreePeer::core(*a).index_of(*TreePeer::core(*a).region_of(x.ptr), x.ptr);
    m[i] = 0;
    EXPECT_NE(expect_caught(*a, "head byte").find("starts neither"), std::string::npos);
    m[i] = 0x84;  // restore (x is 4 granules)
    EXPECT_TRUE(a->check_invariants());
  }
  {  // a boundary marker inside a block
    auto [a, x, y, z] = fresh();
    std::uint8_t* m = CorePeer::map(TreePeer::core(*a));
    const std::size_t i = TreePeer::core(*a).index_of(*TreePeer::core(*a).region_of(y.ptr), y.ptr);
    m[i + 10] = detail::GranuleMap::kFreeTail;
    EXPECT_NE(expect_caught(*a, "marker inside").find("boundary"), std::string::npos);
  }
  {  // a free span's length changed
    auto [a, x, y, z] = fresh();
    auto* s = detail::FreeSpan::at(y.ptr);
    s->word += 32;
    expect_caught(*a, "span length");
  }
  {  // a footer that disagrees
    auto [a, x, y, z] = fresh();
    detail::FreeSpan::store_footer(z.ptr, 64);
    EXPECT_NE(expect_caught(*a, "footer").find("footer"), std::string::npos);
  }
  {  // a span missing from its class's size index: best fits would never find it
    auto [a, x, y, z] = fresh();
    detail::TreeCore& c = TreePeer::core(*a);
    auto* s = detail::FreeSpan::at(y.ptr);
    const unsigned k = CorePeer::class_of(c, s->length());
    CorePeer::sizes(c, k).erase(CorePeer::sizes(c, k).iterator_to(*s));
    EXPECT_NE(expect_caught(*a, "size index").find("size index"), std::string::npos);
  }
  {  // the bitmap says a class is empty that is not
    auto [a, x, y, z] = fresh();
    CorePeer::bitmap(TreePeer::core(*a)) = 0;
    EXPECT_NE(expect_caught(*a, "bitmap").find("bitmap"), std::string::npos);
  }
  {  // a span filed in the wrong class
    auto [a, x, y, z] = fresh();
    detail::TreeCore& c = TreePeer::core(*a);
    auto* s = detail::FreeSpan::at(y.ptr);
    const unsigned k = CorePeer::class_of(c, s->length());
    CorePeer::tree(c, k).erase(CorePeer::tree(c, k).iterator_to(*s));
    CorePeer::tree(c, k + 1).insert(*s);
    CorePeer::bitmap(c) |= std::uint64_t{1} << (k + 1);
    if (CorePeer::tree(c, k).empty()) CorePeer::bitmap(c) &= ~(std::uint64_t{1} << k);
    EXPECT_NE(expect_caught(*a, "wrong class").find("missing from the tree"), std::string::npos);
  }
  {  // two free neighbours left unmerged (a live block's head rewritten as a free span)
    auto [a, x, y, z] = fresh();
    detail::TreeCore& c = TreePeer::core(*a);
    std::uint8_t* m = CorePeer::map(c);
    const std::size_t i = c.index_of(*c.region_of(z.ptr), z.ptr);
    detail::FreeSpan* s = detail::FreeSpan::create(z.ptr, 64);
    CorePeer::tree(c, 1).insert(*s);
    CorePeer::bitmap(c) |= 2;
    detail::GranuleMap::set_free(m, i, 2);
    EXPECT_NE(expect_caught(*a, "unmerged").find("not merged"), std::string::npos);
  }
  {  // a red-black tree with a broken colour
    auto [a, x, y, z] = fresh();
    detail::TreeCore& c = TreePeer::core(*a);
    // Put several spans in one class so the tree has inner structure, then recolour.
    std::vector<Block> keep;
    for (int i = 0; i < 16; ++i) {
      keep.push_back(a->allocate(Layout{64, 16}));
      a->allocate(Layout{32, 16});
    }
    for (Block b : keep)
      a->deallocate(b, 16);
    ASSERT_TRUE(a->check_invariants());
    detail::SpanTree& t = CorePeer::tree(c, 1);
    using Traits = detail::SpanTree::value_traits::node_traits;
    auto root = detail::SpanTree::value_traits::to_node_ptr(*t.root());
    Traits::set_color(root, Traits::red());
    EXPECT_NE(expect_caught(*a, "colour").find("red"), std::string::npos);
    Traits::set_color(root, Traits::black());
    auto leftmost = detail::SpanTree::value_traits::to_node_ptr(*t.begin());
    Traits::set_color(
        leftmost, Traits::get_color(leftmost) == Traits::red() ? Traits::black() : Traits::red());
    expect_caught(*a, "black height");
  }
  {  // statistics that disagree with the map
    auto [a, x, y, z] = fresh();
    TreePeer::counters(*a).bytes_in_use.add(32);
    EXPECT_NE(expect_caught(*a, "stats").find("stats count"), std::string::npos);
  }
  {  // capacity off
    auto [a, x, y, z] = fresh();
    CorePeer::capacity(TreePeer::core(*a)) += 32;
    EXPECT_NE(expect_caught(*a, "capacity").find("capacity"), std::string::npos);
  }
}

TEST(TreeAllocatorMisuse, DoubleFreeIsReported) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = a.allocate(Layout{64, 16});
  Block fence = a.allocate(Layout{64, 16});
  a.deallocate(x, 16);
  testing::expect_misuse([&] { a.deallocate(x, 16); }, "double free in tree.deallocate");
  EXPECT_EQ(a.stats().misuses, 1u);
  EXPECT_EQ(a.stats().live_blocks(), 1u);
  EXPECT_TRUE(a.check_invariants());
  (void)fence;
}

TEST(TreeAllocatorMisuse, DoubleFreeOfABlockMergedSinceIsReported) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = a.allocate(Layout{64, 16});
  Block y = a.allocate(Layout{64, 16});
  Block fence = a.allocate(Layout{64, 16});
  a.deallocate(x, 16);
  a.deallocate(y, 16);  // y merged into x's span: its map byte is interior now
  testing::expect_misuse([&] { a.deallocate(y, 16); }, "double free in tree.deallocate");
  EXPECT_TRUE(a.check_invariants());
  (void)fence;
}

TEST(TreeAllocatorMisuse, InteriorAndForeignPointersAreReported) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = a.allocate(Layout{256, 16});
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{x.ptr + 64, 64}, 16);
      },
      "foreign pointer in tree.deallocate");
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{x.ptr + 1, 16}, 1);
      },
      "foreign pointer in tree.deallocate");
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{r.data() + 8, 16}, 8);
      },
      "foreign pointer in tree.deallocate");
  int on_stack = 0;
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{reinterpret_cast<std::byte*>(&on_stack), 4}, 4);
      },
      "foreign pointer in tree.deallocate");
  EXPECT_EQ(a.allocated_size(x.ptr), 256u) << "x is still live";
  EXPECT_EQ(a.stats().deallocations, 0u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(TreeAllocatorMisuse, ASizeLargerThanTheBlockIsReported) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = a.allocate(Layout{100, 16});
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{x.ptr, 4096}, 16);
      },
      "wrong size in tree.deallocate");
  EXPECT_EQ(a.allocated_size(x.ptr), 128u) << "x is still live";
  EXPECT_TRUE(a.check_invariants());
}

TEST(TreeAllocatorMisuse, DoubleFreeOfAnOversizeBlockIsReported) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block o = a.allocate(Layout{2 * kMiB, 16});
  ASSERT_TRUE(o);
  a.deallocate(o, 16);
  testing::expect_misuse([&] { a.deallocate(o, 16); }, "foreign pointer in tree.deallocate");
  EXPECT_TRUE(a.check_invariants());
}

TEST(TreeAllocatorMisuse, ResizingAFreedBlockOrToTheWrongSideIsReported) {
  TestRegion r(64 * kKiB);
  TreeAllocator a(r.block());
  Block x = a.allocate(Layout{64, 16});
  Block y = a.allocate(Layout{64, 16});
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.grow(x, Layout{8, 16}, Move::allowed));
      },
      "bad argument in tree.grow");
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.shrink(x, Layout{128, 16}, Move::allowed));
      },
      "bad argument in tree.shrink");
  a.deallocate(y, 16);
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.grow(y, Layout{128, 16}, Move::allowed));
      },
      "double free in tree.grow");
  EXPECT_EQ(a.allocated_size(x.ptr), 64u);
  EXPECT_TRUE(a.check_invariants());
}

}  // namespace
}  // namespace ctxalloc
