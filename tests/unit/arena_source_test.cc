#include "ctxalloc/sources/arena_source.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ctxalloc/sources/mmap_source.h"
#include "ctxalloc/sources/region_source.h"
#include "support/kernel_probe.h"
#include "support/misuse_test_helpers.h"
#include "support/test_region.h"
#include "support/test_scale.h"

namespace ctxalloc {

template <class P>
struct TestPeer<ArenaSource<P>> {
  static std::size_t& free_count(ArenaSource<P>& a) { return a.free_count_; }
};

namespace {

constexpr std::size_t kKiB = 1024;
using MapArena = ArenaSource<MemoryMapSource&>;
using testing::TestRegion;

// A parent with obtain and release only (no obtain_aligned), over a RegionSource.
struct PlainParent {
  RegionSource* region;
  Block obtain(std::size_t size) noexcept { return region->obtain(size); }
  void release(Block b) noexcept { region->release(b); }
};
static_assert(MemorySource<PlainParent> && !AlignedMemorySource<PlainParent>);

TEST(ArenaSource, PowerOfTwoBlocksAreAlignedToTheirSizeAndFoundByMasking) {
  MemoryMapSource parent;
  for (std::size_t size : {std::size_t{16}, std::size_t{64}, 4 * kKiB, 64 * kKiB}) {
    MapArena a(parent, ArenaOptions{size});
    ASSERT_TRUE(a.config_error().ok());
    EXPECT_EQ(a.block_size(), size);
    EXPECT_EQ(a.block_align(), size);
    std::vector<Block> blocks;
    for (int i = 0; i < 40; ++i) {
      const Block b = a.obtain();
      ASSERT_TRUE(b) << a.last_error().message();
      EXPECT_EQ(b.size, size);
      EXPECT_TRUE(is_aligned(b.ptr, size)) << size;
      EXPECT_EQ(a.block_start(b.ptr + size - 1), b.ptr);
      EXPECT_EQ(a.block_start(b.ptr + size / 2), b.ptr);
      blocks.push_back(b);
    }
    for (const Block& b : blocks)
      a.release(b);
    EXPECT_TRUE(a.check_invariants()) << a.check_invariants().error();
  }
  EXPECT_EQ(parent.stats().bytes_held, 0u) << "every slab went back to the parent";
}

TEST(ArenaSource, OtherSizesAreRoundedToSixteenAndNeverStraddleASlabChunk) {
  MemoryMapSource parent;
  MapArena a(parent, ArenaOptions{1000});
  EXPECT_EQ(a.block_size(), 1008u);
  EXPECT_EQ(a.block_align(), 16u);
  std::set<std::byte*> seen;
  for (int i = 0; i < 500; ++i) {
    const Block b = a.obtain();
    ASSERT_TRUE(b);
    EXPECT_TRUE(is_aligned(b.ptr, 16));
    const auto off = reinterpret_cast<std::uintptr_t>(b.ptr) & (a.slab_bytes() - 1);
    EXPECT_LE(off + b.size, a.slab_bytes()) << "a block crosses a chunk boundary";
    EXPECT_EQ(a.block_start(b.ptr + 1007), b.ptr);
    EXPECT_TRUE(seen.insert(b.ptr).second);
  }
  EXPECT_GT(a.stats().upstream_bytes, 500u * 1008u);
  MapArena tiny(parent, ArenaOptions{1});
  EXPECT_EQ(tiny.block_size(), 16u) << "room for the free-list link";
  for (std::byte* p : seen)
    a.release(Block{p, 1008});
}

TEST(ArenaSource, FreeBlocksComeBackLastInFirstOut) {
  MemoryMapSource parent;
  MapArena a(parent, ArenaOptions{256});
  const Block x = a.obtain(), y = a.obtain(), z = a.obtain();
  a.release(x);
  a.release(z);
  EXPECT_EQ(a.free_blocks(), 2u);
  EXPECT_EQ(a.obtain().ptr, z.ptr);
  EXPECT_EQ(a.obtain().ptr, x.ptr);
  const Block fresh = a.obtain();
  EXPECT_NE(fresh.ptr, x.ptr);
  EXPECT_NE(fresh.ptr, y.ptr);
  EXPECT_NE(fresh.ptr, z.ptr);
  for (const Block& b : {x, y, z, fresh})
    a.release(b);
}

struct InitLog {
  int calls = 0;
};

void init_block(void* block, std::size_t size, void* context) noexcept {
  ++static_cast<InitLog*>(context)->calls;
  std::memset(block, 0x77, size);
}

TEST(ArenaSource, TheInitializerRunsOnEveryObtain) {
  MemoryMapSource parent;
  InitLog log;
  MapArena a(parent, ArenaOptions{128, 0, init_block, &log});
  Block b = a.obtain();
  ASSERT_TRUE(b);
  EXPECT_EQ(log.calls, 1);
  for (std::size_t i = 0; i < b.size; ++i)
    ASSERT_EQ(static_cast<unsigned char>(b.ptr[i]), 0x77u) << i;
  std::memset(b.ptr, 0, b.size);
  a.release(b);
  b = a.obtain();  // the same block, initialized again: link words included
  EXPECT_EQ(log.calls, 2);
  for (std::size_t i = 0; i < b.size; ++i)
    ASSERT_EQ(static_cast<unsigned char>(b.ptr[i]), 0x77u) << i;
  MapArena plain(parent, ArenaOptions{128});
  const Block p = plain.obtain();
  plain.release(p);
  const Block q = plain.obtain();
  EXPECT_EQ(q.ptr, p.ptr);
  EXPECT_EQ(std::memcmp(q.ptr, std::vector<std::byte>(16).data(), 16), 0)
      << "no stale link or check word in a handed-out block";
  plain.release(q);
  a.release(b);
}

TEST(ArenaSource, SlabsAreTakenLazilyAndGivenBackOnDestruction) {
  MemoryMapSource parent;
  {
    MapArena a(parent, ArenaOptions{4 * kKiB, 256 * kKiB});
    const Block b = a.obtain();
    ASSERT_TRUE(b);
    EXPECT_EQ(parent.stats().live_blocks(), 1u);
    EXPECT_EQ(parent.stats().bytes_held, 256 * kKiB);
    const Block slab = parent.block_of(b.ptr);
    EXPECT_TRUE(is_aligned(slab.ptr, 256 * kKiB)) << "slabs are aligned to their size";
    EXPECT_EQ(testing::resident_pages(slab.ptr, slab.size), 1u)
        << "only the carved block's page was touched";
    std::vector<Block> more;
    for (int i = 0; i < 64; ++i)
      more.push_back(a.obtain());
    EXPECT_EQ(parent.stats().live_blocks(), 2u) << "65 blocks of 4 KiB need a second slab";
    for (const Block& m : more)
      a.release(m);
    a.release(b);
  }
  EXPECT_EQ(parent.stats().live_blocks(), 0u);
  EXPECT_EQ(parent.stats().releases, 2u);
  EXPECT_TRUE(parent.check_invariants());
}

TEST(ArenaSource, AParentWithoutAlignedObtainIsOverAskedAndStillAligned) {
  TestRegion mem(4 << 20);
  RegionSource region(mem.block());
  {
    ArenaSource<PlainParent> a(PlainParent{&region}, ArenaOptions{16 * kKiB});
    EXPECT_EQ(a.slab_bytes(), 64 * kKiB);
    for (int i = 0; i < 20; ++i) {
      const Block b = a.obtain();
      ASSERT_TRUE(b) << a.last_error().message();
      EXPECT_TRUE(is_aligned(b.ptr, 16 * kKiB));
      a.release(b);
    }
    EXPECT_EQ(region.stats().bytes_held, 128 * kKiB) << "twice the slab, to hold an aligned one";
  }
  EXPECT_EQ(region.stats().bytes_held, 0u);
}

TEST(ArenaSource, ParentExhaustionFailsCleanlyWithTheParentsReason) {
  TestRegion mem(256 * kKiB);
  RegionSource region(mem.block());
  ArenaSource<RegionSource&> a(region, ArenaOptions{32 * kKiB, 64 * kKiB});
  std::vector<Block> got;
  while (true) {
    const Block b = a.obtain();
    if (!b) break;
    got.push_back(b);
    ASSERT_LT(got.size(), 100u);
  }
  EXPECT_GE(got.size(), 2u);
  EXPECT_EQ(a.last_error().code(), SourceErrc::exhausted);
  EXPECT_NE(std::string(a.last_error().message()).find("region_source"), std::string::npos)
      << a.last_error().message();
  EXPECT_EQ(a.stats().failures, 1u);
  a.release(got.back());
  got.back() = a.obtain();
  EXPECT_TRUE(got.back()) << "a released block is reused without the parent";
  for (const Block& b : got)
    a.release(b);
  EXPECT_TRUE(a.check_invariants());
}

TEST(ArenaSource, BadOptionsAndSizesFailWithReasons) {
  MemoryMapSource parent;
  MapArena zero(parent, ArenaOptions{0});
  EXPECT_EQ(zero.config_error().code(), SourceErrc::bad_option);
  EXPECT_FALSE(zero.obtain());
  MapArena huge(parent, ArenaOptions{std::size_t{1} << 50});
  EXPECT_EQ(huge.config_error().code(), SourceErrc::bad_option);
  MapArena a(parent, ArenaOptions{100});
  EXPECT_FALSE(a.obtain(113));
  EXPECT_EQ(a.last_error().code(), SourceErrc::too_large);
  EXPECT_FALSE(a.obtain(0));
  EXPECT_EQ(a.last_error().code(), SourceErrc::bad_size);
  const Block b = a.obtain(112);
  ASSERT_TRUE(b);
  EXPECT_EQ(a.stats().failures, 2u);
  a.release(b);
}

// An oracle of the arena's exact behaviour: the free list is a stack, and a block not
// from it is one never handed out before.
TEST(ArenaSource, RandomizedAgainstALifoOracle) {
  MemoryMapSource parent;
  MapArena a(parent, ArenaOptions{48, 4 * kKiB});
  std::vector<std::byte*> stack;  // the oracle's free list
  std::set<std::byte*> ever;      // every block ever handed out
  std::vector<Block> live;
  std::mt19937_64 rng(testing::test_seed(0xA2E4A));
  const std::uint64_t ops = testing::scaled(1'000'000);
  std::uint32_t tag = 0;
  for (std::uint64_t i = 0; i < ops; ++i) {
    if (live.empty() || (live.size() < 3000 && rng() % 100 < 55)) {
      const Block b = a.obtain();
      ASSERT_TRUE(b) << a.last_error().message();
      if (!stack.empty()) {
        ASSERT_EQ(b.ptr, stack.back()) << "op " << i << ": not the last block released";
        stack.pop_back();
      } else {
        ASSERT_TRUE(ever.insert(b.ptr).second) << "op " << i << ": a fresh block seen before";
      }
      ASSERT_TRUE(is_aligned(b.ptr, 16));
      ASSERT_TRUE(a.contains(b.ptr));
      ++tag;
      std::memcpy(b.ptr, &tag, 4);
      std::memcpy(b.ptr + b.size - 4, &tag, 4);
      live.push_back(b);
    } else {
      const std::size_t k = rng() % live.size();
      const Block b = live[k];
      ASSERT_EQ(std::memcmp(b.ptr, b.ptr + b.size - 4, 4), 0) << "a block's bytes changed";
      a.release(rng() % 2 == 0 ? b : Block{b.ptr, 40});  // the size given or the size asked
      stack.push_back(b.ptr);
      live[k] = live.back();
      live.pop_back();
    }
    if (i % 50'000 == 0) {
      ASSERT_TRUE(a.check_invariants()) << a.check_invariants().error();
    }
  }
  EXPECT_EQ(a.free_blocks(), stack.size());
  EXPECT_EQ(a.stats().misuses, 0u);
  EXPECT_GT(ever.size(), 1000u);
  for (const Block& b : live)
    a.release(b);
  EXPECT_EQ(a.stats().bytes_held, 0u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(ArenaSource, CheckInvariantsAndObtainNoticeAWriteIntoAFreeBlock) {
  MemoryMapSource parent;
  MapArena a(parent, ArenaOptions{64});
  const Block x = a.obtain(), y = a.obtain();
  a.release(x);
  a.release(y);
  ASSERT_TRUE(a.check_invariants());
  detail::unpoison(y.ptr, y.size);  // the test's own use after release, made visible
  std::memset(y.ptr, 0x41, 16);
  const CheckResult c = a.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("written to after its release"), std::string::npos) << c.error();
  Block fresh;
  testing::expect_misuse(
      [&] {
        fresh = a.obtain();  // the broken block is not handed out
        if (fresh.ptr == y.ptr || fresh.ptr == x.ptr) std::abort();
      },
      "write past the end of a block in arena.obtain");
  EXPECT_TRUE(a.check_invariants()) << "the untrustworthy free list was dropped";
  EXPECT_EQ(a.free_blocks(), 0u);
  a.release(fresh);
}

TEST(ArenaSource, CheckInvariantsReportsACorruptedCount) {
  MemoryMapSource parent;
  MapArena a(parent, ArenaOptions{64});
  a.release(a.obtain());
  ASSERT_TRUE(a.check_invariants());
  TestPeer<MapArena>::free_count(a) = 5;
  const CheckResult c = a.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("count"), std::string::npos) << c.error();
  TestPeer<MapArena>::free_count(a) = 1;
}

TEST(ArenaSourceMisuse, DoubleReleaseIsReportedAndIgnored) {
  MemoryMapSource parent;
  MapArena a(parent, ArenaOptions{64});
  const Block b = a.obtain();
  a.release(b);
  testing::expect_misuse([&] { a.release(b); }, "double free in arena.release");
  EXPECT_EQ(a.free_blocks(), 1u);
  EXPECT_EQ(a.stats().releases, 1u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(ArenaSourceMisuse, ForeignInteriorUncarvedAndOversizedBlocksAreReported) {
  MemoryMapSource parent;
  MapArena a(parent, ArenaOptions{64});
  const Block b = a.obtain();
  int on_stack = 0;
  testing::expect_misuse(
      [&] {
        a.release(Block{reinterpret_cast<std::byte*>(&on_stack), 4});
      },
      "foreign pointer in arena.release");
  const Block other = parent.obtain(4096);  // the parent's, not the arena's
  testing::expect_misuse(
      [&] {
        a.release(Block{other.ptr, 64});
      },
      "foreign pointer in arena.release");
  testing::expect_misuse(
      [&] {
        a.release(Block{b.ptr + 16, 48});
      },
      "foreign pointer in arena.release");
  testing::expect_misuse(
      [&] {
        a.release(Block{b.ptr + 64 * 10, 64});
      },
      "foreign pointer in arena.release");  // not carved yet
  testing::expect_misuse([&] { a.release(Block{b.ptr, 65}); }, "wrong size in arena.release");
  EXPECT_EQ(a.free_blocks(), 0u);
  EXPECT_EQ(a.stats().live_blocks(), 1u);
  a.release(b);
  parent.release(other);
  EXPECT_TRUE(a.check_invariants());
}

TEST(ArenaSourceMisuse, DestroyingAnArenaWithLiveBlocksIsReportedAndKeepsThem) {
  MemoryMapSource parent;
  testing::expect_misuse(
      [&] {
        MapArena a(parent, ArenaOptions{64});
        std::memset(a.obtain().ptr, 1, 64);
      },
      "context released with live blocks in arena.~ArenaSource");
  EXPECT_EQ(parent.stats().live_blocks(), 1u) << "the slab was not pulled from under the block";
}

#if defined(CTXALLOC_ASAN_ACTIVE)
TEST(ArenaSourceAsan, AUseAfterReleaseIsCaughtByAddressSanitizer) {
  MemoryMapSource parent;
  MapArena a(parent, ArenaOptions{64});
  const Block b = a.obtain();
  a.release(b);
  EXPECT_DEATH(static_cast<volatile std::byte*>(b.ptr)[32] = std::byte{1}, "use-after-poison");
}
#endif

}  // namespace
}  // namespace ctxalloc
