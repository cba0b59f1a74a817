#include "ctxalloc/allocators/bitset_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "ctxalloc/allocators/detail/bitset_search.h"
#include "ctxalloc/core/dyn_allocator.h"
#include "support/misuse_test_helpers.h"
#include "support/random_driver.h"
#include "support/test_region.h"

namespace ctxalloc {

template <>
struct TestPeer<BitSetAllocator> {
  static std::uint64_t* free_words(BitSetAllocator& a) { return a.free_; }
  static std::uint64_t* start_words(BitSetAllocator& a) { return a.start_; }
  static std::size_t words(const BitSetAllocator& a) { return a.nwords_; }
  static std::size_t hint(const BitSetAllocator& a) { return a.hint_; }
  static void set_hint(BitSetAllocator& a, std::size_t h) { a.hint_ = h; }
  static void add_blocks_in_use(BitSetAllocator& a, std::uint64_t n) { a.blocks_in_use_.add(n); }
};

namespace {

using Peer = TestPeer<BitSetAllocator>;
using testing::DriverOptions;
using testing::RandomDriver;
using testing::ReferenceModel;
using testing::TestRegion;
constexpr std::size_t npos = ~std::size_t{0};

// The number of blocks docs/design.md promises for a region, computed the slow way: the
// two bit sets (n / 64 + 1 words each) at the first 8-byte boundary, then n blocks at
// the next multiple of the block size, all inside the region.
std::size_t expected_blocks(std::uintptr_t begin, std::size_t size, std::size_t bs) {
  std::size_t best = 0;
  for (std::size_t n = 1;; ++n) {
    const std::uintptr_t meta = (begin + 7) / 8 * 8;
    const std::uintptr_t blocks = (meta + 16 * (n / 64 + 1) + bs - 1) / bs * bs;
    if (blocks + n * bs > begin + size) return best;
    best = n;
  }
}

// Index of p's block in a's block area.
std::size_t index_of(const BitSetAllocator& a, const void* p) {
  return static_cast<std::size_t>(static_cast<const std::byte*>(p) - a.block_area().ptr) /
         a.block_size();
}

// Takes every block of a fresh allocator one at a time (ascending, next-fit).
std::vector<Block> fill(BitSetAllocator& a) {
  std::vector<Block> blocks;
  for (;;) {
    Block b = a.allocate(Layout{a.block_size(), 8});
    if (!b) return blocks;
    blocks.push_back(b);
  }
}

TEST(BitSetAllocator, ValidateRejectsBadBlockSizesAndRegionsWithoutRoomForOneBlock) {
  TestRegion r(4096);
  using E = BitSetAllocator::ConfigError;
  for (std::size_t bs : {0, 1, 2, 4})
    EXPECT_NE(BitSetAllocator::validate(r.block(), bs), E::none) << bs;
  EXPECT_EQ(BitSetAllocator::validate(r.block(), 4), E::block_size_too_small);
  for (std::size_t bs : {12, 24, 48, 100, 4095})
    EXPECT_EQ(BitSetAllocator::validate(r.block(), bs), E::block_size_not_pow2) << bs;
  for (std::size_t bs : {8, 16, 64, 1024, 2048})
    EXPECT_EQ(BitSetAllocator::validate(r.block(), bs), E::none) << bs;
  // 16 bytes of bit sets + one block is the smallest region.
  EXPECT_EQ(BitSetAllocator::validate(Block{r.data(), 24}, 8), E::none);
  EXPECT_EQ(BitSetAllocator::validate(Block{r.data(), 23}, 8), E::region_too_small);
  EXPECT_EQ(BitSetAllocator::validate(r.block(), 4096), E::region_too_small);
  EXPECT_EQ(BitSetAllocator::validate(Block{nullptr, 4096}, 8), E::region_too_small);
  EXPECT_EQ(BitSetAllocator::validate(Block{r.data(), SIZE_MAX}, 8), E::region_too_small);
  EXPECT_STREQ(BitSetAllocator::to_string(E::block_size_not_pow2),
               "block size is not a power of two");
}

TEST(BitSetAllocator, TheBitSetsLeadTheRegionAndAlignedBlocksFollow) {
  TestRegion r(64 * 1024);
  for (std::size_t offset : {0, 3, 8, 13}) {
    const Block region{r.data() + offset, r.size() - offset};
    BitSetAllocator a(region, 64);
    const std::size_t n = a.block_count();
    const std::size_t words = n / 64 + 1;
    const std::byte* meta_end = r.data() + (offset + 7) / 8 * 8 + 16 * words;
    EXPECT_GE(a.block_area().ptr, meta_end) << offset;
    EXPECT_LT(a.block_area().ptr, meta_end + 64) << "at most one block of padding";
    EXPECT_TRUE(is_aligned(a.block_area().ptr, 64));
    EXPECT_LE(a.block_area().end(), region.end());
    EXPECT_EQ(a.block_area().size, n * 64);
    EXPECT_EQ(a.stats().capacity, n * 64);
    EXPECT_TRUE(a.contains(region.ptr)) << "the bit sets belong to the allocator";
    EXPECT_FALSE(a.contains(region.end()));
    EXPECT_TRUE(a.check_invariants());
  }
}

TEST(BitSetAllocator, CapacityIsExactAndTheNextAllocationFailsAtSeveralRegionSizes) {
  TestRegion r(300 * 1024);
  int configs = 0;
  for (std::size_t bs : {8, 16, 64, 256, 4096}) {
    for (std::size_t size : {24, 40, 100, 530, 4096, 4096 + 17, 8 * 1024 + 8, 65536, 300 * 1000}) {
      for (std::size_t offset : {0, 5}) {
        if (offset + size > r.size()) continue;
        const Block region{r.data() + offset, size};
        const std::size_t n =
            expected_blocks(reinterpret_cast<std::uintptr_t>(region.ptr), size, bs);
        SCOPED_TRACE(::testing::Message() << "block " << bs << " region " << size << "+" << offset);
        if (n == 0) {
          EXPECT_EQ(BitSetAllocator::validate(region, bs),
                    BitSetAllocator::ConfigError::region_too_small);
          continue;
        }
        ++configs;
        BitSetAllocator a(region, bs);
        ASSERT_EQ(a.block_count(), n);
        std::vector<Block> blocks = fill(a);
        ASSERT_EQ(blocks.size(), n) << "n blocks fit";
        for (std::size_t i = 0; i < n; ++i)
          ASSERT_EQ(blocks[i].ptr, a.block_area().ptr + i * bs) << "fresh next-fit is ascending";
        EXPECT_EQ(a.stats().failures, 1u) << "the n+1th allocation fails";
        EXPECT_EQ(a.free_block_count(), 0u);
        EXPECT_EQ(a.stats().bytes_in_use, n * bs);
        ASSERT_TRUE(a.check_invariants());
        for (const Block& b : blocks)
          a.deallocate(b, 8);
        EXPECT_EQ(a.free_block_count(), n);
        // Everything freed: all n blocks again, once one at a time, once as one run.
        EXPECT_EQ(fill(a).size(), n);
        BitSetAllocator fresh(region, bs);
        Block whole = fresh.allocate(Layout{n * bs, 8});
        ASSERT_TRUE(whole);
        EXPECT_EQ(whole.ptr, fresh.block_area().ptr);
        EXPECT_FALSE(fresh.allocate(Layout{1, 1}));
        fresh.deallocate(whole, 8);
        EXPECT_FALSE(fresh.allocate(Layout{n * bs + 1, 8})) << "n + 1 blocks never fit";
        EXPECT_TRUE(fresh.check_invariants());
      }
    }
  }
  EXPECT_GE(configs, 40);
}

TEST(BitSetAllocator, TheSearchStartsAtTheHintWordAndWrapsAroundOnce) {
  TestRegion r(4096);
  BitSetAllocator a(r.block(), 8);
  const std::size_t n = a.block_count();
  ASSERT_GT(n, 200u);
  std::vector<Block> first;
  for (int i = 0; i < 74; ++i)
    first.push_back(a.allocate(Layout{8, 8}));
  EXPECT_EQ(Peer::hint(a), 1u) << "word 0 is full, the hint moved on";
  // The hint follows frees: a freed block is the next one handed out, even behind the
  // last allocation, and the search starts there rather than at the region's start.
  a.deallocate(first[3], 8);
  a.deallocate(first[70], 8);
  EXPECT_EQ(Peer::hint(a), 1u);
  EXPECT_EQ(index_of(a, a.allocate(Layout{8, 8}).ptr), 70u) << "not block 3: word 0 waits";
  a.deallocate(first[5], 8);
  EXPECT_EQ(Peer::hint(a), 0u);
  EXPECT_EQ(index_of(a, a.allocate(Layout{8, 8}).ptr), 3u) << "first fit inside the hint word";
  EXPECT_EQ(index_of(a, a.allocate(Layout{8, 8}).ptr), 5u);
  // Word 0 is full again: the search moves on from the hint word, in address order.
  std::size_t taken = 74;
  while (taken < n) {
    Block c = a.allocate(Layout{8, 8});
    ASSERT_TRUE(c);
    ASSERT_EQ(index_of(a, c.ptr), taken++);
  }
  EXPECT_FALSE(a.allocate(Layout{8, 8}));
  // A hole at the start and a hint at the end: the search runs to the end, then wraps.
  a.deallocate(first[10], 8);
  a.deallocate(Block{a.block_area().ptr + (n - 1) * 8, 8}, 8);
  EXPECT_EQ(Peer::hint(a), (n - 1) / 64);
  EXPECT_EQ(index_of(a, a.allocate(Layout{8, 8}).ptr), n - 1);
  Block wrapped = a.allocate(Layout{8, 8});
  ASSERT_TRUE(wrapped) << "the search wraps around to the start";
  EXPECT_EQ(wrapped.ptr, first[10].ptr);
  EXPECT_FALSE(a.allocate(Layout{8, 8}));
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, RunsOfExactly64And128BlocksOnAndAcrossWordBoundaries) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 8);
  ASSERT_GT(a.block_count(), 1000u);
  Block w0 = a.allocate(Layout{64 * 8, 8});
  Block w12 = a.allocate(Layout{128 * 8, 8});
  ASSERT_TRUE(w0 && w12);
  EXPECT_EQ(index_of(a, w0.ptr), 0u);
  EXPECT_EQ(index_of(a, w12.ptr), 64u);
  EXPECT_EQ(w12.size, 128u * 8);
  Block one = a.allocate(Layout{8, 8});
  EXPECT_EQ(index_of(a, one.ptr), 192u);
  Block r64 = a.allocate(Layout{64 * 8, 8});    // 193 .. 256: words 3 and 4
  Block r128 = a.allocate(Layout{128 * 8, 8});  // 257 .. 384: words 4, 5 and 6
  Block r63 = a.allocate(Layout{63 * 8, 8});    // 385 .. 447: words 6 and 7
  Block r65 = a.allocate(Layout{65 * 8, 8});    // 448 .. 512: words 7 and 8
  EXPECT_EQ(index_of(a, r64.ptr), 193u);
  EXPECT_EQ(index_of(a, r128.ptr), 257u);
  EXPECT_EQ(index_of(a, r63.ptr), 385u);
  EXPECT_EQ(index_of(a, r65.ptr), 448u);
  for (const Block& b : {w0, w12, one, r64, r128, r63, r65})
    EXPECT_EQ(a.allocated_size(b.ptr), b.size);
  EXPECT_EQ(a.stats().bytes_in_use, 513u * 8);
  EXPECT_TRUE(a.check_invariants());
  for (const Block& b : {w12, r128, r64, w0, r65, one, r63})
    a.deallocate(b, 8);
  EXPECT_EQ(a.free_block_count(), a.block_count());
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, WrappedSearchFindsRunsThatCrossWordsInAFullRegion) {
  TestRegion r(8192);
  BitSetAllocator a(r.block(), 8);
  std::vector<Block> all = fill(a);
  ASSERT_GT(all.size(), 300u);
  // Holes of 2 + 2 blocks across the boundary of words 0 and 1, and 32 + 32 blocks
  // across words 2 and 3. The hint ends in word 3, so each search has to run to the end
  // of the region and wrap around to find its run.
  for (std::size_t i : {62, 63, 64, 65})
    a.deallocate(all[i], 8);
  for (std::size_t i = 160; i < 224; ++i)
    a.deallocate(all[i], 8);
  EXPECT_EQ(Peer::hint(a), 3u);
  Block sixty_four = a.allocate(Layout{64 * 8, 8});
  ASSERT_TRUE(sixty_four);
  EXPECT_EQ(index_of(a, sixty_four.ptr), 160u);
  EXPECT_EQ(Peer::hint(a), 3u);
  Block four = a.allocate(Layout{32, 8});
  ASSERT_TRUE(four);
  EXPECT_EQ(index_of(a, four.ptr), 62u);
  EXPECT_FALSE(a.allocate(Layout{8, 8}));
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, TheSearchSkipsHolesTooShortForTheRequest) {
  TestRegion r(4096);
  BitSetAllocator a(r.block(), 8);
  std::vector<Block> b;
  for (int i = 0; i < 40; ++i)
    b.push_back(a.allocate(Layout{8, 8}));
  for (int i : {1, 3, 4, 6, 7, 8, 10, 11, 12, 13})  // holes of 1, 2, 3 and 4 blocks
    a.deallocate(b[static_cast<std::size_t>(i)], 8);
  EXPECT_EQ(index_of(a, a.allocate(Layout{32, 8}).ptr), 10u);
  EXPECT_EQ(index_of(a, a.allocate(Layout{17, 8}).ptr), 6u) << "17 bytes are 3 blocks";
  EXPECT_EQ(index_of(a, a.allocate(Layout{40, 8}).ptr), 40u) << "no hole of 5";
  EXPECT_EQ(index_of(a, a.allocate(Layout{16, 8}).ptr), 3u) << "first fit inside the hint word";
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, HonoursAlignmentsLargerThanTheBlockSize) {
  TestRegion r(4 << 20, 1 << 20);
  BitSetAllocator a(r.block(), 16);
  for (std::size_t align = 32; align <= (std::size_t{1} << 18); align *= 2) {
    SCOPED_TRACE(align);
    ASSERT_TRUE(a.allocate(Layout{16, 16}));  // knock the next free block off alignment
    for (std::size_t size : {1, 100, 16 * 64, 16 * 64 + 1, 16 * 300}) {
      Block b = a.allocate(Layout{size, align});
      ASSERT_TRUE(b) << size;
      EXPECT_TRUE(is_aligned(b.ptr, align)) << size;
      EXPECT_EQ(b.size, (size + 15) / 16 * 16);
      EXPECT_EQ(a.allocated_size(b.ptr), b.size);
    }
  }
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, AnAlignmentNoBlockCanHonourFailsCleanly) {
  TestRegion r(1 << 20, 1 << 20);
  BitSetAllocator a(r.block(), 64);
  // The region is 1 MiB-aligned, so its only 1 GiB boundary could be its first byte,
  // which holds the bit sets.
  EXPECT_FALSE(a.allocate(Layout{1, kMaxAlign}));
  EXPECT_FALSE(a.allocate(Layout{64 * 100, kMaxAlign}));
  EXPECT_EQ(a.stats().failures, 2u);
  EXPECT_EQ(a.free_block_count(), a.block_count());
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, SizesNearTheLimitsFailCleanly) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  ASSERT_TRUE(a.allocate(Layout{10, 1}));
  const std::size_t span = a.block_area().size;
  for (std::size_t size : {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2, SIZE_MAX - 4095, span}) {
    EXPECT_FALSE(a.allocate(Layout{size, 1})) << size;
    EXPECT_FALSE(a.allocate(Layout{size, 4096})) << size;
  }
  EXPECT_EQ(a.stats().failures, 10u);
  EXPECT_EQ(a.stats().bytes_in_use, 16u) << "failures leave the state unchanged";
  EXPECT_TRUE(a.allocate(Layout{span - 16, 16})) << "the rest is one run";
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, ZeroSizeRequestsGetAnAlignedSentinelThatFreesAsANoOp) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  for (std::size_t align = 1; align < kSentinelLimit; align *= 2) {
    Block b = a.allocate(Layout{0, align});
    ASSERT_TRUE(b);
    EXPECT_EQ(b.size, 0u);
    EXPECT_TRUE(is_aligned(b.ptr, align));
    EXPECT_FALSE(a.contains(b.ptr));
    EXPECT_EQ(a.allocated_size(b.ptr), 0u);
    a.deallocate(b, align);
    EXPECT_EQ(a.shrink(b, Layout{0, align}, Move::forbidden), b);
  }
  EXPECT_EQ(a.stats().allocations, 0u);
  EXPECT_EQ(a.stats().misuses, 0u);
  EXPECT_FALSE(a.grow(a.allocate(Layout{0, 8}), Layout{24, 8}, Move::forbidden));
  Block g = a.grow(a.allocate(Layout{0, 8}), Layout{24, 8}, Move::allowed);
  ASSERT_TRUE(g);
  EXPECT_EQ(a.allocated_size(g.ptr), 32u);
}

