#include "ctxalloc/allocators/bump_allocator.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "ctxalloc/core/dyn_allocator.h"
#include "support/misuse_test_helpers.h"
#include "support/random_driver.h"
#include "support/test_region.h"

namespace ctxalloc {

template <>
struct TestPeer<BumpAllocator> {
  static void set_next(BumpAllocator& a, std::byte* p) { a.next_.set(p); }
  static void set_peak(BumpAllocator& a, std::size_t v) { a.peak_.set(v); }
};

namespace {

using testing::DriverOptions;
using testing::RandomDriver;
using testing::ReferenceModel;
using testing::TestRegion;

constexpr std::size_t kRegion = 64 * 1024;

TEST(BumpAllocator, AllocatesConsecutivelyAndFreesTheMostRecentInPlace) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  Block x = a.allocate(Layout{100, 8});
  Block y = a.allocate(Layout{50, 8});
  ASSERT_TRUE(x && y);
  EXPECT_EQ(x.ptr, r.data());
  EXPECT_EQ(y.ptr, r.data() + 104);  // 100 rounded up to the 8-byte alignment
  EXPECT_EQ(a.used(), 154u);
  a.deallocate(y, 8);
  EXPECT_EQ(a.used(), 104u);
  Block z = a.allocate(Layout{50, 8});
  EXPECT_EQ(z.ptr, y.ptr) << "the freed most recent block is reused";
  a.deallocate(x, 8);  // not the most recent: counted, not reclaimed
  EXPECT_EQ(a.used(), 154u);
  EXPECT_EQ(a.stats().live_blocks(), 1u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BumpAllocator, FreeingInLifoOrderGivesEveryBlockBack) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  std::vector<Block> blocks;
  for (std::size_t size : {16, 24, 8, 40, 32})
    blocks.push_back(a.allocate(Layout{size, 8}));
  EXPECT_EQ(a.used(), 120u);
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
    a.deallocate(*it, 8);
  EXPECT_EQ(a.used(), 0u);
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_EQ(a.stats().peak_bytes, 120u);
}

TEST(BumpAllocator, HonoursEveryPowerOfTwoAlignmentUpToOneMebibyte) {
  TestRegion r(4 << 20, 1 << 20);
  BumpAllocator a(r.block());
  for (std::size_t align = 1; align <= (1u << 20); align *= 2) {
    a.reset();
    ASSERT_TRUE(a.allocate(Layout{1, 1}));  // knock next off any alignment
    Block b = a.allocate(Layout{3, align});
    ASSERT_TRUE(b) << align;
    EXPECT_TRUE(is_aligned(b.ptr, align)) << align;
  }
  EXPECT_TRUE(a.check_invariants());
}

TEST(BumpAllocator, FillsItsRegionExactlyAndThenFailsWithoutChangingState) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  Block whole = a.allocate(Layout{kRegion, 1});
  ASSERT_TRUE(whole);
  EXPECT_EQ(a.used(), kRegion);
  EXPECT_FALSE(a.allocate(Layout{1, 1}));
  EXPECT_EQ(a.stats().failures, 1u);
  // The failure left the most recent block freeable in place.
  a.deallocate(whole, 1);
  EXPECT_EQ(a.used(), 0u);
  EXPECT_TRUE(a.allocate(Layout{kRegion, 1}));
  EXPECT_TRUE(a.check_invariants());
}

TEST(BumpAllocator, SizesAndAlignmentsNearTheLimitsFailCleanly) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  ASSERT_TRUE(a.allocate(Layout{10, 1}));
  const std::size_t used = a.used();
  for (std::size_t size : {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2, SIZE_MAX - 4095, kRegion}) {
    EXPECT_FALSE(a.allocate(Layout{size, 1})) << size;
    EXPECT_FALSE(a.allocate(Layout{size, 4096})) << size;
  }
  EXPECT_FALSE(a.allocate(Layout{1, kMaxAlign})) << "no 1 GiB-aligned address in the region";
  EXPECT_EQ(a.used(), used) << "failures leave the state unchanged";
  EXPECT_EQ(a.stats().failures, 11u);
  EXPECT_FALSE(Layout::make(1, 3)) << "non-power-of-two alignment";
  EXPECT_FALSE(Layout::make(1, 0));
  EXPECT_FALSE(Layout::make(1, kMaxAlign * 2));
  EXPECT_TRUE(a.check_invariants());
}

