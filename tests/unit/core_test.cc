#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/bits.h"
#include "ctxalloc/core/layout.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/stats.h"

namespace ctxalloc {
namespace {

TEST(Bits, PowersOfTwoAndAlignment) {
  EXPECT_FALSE(is_pow2(0));
  EXPECT_TRUE(is_pow2(1));
  EXPECT_TRUE(is_pow2(std::size_t{1} << 63));
  EXPECT_FALSE(is_pow2(6));
  EXPECT_EQ(padding_for(0x1001, 16), 15u);
  EXPECT_EQ(padding_for(0x1000, 16), 0u);
  EXPECT_EQ(padding_for(UINTPTR_MAX, 4096), 1u);
  std::size_t out = 0;
  EXPECT_TRUE(align_up_checked(17, 16, &out));
  EXPECT_EQ(out, 32u);
  EXPECT_FALSE(align_up_checked(SIZE_MAX - 3, 16, &out));
  EXPECT_EQ(align_down(31, 16), 16u);
}

TEST(Bits, LowestAndHighestBits) {
  EXPECT_EQ(lowest_bit(0b10100), 0b100u);
  EXPECT_EQ(clear_lowest_bit(0b10100), 0b10000u);
  EXPECT_EQ(mask_through_lowest_bit(0b10100), 0b111u);
  EXPECT_EQ(lowest_bit_index(0b10100), 2u);
  EXPECT_EQ(highest_bit_index(0b10100), 4u);
  EXPECT_EQ(log2_floor(1), 0u);
  EXPECT_EQ(log2_ceil(1), 0u);
  EXPECT_EQ(log2_ceil(5), 3u);
  EXPECT_EQ(log2_ceil(8), 3u);
  EXPECT_EQ(low_bits(0), 0u);
  EXPECT_EQ(low_bits(64), ~std::uint64_t{0});
  EXPECT_EQ(low_bits(3), 7u);
}

TEST(Layout, MakeRejectsBadAlignments) {
  EXPECT_TRUE(Layout::make(0, 1));
  EXPECT_TRUE(Layout::make(SIZE_MAX, kMaxAlign));
  EXPECT_FALSE(Layout::make(8, 0));
  EXPECT_FALSE(Layout::make(8, 24));
  EXPECT_FALSE(Layout::make(8, kMaxAlign << 1));
  EXPECT_EQ(Layout::of<std::uint64_t>(4), (Layout{32, 8}));
}

TEST(Layout, ZeroSizeSentinelHonoursAlignmentAndIsNeverReal) {
  for (std::size_t a = 1; a < kSentinelLimit; a *= 2) {
    ASSERT_TRUE(zero_size_uses_sentinel(a));
    Block b = zero_size_block(a);
    EXPECT_TRUE(b);
    EXPECT_EQ(b.size, 0u);
    EXPECT_TRUE(is_aligned(b.ptr, a));
    EXPECT_TRUE(is_zero_size_sentinel(b.ptr));
  }
  EXPECT_FALSE(zero_size_uses_sentinel(kSentinelLimit));
  EXPECT_FALSE(is_zero_size_sentinel(nullptr));
  int x = 0;
  EXPECT_FALSE(is_zero_size_sentinel(&x));
}

TEST(Stats, CountersTrackBytesAndPeak) {
  StatsCounters c;
  c.on_allocate(100);
  c.on_allocate(50);
  c.on_deallocate(100);
  c.on_resize(50, 80);
  c.on_resize(80, 20);
  const Stats s = c.snapshot();
  EXPECT_EQ(s.allocations, 2u);
  EXPECT_EQ(s.deallocations, 1u);
  EXPECT_EQ(s.grows, 1u);
  EXPECT_EQ(s.shrinks, 1u);
  EXPECT_EQ(s.bytes_in_use, 20u);
  EXPECT_EQ(s.peak_bytes, 150u);
  EXPECT_EQ(s.live_blocks(), 1u);
  EXPECT_NE(to_string(s).find("bytes_in_use=20"), std::string::npos);
}

TEST(Stats, ReadableFromAnotherThreadWhileTheOwnerWrites) {
  // Runs clean under ThreadSanitizer: one writer, relaxed atomics.
  StatsCounters c;
  std::thread reader([&] {
    std::uint64_t last = 0;
    for (int i = 0; i < 10000; ++i) {
      const std::uint64_t now = c.snapshot().allocations;
      EXPECT_GE(now, last);
      last = now;
    }
  });
  for (int i = 0; i < 10000; ++i)
    c.on_allocate(8);
  reader.join();
  EXPECT_EQ(c.snapshot().allocations, 10000u);
}

TEST(Misuse, CountPolicyCountsAndAbortPolicyAbortsWithTheReport) {
  set_misuse_policy(MisusePolicy::count);
  const std::uint64_t before = misuse_count();
  report_misuse(Misuse::double_free, "test", "deallocate", reinterpret_cast<void*>(0x1234));
  EXPECT_EQ(misuse_count(), before + 1);
  EXPECT_DEATH(
      {
        set_misuse_policy(MisusePolicy::abort);
        report_misuse(Misuse::foreign_pointer, "tree", "deallocate",
                      reinterpret_cast<void*>(0xdead0));
      },
      "ctxalloc: foreign pointer in tree.deallocate\\(0xdead0\\)");
}

TEST(Misuse, EveryKindHasAName) {
  for (int m = 0; m <= static_cast<int>(Misuse::bad_argument); ++m) {
    EXPECT_STRNE(to_string(static_cast<Misuse>(m)), "unknown misuse") << m;
  }
}

}  // namespace
}  // namespace ctxalloc