TEST(BitSetAllocator, ZeroSizeWithAnAlignmentAboveTheSentinelLimitIsARealBlock) {
  TestRegion r(1 << 20, 1 << 17);
  BitSetAllocator a(r.block(), 16);
  for (std::size_t freed_size : {0, 16}) {
    Block b = a.allocate(Layout{0, 1 << 17});
    ASSERT_TRUE(b);
    EXPECT_TRUE(a.contains(b.ptr));
    EXPECT_TRUE(is_aligned(b.ptr, 1 << 17));
    EXPECT_EQ(a.allocated_size(b.ptr), 16u);
    a.deallocate(Block{b.ptr, freed_size}, 1 << 17);
    EXPECT_EQ(a.stats().bytes_in_use, 0u);
  }
  EXPECT_EQ(a.stats().misuses, 0u);
}

TEST(BitSetAllocator, ShrinkFreesTheTailBlocksInPlace) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{128, 8});
  Block y = a.allocate(Layout{16, 8});
  ASSERT_EQ(y.ptr, x.ptr + 128);
  std::memset(x.ptr, 0x3C, 128);
  const std::size_t free_before = a.free_block_count();
  Block s = a.shrink(x, Layout{40, 8}, Move::forbidden);
  ASSERT_EQ(s.ptr, x.ptr);
  EXPECT_EQ(s.size, 48u);
  EXPECT_EQ(a.allocated_size(x.ptr), 48u);
  EXPECT_EQ(a.free_block_count(), free_before + 5);
  EXPECT_EQ(a.stats().bytes_in_use, 64u);
  for (int i = 0; i < 40; ++i)
    ASSERT_EQ(static_cast<unsigned char>(s.ptr[i]), 0x3Cu);
  // The freed tail is really free: growing back into it stays in place.
  Block g = a.grow(s, Layout{128, 8}, Move::forbidden);
  EXPECT_EQ(g.ptr, x.ptr);
  EXPECT_EQ(g.size, 128u);
  // A shrink within the last block keeps the run.
  Block same = a.shrink(g, Layout{120, 8}, Move::forbidden);
  EXPECT_EQ(same, g);
  EXPECT_EQ(a.stats().shrinks, 2u);
  EXPECT_EQ(a.stats().grows, 1u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, GrowsInPlaceOnlyWhenTheFollowingBlocksAreFree) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{32, 8});
  Block gap = a.allocate(Layout{48, 8});
  Block y = a.allocate(Layout{16, 8});
  a.deallocate(gap, 8);  // three free blocks after x, then y
  std::memset(x.ptr, 0x77, 32);
  Block g = a.grow(x, Layout{80, 8}, Move::forbidden);
  ASSERT_EQ(g.ptr, x.ptr);
  EXPECT_EQ(g.size, 80u);
  Block none = a.grow(g, Layout{81, 8}, Move::forbidden);
  EXPECT_FALSE(none) << "y is in the way";
  EXPECT_EQ(a.allocated_size(g.ptr), 80u) << "a refused grow changes nothing";
  Block moved = a.grow(g, Layout{81, 8}, Move::allowed);
  ASSERT_TRUE(moved);
  EXPECT_GT(moved.ptr, y.ptr);
  EXPECT_EQ(moved.size, 96u);
  for (int i = 0; i < 32; ++i)
    ASSERT_EQ(static_cast<unsigned char>(moved.ptr[i]), 0x77u);
  EXPECT_EQ(a.allocated_size(x.ptr), 0u) << "the old run was freed";
  const Stats s = a.stats();
  EXPECT_EQ(s.live_blocks(), 2u);
  EXPECT_EQ(s.bytes_in_use, 112u);
  EXPECT_EQ(s.grows, 2u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, AGrowThatMustMoveNeverGivesUpTheOldRunFirst) {
  TestRegion r(4096);
  BitSetAllocator a(r.block(), 8);
  std::vector<Block> all = fill(a);
  ASSERT_GT(all.size(), 20u);
  // Free blocks 9, 10 and 11, then take 10 and 11 back as one 2-block run x. x cannot
  // grow in place (12 is live) and no 3 free blocks exist elsewhere; only blocks 9..11,
  // x's own, would do, and x must not be given up before its successor is secured.
  for (std::size_t i : {10, 11})
    a.deallocate(all[i], 8);
  Block x = a.allocate(Layout{16, 8});
  ASSERT_EQ(index_of(a, x.ptr), 10u);
  a.deallocate(all[9], 8);
  std::memset(x.ptr, 0x5A, 16);
  EXPECT_FALSE(a.grow(x, Layout{24, 8}, Move::allowed));
  EXPECT_FALSE(a.grow(x, Layout{24, 8}, Move::forbidden));
  EXPECT_EQ(a.allocated_size(x.ptr), 16u) << "x is still live";
  for (int i = 0; i < 16; ++i)
    ASSERT_EQ(static_cast<unsigned char>(x.ptr[i]), 0x5Au);
  EXPECT_EQ(a.stats().failures, 3u);  // the fill's last attempt and the two grows
  // With block 12 freed, the same grow succeeds in place.
  a.deallocate(all[12], 8);
  Block g = a.grow(x, Layout{24, 8}, Move::forbidden);
  EXPECT_EQ(g.ptr, x.ptr);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, AGrowWithoutTheOldSizeKeepsTheWholeRun) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{40, 8});  // 3 blocks
  Block y = a.allocate(Layout{16, 8});  // right behind x: x cannot grow in place
  ASSERT_EQ(y.ptr, x.ptr + 48);
  for (int i = 0; i < 48; ++i)
    x.ptr[i] = static_cast<std::byte>(i + 1);
  // Size 0 means "not known" (a free(p)-style caller): the whole run is kept.
  Block g = a.grow(Block{x.ptr, 0}, Layout{100, 8}, Move::allowed);
  ASSERT_TRUE(g);
  EXPECT_NE(g.ptr, x.ptr);
  for (int i = 0; i < 48; ++i)
    ASSERT_EQ(g.ptr[i], static_cast<std::byte>(i + 1)) << i;
  EXPECT_EQ(a.allocated_size(x.ptr), 0u);
  EXPECT_EQ(a.allocated_size(g.ptr), 112u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, ResizingToALargerAlignmentMovesTheBlock) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x;
  do {  // a block that is not 256-aligned (the others stay live)
    x = a.allocate(Layout{64, 16});
  } while (is_aligned(x.ptr, 256));
  const std::uint64_t live = a.stats().live_blocks();
  std::memset(x.ptr, 0x11, 64);
  EXPECT_FALSE(a.shrink(x, Layout{32, 256}, Move::forbidden));
  Block s = a.shrink(x, Layout{32, 256}, Move::allowed);
  ASSERT_TRUE(s);
  EXPECT_TRUE(is_aligned(s.ptr, 256));
  EXPECT_EQ(static_cast<unsigned char>(s.ptr[31]), 0x11u);
  EXPECT_EQ(a.allocated_size(x.ptr), 0u);
  EXPECT_EQ(a.allocated_size(s.ptr), 32u);
  EXPECT_EQ(a.stats().live_blocks(), live) << "a moving shrink keeps the count";
  Block y;
  std::uint64_t more = 0;
  do {
    y = a.allocate(Layout{64, 16});
    ++more;
  } while (is_aligned(y.ptr, 512));
  Block g = a.grow(y, Layout{64, 512}, Move::allowed);
  ASSERT_TRUE(g);
  EXPECT_TRUE(is_aligned(g.ptr, 512));
  EXPECT_EQ(a.allocated_size(y.ptr), 0u);
  EXPECT_EQ(a.stats().live_blocks(), live + more);
  EXPECT_EQ(a.stats().grows, 1u);
  EXPECT_EQ(a.stats().shrinks, 1u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, AllocatedSizeRecoversTheRunOnlyFromItsFirstByte) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 32);
  Block x = a.allocate(Layout{100, 8});  // 4 blocks
  Block y = a.allocate(Layout{32, 8});
  Block z = a.allocate(Layout{3 * 64 * 32, 8});  // 192 blocks, across words
  EXPECT_EQ(a.allocated_size(x.ptr), 128u);
  EXPECT_EQ(a.allocated_size(y.ptr), 32u);
  EXPECT_EQ(a.allocated_size(z.ptr), 3u * 64 * 32);
  EXPECT_EQ(a.allocated_size(x.ptr + 32), 0u) << "inside a run";
  EXPECT_EQ(a.allocated_size(x.ptr + 1), 0u) << "not a block boundary";
  EXPECT_EQ(a.allocated_size(r.data()), 0u) << "the bit sets";
  EXPECT_EQ(a.allocated_size(nullptr), 0u);
  int on_stack = 0;
  EXPECT_EQ(a.allocated_size(&on_stack), 0u);
  a.deallocate(y, 8);
  EXPECT_EQ(a.allocated_size(y.ptr), 0u) << "freed";
  // free(p) without a size: the run's length comes from the bit sets.
  a.deallocate(Block{z.ptr, 0}, 8);
  a.deallocate(Block{x.ptr, 0}, 8);
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_EQ(a.stats().misuses, 0u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, StatsCountBlocksTimesTheBlockSizeExactly) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 64);
  Block x = a.allocate(Layout{1, 1});
  Block y = a.allocate(Layout{65, 8});
  Block z = a.allocate(Layout{640, 64});
  Stats s = a.stats();
  EXPECT_EQ(s.bytes_in_use, 64u + 128 + 640);
  EXPECT_EQ(s.peak_bytes, s.bytes_in_use);
  EXPECT_EQ(s.allocations, 3u);
  EXPECT_EQ(s.capacity, a.block_count() * 64);
  EXPECT_EQ(a.free_block_count(), a.block_count() - 13);
  a.deallocate(y, 8);
  a.deallocate(Block{x.ptr, 1}, 1);  // the size asked for is fine too
  a.deallocate(z, 64);
  s = a.stats();
  EXPECT_EQ(s.bytes_in_use, 0u);
  EXPECT_EQ(s.peak_bytes, 832u);
  EXPECT_EQ(s.live_blocks(), 0u);
  EXPECT_EQ(s.failures + s.misuses, 0u);
}