TEST(BumpAllocator, ZeroSizeRequestsGetAnAlignedSentinelThatFreesAsANoOp) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  for (std::size_t align = 1; align < kSentinelLimit; align *= 2) {
    Block b = a.allocate(Layout{0, align});
    ASSERT_TRUE(b);
    EXPECT_EQ(b.size, 0u);
    EXPECT_TRUE(is_aligned(b.ptr, align));
    EXPECT_TRUE(is_zero_size_sentinel(b.ptr));
    EXPECT_FALSE(a.contains(b.ptr));
    a.deallocate(b, align);
  }
  EXPECT_EQ(a.used(), 0u);
  EXPECT_EQ(a.stats().allocations, 0u);
  EXPECT_EQ(a.stats().misuses, 0u);
  // Growing a zero-size block is a fresh allocation.
  Block g = a.grow(a.allocate(Layout{0, 8}), Layout{24, 8}, Move::allowed);
  ASSERT_TRUE(g);
  EXPECT_TRUE(a.contains(g.ptr));
}

TEST(BumpAllocator, ZeroSizeWithAnAlignmentAboveTheSentinelLimitIsARealBlock) {
  TestRegion r(1 << 20, 1 << 17);
  BumpAllocator a(r.block());
  Block b = a.allocate(Layout{0, 1 << 17});
  ASSERT_TRUE(b);
  EXPECT_TRUE(a.contains(b.ptr));
  EXPECT_TRUE(is_aligned(b.ptr, 1 << 17));
  a.deallocate(b, 1 << 17);
  EXPECT_EQ(a.used(), 0u);
}

TEST(BumpAllocator, GrowsAndShrinksTheMostRecentBlockInPlace) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  Block x = a.allocate(Layout{64, 8});
  std::memset(x.ptr, 0xAB, x.size);
  Block g = a.grow(x, Layout{1000, 8}, Move::forbidden);
  ASSERT_EQ(g.ptr, x.ptr);
  EXPECT_EQ(g.size, 1000u);
  EXPECT_EQ(a.used(), 1000u);
  Block s = a.shrink(g, Layout{10, 8}, Move::forbidden);
  ASSERT_EQ(s.ptr, x.ptr);
  EXPECT_EQ(a.used(), 10u);
  EXPECT_EQ(static_cast<unsigned char>(s.ptr[9]), 0xABu);
  // Growing past the end fails and leaves the block as it was.
  EXPECT_FALSE(a.grow(s, Layout{kRegion + 1, 8}, Move::allowed));
  EXPECT_EQ(a.used(), 10u);
  const Stats st = a.stats();
  EXPECT_EQ(st.grows, 1u);
  EXPECT_EQ(st.shrinks, 1u);
  EXPECT_EQ(st.failures, 1u);
}

TEST(BumpAllocator, GrowingAnOlderBlockMovesItOrFailsWhenMovingIsForbidden) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  Block x = a.allocate(Layout{32, 8});
  std::memset(x.ptr, 0x5A, 32);
  Block y = a.allocate(Layout{32, 8});
  EXPECT_FALSE(a.grow(x, Layout{64, 8}, Move::forbidden));
  Block g = a.grow(x, Layout{64, 8}, Move::allowed);
  ASSERT_TRUE(g);
  EXPECT_GT(g.ptr, y.ptr);
  for (int i = 0; i < 32; ++i)
    ASSERT_EQ(static_cast<unsigned char>(g.ptr[i]), 0x5Au);
  // Shrinking an older block is in place; its tail stays unused.
  Block s = a.shrink(y, Layout{8, 8}, Move::forbidden);
  EXPECT_EQ(s.ptr, y.ptr);
  EXPECT_EQ(a.stats().live_blocks(), 2u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BumpAllocator, ResetMakesTheWholeRegionAvailableAndKeepsThePeak) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  ASSERT_TRUE(a.allocate(Layout{4000, 16}));
  ASSERT_TRUE(a.allocate(Layout{4000, 16}));
  a.reset();
  EXPECT_EQ(a.used(), 0u);
  EXPECT_GE(a.stats().peak_bytes, 8000u);
  EXPECT_TRUE(a.allocate(Layout{kRegion, 1}));
}