TEST(BitSetAllocator, AllocateZeroedZeroesMemoryThatWasUsedBefore) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{250, 8});
  std::memset(x.ptr, 0xFF, x.size);
  a.deallocate(x, 8);
  Peer::set_hint(a, 0);
  Block z = a.allocate_zeroed(Layout{250, 8});
  ASSERT_EQ(z.ptr, x.ptr);
  ASSERT_EQ(z.size, 256u);
  for (std::size_t i = 0; i < z.size; ++i)
    ASSERT_EQ(z.ptr[i], std::byte{0}) << i;
}

TEST(BitSetAllocator, WorksBehindTheRuntimePolymorphicWrapper) {
  TestRegion r(64 * 1024);
  std::unique_ptr<DynAllocator> d =
      make_dyn_allocator<BitSetAllocator>("bitset", r.block(), std::size_t{64});
  Block b = d->allocate(Layout{200, 64});
  ASSERT_TRUE(b);
  EXPECT_TRUE(d->contains(b.ptr));
  EXPECT_STREQ(d->name(), "bitset");
  d->deallocate(b, 64);
  EXPECT_EQ(d->stats().bytes_in_use, 0u);
  EXPECT_TRUE(d->check_invariants());
}

// Both search strategies against a block-by-block scan, on random free-block patterns
// with stretches of every length, every alignment up to 128 blocks and both search
// windows (from the hint to the end; from the start to the hint).
TEST(BitSetAllocator, BothSearchesAgreeWithABruteForceScanOnRandomPatterns) {
  std::mt19937_64 rng(testing::test_seed(0x5EA5C4));
  for (std::size_t region : {std::size_t{8} * 1100, std::size_t{8} * 600 + 200}) {
    TestRegion r(region);
    BitSetAllocator a(r.block(), 8);
    const std::size_t n = a.block_count();
    std::uint64_t* words = Peer::free_words(a);
    std::vector<bool> freed(n);
    const std::uint64_t rounds = testing::scaled(3000, 200);
    for (std::uint64_t round = 0; round < rounds; ++round) {
      // Alternate free and used stretches with geometric lengths around a random mean.
      const double mean = 1.5 + static_cast<double>(rng() % 100);  // p = 1 / mean < 1
      std::geometric_distribution<std::size_t> len(1.0 / mean);
      bool is_free = rng() % 2 == 0;
      for (std::size_t i = 0; i < n;) {
        const std::size_t l = 1 + len(rng);
        for (std::size_t j = i; j < i + l && j < n; ++j)
          freed[j] = is_free;
        i += l;
        is_free = !is_free;
      }
      std::memset(words, 0, Peer::words(a) * 8);
      for (std::size_t i = 0; i < n; ++i)
        if (freed[i]) words[i / 64] |= std::uint64_t{1} << (i % 64);
      for (int q = 0; q < 20; ++q) {
        const std::size_t k = 1 + (rng() % 4 == 0 ? rng() % 200 : rng() % 64);
        const std::size_t period = std::size_t{1} << (rng() % 8);
        const std::size_t phase = rng() % period;
        const std::size_t from_word = rng() % Peer::words(a);
        const bool wrapped = rng() % 2 == 0;
        const std::size_t from = wrapped ? 0 : from_word * 64;
        const std::size_t limit = wrapped ? from_word * 64 : n;
        std::size_t want = npos;
        for (std::size_t i = from; i < limit && i + k <= n && want == npos; ++i) {
          if (i % period != phase) continue;
          bool all = true;
          for (std::size_t j = i; j < i + k && all; ++j)
            all = freed[j];
          if (all) want = i;
        }
        SCOPED_TRACE(::testing::Message() << "k " << k << " period " << period << " phase " << phase
                                          << " from " << from << " limit " << limit);
        const std::size_t nw = Peer::words(a);
        ASSERT_EQ(detail::find_long_run(words, nw, from, limit, k, period, phase), want);
        if (k <= 64 && period <= 64) {
          const std::size_t end_word = wrapped ? from_word : nw;
          const auto kk = static_cast<unsigned>(k);
          ASSERT_EQ(
              detail::find_aligned_short_run(words, nw, from / 64, end_word, kk, period, phase),
              want);
          if (period == 1) {
            ASSERT_EQ(detail::find_short_run(words, nw, from / 64, end_word, kk), want);
          }
          if (period == 1 && !wrapped && from_word > 0) {
            // Carrying the free stretch at the top of the word before the window: the
            // first run may start that many blocks earlier.
            const std::size_t carry = detail::leading_ones(words[from_word - 1]);
            std::size_t want_carried = npos;
            for (std::size_t i = from - carry; i + k <= n && want_carried == npos; ++i) {
              bool all = true;
              for (std::size_t j = i; j < i + k && all; ++j)
                all = freed[j];
              if (all) want_carried = i;
            }
            ASSERT_EQ(detail::find_short_run(words, nw, from_word, nw, kk, carry), want_carried);
          }
        }
      }
    }
    std::memset(words, 0, Peer::words(a) * 8);  // leave consistent bits for the destructor
    for (std::size_t i = 0; i < n; ++i)
      words[i / 64] |= std::uint64_t{1} << (i % 64);
  }
}

// An exact oracle of what a correct bit-set allocator must do, from the ReferenceModel
// alone (live blocks are whole runs, so the gaps between them are the free runs):
// refuse an allocation only when no gap holds an aligned run; grow in place exactly when
// the blocks after the run are free; shrink in place; move a run that lacks the alignment
// of a resize; report whole runs.
struct BitSetOracle : testing::DefaultHooks<BitSetAllocator> {
  const ReferenceModel* model = nullptr;
  std::uint64_t mismatches = 0;

  static std::size_t run_bytes(const BitSetAllocator& a, std::size_t size) {
    const std::size_t bs = a.block_size();
    return size == 0 ? bs : (size + bs - 1) / bs * bs;
  }

  static bool fits_somewhere(const BitSetAllocator& a, const ReferenceModel& m, Layout l) {
    const Block area = a.block_area();
    const auto begin = reinterpret_cast<std::uintptr_t>(area.ptr);
    const auto end = reinterpret_cast<std::uintptr_t>(area.end());
    const std::size_t need = run_bytes(a, l.size);
    if (l.size > area.size) return false;
    const std::size_t align = std::max(l.align, a.block_size());
    std::uintptr_t gap = begin;
    auto fits = [&](std::uintptr_t lo, std::uintptr_t hi) {
      const std::uintptr_t p = (lo + align - 1) / align * align;
      return p >= lo && p < hi && hi - p >= need;
    };
    for (const auto& [key, lb] : m.blocks()) {
      if (fits(gap, key)) return true;
      gap = key + lb.size;
    }
    return fits(gap, end);
  }