TEST(BumpAllocator, AllocateZeroedZeroesMemoryThatWasUsedBefore) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  Block x = a.allocate(Layout{256, 8});
  std::memset(x.ptr, 0xFF, 256);
  a.deallocate(x, 8);
  Block z = a.allocate_zeroed(Layout{256, 8});
  ASSERT_EQ(z.ptr, x.ptr);
  for (std::size_t i = 0; i < z.size; ++i)
    ASSERT_EQ(z.ptr[i], std::byte{0}) << i;
}

TEST(BumpAllocator, WorksBehindTheRuntimePolymorphicWrapper) {
  TestRegion r(kRegion);
  std::unique_ptr<DynAllocator> d = make_dyn_allocator<BumpAllocator>("bump", r.block());
  Block b = d->allocate(Layout{128, 64});
  ASSERT_TRUE(b);
  EXPECT_TRUE(d->contains(b.ptr));
  EXPECT_STREQ(d->name(), "bump");
  d->deallocate(b, 64);
  EXPECT_EQ(d->stats().bytes_in_use, 0u);
  EXPECT_TRUE(d->check_invariants());
}

// An oracle of the bump allocator's exact behaviour, written from its specification:
// where the next block must land, when a request must succeed, which frees and resizes
// happen in place (those of the block that ends where the free space begins and meets
// the new alignment), and that the free leaving no block live rewinds the region.
struct BumpOracle : testing::DefaultHooks<BumpAllocator> {
  static constexpr bool kResetWhenExhausted = true;
  std::byte* begin = nullptr;
  std::byte* end = nullptr;
  std::byte* next = nullptr;
  std::uint64_t live = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t rewinds = 0;  // frees that left nothing live, away from the region's start

  bool failure_allowed(const BumpAllocator&, const ReferenceModel&, Layout) const { return true; }

  std::byte* place(Layout l) const {
    const auto addr = reinterpret_cast<std::uintptr_t>(next);
    const std::uintptr_t aligned = (addr + l.align - 1) / l.align * l.align;
    return aligned + l.size <= reinterpret_cast<std::uintptr_t>(end)
               ? reinterpret_cast<std::byte*>(aligned)
               : nullptr;
  }
  void after_allocate(const BumpAllocator& a, Layout l, Block b) {
    if (l.size == 0) return;
    std::byte* at = place(l);
    if (at != b.ptr) ++mismatches;
    if (b.ptr != nullptr) {
      next = b.ptr + l.size;
      ++live;
    }
    check_used(a);
  }
  void after_free(const BumpAllocator& a, Block b) {
    if (b.ptr + b.size == next) next = b.ptr;
    if (--live == 0) {
      if (next != begin) ++rewinds;
      next = begin;
    }
    check_used(a);
  }
  void after_resize(const BumpAllocator& a, Block old, Layout l, Move m, Block r) {
    const bool last = old.ptr + old.size == next;
    const bool aligned = reinterpret_cast<std::uintptr_t>(old.ptr) % l.align == 0;
    const bool grow = l.size >= old.size;
    if (aligned && (!grow || (last && old.ptr + l.size <= end))) {  // in place
      if (r.ptr != old.ptr) ++mismatches;
      if (last) next = old.ptr + l.size;
    } else if (m == Move::forbidden) {
      if (r.ptr != nullptr) ++mismatches;
    } else {
      // Moved: a fresh allocation where the next one would go, then the old block freed
      // (never the most recent any more, never the last live one).
      if (r.ptr != place(l)) ++mismatches;
      if (r.ptr != nullptr) next = r.ptr + l.size;
    }
    check_used(a);
  }
  void check_used(const BumpAllocator& a) {
    if (a.used() != static_cast<std::size_t>(next - begin)) ++mismatches;
    if (a.stats().bytes_in_use != a.used()) ++mismatches;
  }
  void reset(BumpAllocator& a) {
    a.reset();
    next = begin;
    live = 0;
  }
};