  bool failure_allowed(const BitSetAllocator& a, const ReferenceModel& m, Layout l) const {
    return !fits_somewhere(a, m, l);
  }

  void after_allocate(const BitSetAllocator& a, Layout l, Block b) {
    if (b.ptr != nullptr && b.size != run_bytes(a, l.size)) ++mismatches;
  }

  void after_resize(const BitSetAllocator& a, Block old, Layout l, Move move, Block r) {
    const bool aligned = reinterpret_cast<std::uintptr_t>(old.ptr) % l.align == 0;
    if (!aligned) {  // a new alignment the run lacks: it moves, or fails when it must not
      if (move == Move::forbidden ? r.ptr != nullptr
                                  : (r.ptr != nullptr) != fits_somewhere(a, *model, l)) {
        ++mismatches;
      }
      return;
    }
    if (l.size < old.size) {  // shrink: in place, to whole blocks
      if (r.ptr != old.ptr || r.size != run_bytes(a, l.size)) ++mismatches;
      return;
    }
    auto next = model->blocks().upper_bound(reinterpret_cast<std::uintptr_t>(old.ptr));
    const std::uintptr_t room_end = next == model->blocks().end()
                                        ? reinterpret_cast<std::uintptr_t>(a.block_area().end())
                                        : next->first;
    const std::size_t need = run_bytes(a, l.size);
    const bool in_place = reinterpret_cast<std::uintptr_t>(old.ptr) + need <= room_end;
    if (in_place) {
      if (r.ptr != old.ptr || r.size != std::max(need, old.size)) ++mismatches;
    } else if (move == Move::forbidden) {
      if (r.ptr != nullptr) ++mismatches;
    } else if ((r.ptr != nullptr) != fits_somewhere(a, *model, l)) {
      ++mismatches;
    }
  }
};

void run_randomized(std::size_t region_size, std::size_t block_size, DriverOptions opt) {
  TestRegion r(region_size);
  BitSetAllocator a(r.block(), block_size);
  RandomDriver<BitSetAllocator, BitSetOracle> driver(a, opt);
  driver.hooks().model = &driver.model();
  ASSERT_TRUE(driver.run());
  EXPECT_EQ(driver.hooks().mismatches, 0u);
  const testing::DriverReport& rep = driver.report();
  EXPECT_GT(rep.in_place, rep.grows / 10) << "grows and shrinks in place happen";
  EXPECT_GT(rep.failed_allocations, 0u) << "the region must fill up";
  ASSERT_TRUE(driver.free_all());
  // Everything freed: the whole capacity is one free run again.
  EXPECT_EQ(a.free_block_count(), a.block_count());
  Block whole = a.allocate(Layout{a.block_count() * block_size, block_size});
  EXPECT_TRUE(whole);
  a.deallocate(whole, block_size);
  EXPECT_EQ(fill(a).size(), a.block_count());
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocator, RandomizedAgainstTheReferenceModelAndAnExactOracle) {
  DriverOptions opt;
  opt.seed = testing::test_seed(0xB175E7);
  run_randomized(384 * 1024, 16, opt);  // 1,000,000 operations in release builds
}