TEST(BumpAllocator, RandomizedAgainstTheReferenceModelAndAnExactOracle) {
  TestRegion r(256 * 1024);
  BumpAllocator a(r.block());
  BumpOracle oracle;
  oracle.begin = oracle.next = r.data();
  oracle.end = r.data() + r.size();
  DriverOptions opt;
  opt.seed = testing::test_seed(0xB0B);
  opt.exact_bytes = false;  // bump's bytes in use count blocks freed out of order
  RandomDriver<BumpAllocator, BumpOracle> driver(a, opt, oracle);
  ASSERT_TRUE(driver.run());
  EXPECT_EQ(driver.hooks().mismatches, 0u);
  EXPECT_GT(driver.hooks().rewinds, 10u) << "the last free must often leave padding to rewind";
  EXPECT_GT(driver.report().in_place, 1000u);
  EXPECT_GT(driver.report().failed_allocations, 10u) << "the region must fill up and be reset";
  ASSERT_TRUE(driver.free_all());
  // Everything freed: after reset the whole capacity can be allocated again.
  a.reset();
  EXPECT_TRUE(a.allocate(Layout{r.size(), 1}));
  EXPECT_TRUE(a.check_invariants());
}

TEST(BumpAllocator, CheckInvariantsReportsCorruptedMetadata) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  ASSERT_TRUE(a.allocate(Layout{16, 8}));
  ASSERT_TRUE(a.check_invariants());
  TestPeer<BumpAllocator>::set_next(a, r.data() + kRegion + 64);
  CheckResult c = a.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("next"), std::string::npos) << c.error();
  TestPeer<BumpAllocator>::set_next(a, r.data() + 16);
  ASSERT_TRUE(a.check_invariants());
  TestPeer<BumpAllocator>::set_peak(a, kRegion + 1);
  c = a.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("peak"), std::string::npos) << c.error();
}

TEST(BumpAllocatorMisuse, DoubleFreeOfTheMostRecentBlockIsReported) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  Block x = a.allocate(Layout{16, 8});
  a.deallocate(x, 8);
  testing::expect_misuse([&] { a.deallocate(x, 8); }, "double free in bump.deallocate");
  EXPECT_EQ(a.stats().misuses, 1u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BumpAllocatorMisuse, ForeignPointerIsReported) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  int on_stack = 0;
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{reinterpret_cast<std::byte*>(&on_stack), 4}, 4);
      },
      "foreign pointer in bump.deallocate");
  EXPECT_EQ(a.stats().deallocations, 0u);
}

TEST(BumpAllocatorMisuse, GrowToASmallerSizeIsReported) {
  TestRegion r(kRegion);
  BumpAllocator a(r.block());
  Block x = a.allocate(Layout{64, 8});
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.grow(x, Layout{8, 8}, Move::allowed));
      },
      "bad argument in bump.grow");
  EXPECT_EQ(a.used(), 64u);
}

}  // namespace
}  // namespace ctxalloc

namespace ctxalloc {
namespace {

// Issue 19, item 2: allocate(0, 65536) -- a real block, as documented -- then its free
// left bytes_in_use at 61,440: the alignment padding before the block was counted in use
// and never given back. The free that leaves no block live now rewinds the region.
TEST(BumpAllocator, PaddingComesBackWhenTheLastBlockIsFreed) {
  TestRegion r(4 * kRegion, 4096);
  BumpAllocator a(Block{r.data() + 4096, 4 * kRegion - 4096});  // not 64 KiB aligned
  Block b = a.allocate(Layout{0, 65536});
  ASSERT_TRUE(b);
  EXPECT_FALSE(is_zero_size_sentinel(b.ptr)) << "size 0 with a 64 KiB alignment is a real block";
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.ptr) % 65536, 0u);
  EXPECT_GT(a.stats().bytes_in_use, 0u);
  a.deallocate(b, 65536);
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_EQ(a.used(), 0u);
  EXPECT_TRUE(a.check_invariants());
  // Out of order, with padding between the blocks: the last free rewinds it all.
  Block x = a.allocate(Layout{10, 8});
  Block y = a.allocate(Layout{100, 4096});
  Block z = a.allocate(Layout{7, 1});
  ASSERT_TRUE(x && y && z);
  EXPECT_EQ(x.ptr, r.data() + 4096) << "the region starts over";
  a.deallocate(y, 4096);
  a.deallocate(x, 8);
  EXPECT_GT(a.stats().bytes_in_use, 0u) << "z is live: nothing can be rewound";
  a.deallocate(z, 1);
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_TRUE(a.check_invariants());
  // reset() counts the blocks it forgets as freed.
  ASSERT_TRUE(a.allocate(Layout{64, 8}));
  ASSERT_TRUE(a.allocate(Layout{64, 64}));
  a.reset();
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_TRUE(a.check_invariants());
}

}  // namespace
}  // namespace ctxalloc