TEST(BitSetAllocator, RandomizedWithLongRunsLargeAlignmentsAndOtherBlockSizes) {
  struct Config {
    std::size_t region, block, max_size, max_align;
  };
  for (const Config& c : {Config{96 * 1024, 8, 1024, 256}, Config{2 << 20, 64, 64 * 1024, 65536},
                          Config{1 << 20, 256, 16 * 1024, 4096}}) {
    SCOPED_TRACE(::testing::Message() << "block " << c.block << " region " << c.region);
    DriverOptions opt;
    opt.ops = 200'000;
    opt.seed = testing::test_seed(0xB175E7 + c.block);
    opt.max_size = c.max_size;
    opt.max_align = c.max_align;
    opt.target_live = 128;
    run_randomized(c.region, c.block, opt);
  }
}

TEST(BitSetAllocator, CheckInvariantsReportsCorruptedBitSets) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{16 * 3, 8});  // blocks 0..2
  ASSERT_TRUE(a.allocate(Layout{16, 8}));   // block 3
  ASSERT_TRUE(a.check_invariants());
  std::uint64_t* f = Peer::free_words(a);
  std::uint64_t* s = Peer::start_words(a);
  const std::size_t last = Peer::words(a) - 1;
  auto expect_broken = [&](const char* what) {
    CheckResult c = a.check_invariants();
    EXPECT_FALSE(c) << what;
    EXPECT_NE(c.error().find(what), std::string::npos) << c.error();
  };

  s[0] &= ~std::uint64_t{1};  // run 0..2 loses its start
  expect_broken("belongs to no run");
  s[0] |= 1;
  f[0] |= 4;  // block 2, the last of a live run, marked free
  expect_broken("blocks in use");
  f[0] &= ~std::uint64_t{4};
  s[0] |= 1 << 5;  // a free block marked as a run start
  expect_broken("free but marked as the start of a run");
  s[0] &= ~(std::uint64_t{1} << 5);
  f[0] &= ~(std::uint64_t{1} << 4);  // a free block marked used: a continuation of run 3
  expect_broken("blocks in use");
  f[0] |= 1 << 4;
  s[last] &= ~(std::uint64_t{1} << 63);  // a sentinel lost
  expect_broken("sentinel");
  s[last] |= std::uint64_t{1} << 63;
  f[last] |= std::uint64_t{1} << 63;  // past the last block, marked free
  expect_broken("past the last block");
  f[last] &= ~(std::uint64_t{1} << 63);
  Peer::set_hint(a, last + 1);
  expect_broken("hint");
  Peer::set_hint(a, 0);
  Peer::add_blocks_in_use(a, 1);
  expect_broken("blocks in use but the counter says");
  Peer::add_blocks_in_use(a, ~std::uint64_t{0});  // - 1
  ASSERT_TRUE(a.check_invariants());
  a.deallocate(x, 8);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocatorMisuse, ABadBlockSizeIsReportedAndLeavesAnEmptyAllocator) {
  TestRegion r(4096);
  testing::expect_misuse([&] { BitSetAllocator a(r.block(), 24); },
                         "bad argument in bitset.construct");
  const MisusePolicy saved = misuse_policy();
  set_misuse_policy(MisusePolicy::count);
  BitSetAllocator a(r.block(), 12);
  set_misuse_policy(saved);
  EXPECT_EQ(a.config_error(), BitSetAllocator::ConfigError::block_size_not_pow2);
  EXPECT_EQ(a.stats().misuses, 1u);
  EXPECT_EQ(a.block_count(), 0u);
  EXPECT_FALSE(a.allocate(Layout{8, 8}));
  EXPECT_FALSE(a.allocate(Layout{100, 8}));
  EXPECT_FALSE(a.contains(r.data()));
  EXPECT_EQ(a.allocated_size(r.data()), 0u);
  EXPECT_EQ(a.stats().failures, 2u);
  EXPECT_EQ(a.stats().capacity, 0u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocatorMisuse, DoubleFreeIsReportedAndChangesNothing) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{16, 8});
  Block y = a.allocate(Layout{64, 8});
  a.deallocate(x, 8);
  a.deallocate(y, 8);
  testing::expect_misuse([&] { a.deallocate(x, 8); }, "double free in bitset.deallocate");
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{y.ptr, 0}, 8);
      },
      "double free in bitset.deallocate");
  EXPECT_EQ(a.stats().misuses, 2u);
  EXPECT_EQ(a.stats().deallocations, 2u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocatorMisuse, APointerIntoARunOrOffABlockBoundaryIsReported) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{64, 8});
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{x.ptr + 16, 16}, 8);
      },
      "foreign pointer in bitset.deallocate");
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{x.ptr + 4, 16}, 8);
      },
      "foreign pointer in bitset.deallocate");
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{r.data(), 16}, 8);
      },
      "foreign pointer in bitset.deallocate");
  EXPECT_EQ(a.allocated_size(x.ptr), 64u) << "the run is intact";
  EXPECT_EQ(a.stats().misuses, 3u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocatorMisuse, AForeignPointerIsReported) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  alignas(16) std::byte on_stack[16];
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{on_stack, 16}, 16);
      },
      "foreign pointer in bitset.deallocate");
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.grow(Block{on_stack, 16}, Layout{32, 16}, Move::allowed));
      },
      "foreign pointer in bitset.grow");
  EXPECT_EQ(a.stats().deallocations, 0u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocatorMisuse, AFreeWithASizeThatIsNotTheRunsIsReported) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{64, 8});  // 4 blocks
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{x.ptr, 16}, 8);
      },
      "wrong size in bitset.deallocate");
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{x.ptr, 65}, 8);
      },
      "wrong size in bitset.deallocate");
  EXPECT_EQ(a.allocated_size(x.ptr), 64u) << "nothing was freed";
  a.deallocate(Block{x.ptr, 49}, 8);  // 49..64 bytes all round to the 4 blocks
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocatorMisuse, ResizingAFreedBlockIsReported) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{32, 8});
  a.deallocate(x, 8);
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.grow(x, Layout{48, 8}, Move::allowed));
      },
      "foreign pointer in bitset.grow");
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.shrink(x, Layout{16, 8}, Move::allowed));
      },
      "foreign pointer in bitset.shrink");
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(BitSetAllocatorMisuse, ResizingTheWrongWayOrWithABadAlignmentIsReported) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{64, 8});
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.grow(x, Layout{8, 8}, Move::allowed));
      },
      "bad argument in bitset.grow");
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.shrink(x, Layout{80, 8}, Move::allowed));
      },
      "bad argument in bitset.shrink");
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.allocate(Layout{100, 24}));
      },
      "bad argument in bitset.allocate");
  EXPECT_EQ(a.allocated_size(x.ptr), 64u);
  EXPECT_TRUE(a.check_invariants());
}

#if defined(CTXALLOC_ASAN_ACTIVE)
// Only in AddressSanitizer builds: freed blocks are poisoned, so a use after free inside
// the region is caught like one on the heap.
TEST(BitSetAllocator, AddressSanitizerCatchesAUseAfterFreeInsideTheRegion) {
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block x = a.allocate(Layout{32, 8});
  x.ptr[31] = std::byte{1};
  a.deallocate(x, 8);
  EXPECT_DEATH({ static_cast<volatile std::byte*>(x.ptr)[0] = std::byte{2}; }, "use-after-poison");
  Block tail = a.allocate(Layout{64, 8});
  Block s = a.shrink(tail, Layout{16, 8}, Move::forbidden);
  EXPECT_DEATH({ static_cast<volatile std::byte*>(s.ptr)[16] = std::byte{2}; }, "use-after-poison");
}
#endif

}  // namespace
}  // namespace ctxalloc

namespace ctxalloc {
namespace {

// The bytes of a region (8 B blocks) that hold exactly n blocks after the bit sets.
std::size_t region_for_blocks(std::size_t n) {
  for (std::size_t bytes = n * 8; bytes < n * 8 + 4096; bytes += 8) {
    TestRegion r(bytes);
    BitSetAllocator a(r.block(), 8);
    if (a.block_count() == n) return bytes;
    if (a.block_count() > n) break;
  }
  return 0;
}

// Issue 19, item 3: the search hint followed frees, so a fill of an emptied allocator
// started where the last free was, wrapped around and fragmented an empty region. An
// allocator with nothing live must serve exactly what a fresh one serves.
TEST(BitSetAllocator, AnEmptiedAllocatorFitsAsManyRunsAsAFreshOne) {
  const std::size_t bytes = region_for_blocks(198);
  ASSERT_NE(bytes, 0u);
  TestRegion r(bytes);
  BitSetAllocator a(r.block(), 8);
  ASSERT_EQ(a.block_count(), 198u);
  std::mt19937_64 rng(19);
  for (int round = 0; round < 4; ++round) {
    std::vector<Block> runs;
    for (Block b = a.allocate(Layout{24, 8}); b; b = a.allocate(Layout{24, 8}))
      runs.push_back(b);
    ASSERT_EQ(runs.size(), 66u) << "round " << round << ": 198 blocks hold 66 runs of 3";
    std::shuffle(runs.begin(), runs.end(), rng);  // frees in any order
    for (const Block& b : runs)
      a.deallocate(b, 8);
    EXPECT_EQ(a.free_block_count(), 198u);
    EXPECT_TRUE(a.check_invariants());
  }
}

TEST(BitSetAllocator, AnEmptiedAllocatorServesWordSizedRunsAgain) {
  const std::size_t bytes = region_for_blocks(384);
  ASSERT_NE(bytes, 0u);
  TestRegion r(bytes);
  BitSetAllocator a(r.block(), 8);
  ASSERT_EQ(a.block_count(), 384u);
  // Each round frees in another order: allocation order, reversed, interleaved.
  constexpr int kOrders[][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {0, 1, 2, 3}};
  for (int round = 0; round < 4; ++round) {
    std::vector<Block> runs;
    for (std::size_t n : {64, 128, 64, 128}) {
      const Block b = a.allocate(Layout{n * 8, 8});
      ASSERT_TRUE(b) << "round " << round << ": a run of " << n << " blocks with "
                     << a.free_block_count() << " free";
      runs.push_back(b);
    }
    EXPECT_EQ(a.free_block_count(), 0u);
    for (int i : kOrders[round])
      a.deallocate(runs[static_cast<std::size_t>(i)], 8);
    EXPECT_TRUE(a.check_invariants());
  }
}

}  // namespace
}  // namespace ctxalloc
