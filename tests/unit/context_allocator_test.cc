#include "ctxalloc/allocators/context_allocator.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ctxalloc/core/sanitizers.h"
#include "support/misuse_test_helpers.h"
#include "support/random_driver.h"
#include "support/test_region.h"

namespace ctxalloc {

template <>
struct TestPeer<ContextAllocator> {
  static ContextKind& tag(ContextAllocator& c) { return c.tag_; }
  static const std::byte*& recent(ContextAllocator& c) { return c.recent_; }
  static Counter& released_by_reset(ContextAllocator& c) { return c.released_by_reset_; }
  static const BitSetAllocator& bitset(const ContextAllocator& c) { return c.bitset_; }
  static const ContextTree& tree(const ContextAllocator& c) { return *c.tree_; }
};

template <>
struct TestPeer<ContextTree> {
  /// The usable area of the tree's one region: where its blocks and free spans are.
  static Block usable(const ContextTree& t, const void* in_region) {
    const detail::TreeRegion* r = t.core_.region_of(in_region);
    return Block{r->begin, static_cast<std::size_t>(r->end - r->begin)};
  }
  static std::uint8_t* map(const ContextTree& t, const void* in_region) {
    return t.core_.region_of(in_region)->map;
  }
};

namespace {

using Peer = TestPeer<ContextAllocator>;
using testing::DriverOptions;
using testing::RandomDriver;
using testing::ReferenceModel;
using testing::TestRegion;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;

ContextOptions bitset_blocks(std::size_t block) {
  ContextOptions o;
  o.bitset_block_size = block;
  return o;
}

// ---------------------------------------------------------------- the three kinds

TEST(ContextAllocator, TheLifetimePicksTheAllocator) {
  EXPECT_EQ(kind_for(Lifetime::short_lived), ContextKind::bump);
  EXPECT_EQ(kind_for(Lifetime::medium), ContextKind::bitset);
  EXPECT_EQ(kind_for(Lifetime::long_lived), ContextKind::tree);
  TestRegion r(64 * kKiB);
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    ContextAllocator c(l, r.block());
    EXPECT_EQ(c.kind(), kind_for(l)) << to_string(l);
    EXPECT_EQ(c.lifetime(), l);
    EXPECT_EQ(c.config_error(), ContextAllocator::ConfigError::none);
    EXPECT_EQ(c.region(), r.block());
    EXPECT_TRUE(c.check_invariants()) << to_string(l);
  }
  EXPECT_STREQ(to_string(ContextKind::bitset), "bitset");
  EXPECT_STREQ(to_string(Lifetime::long_lived), "long_lived");
}

// Every kind, through the one interface: blocks are aligned, in the region, keep their
// bytes, and are given back.
TEST(ContextAllocator, EveryKindServesAlignedBlocksFromItsRegionOnly) {
  TestRegion r(256 * kKiB);
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    SCOPED_TRACE(to_string(l));
    ContextAllocator c(l, r.block());
    std::vector<Block> blocks;
    for (std::size_t i = 0; i < 64; ++i) {
      const Layout layout{24 + i * 8, std::size_t{1} << (i % 8)};
      Block b = c.allocate(layout);
      ASSERT_TRUE(b);
      EXPECT_GE(b.size, layout.size);
      EXPECT_TRUE(is_aligned(b.ptr, layout.align));
      EXPECT_TRUE(c.contains(b.ptr));
      EXPECT_TRUE(c.contains(b.ptr + b.size - 1));
      std::memset(b.ptr, static_cast<int>(i), b.size);
      blocks.push_back(b);
    }
    for (std::size_t i = 0; i < blocks.size(); ++i)
      ASSERT_EQ(static_cast<unsigned char>(blocks[i].ptr[0]), i) << "a block was overwritten";
    int outside = 0;
    EXPECT_FALSE(c.contains(&outside));
    EXPECT_FALSE(c.contains(r.data() + r.size()));
    EXPECT_TRUE(c.contains(r.data()));
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
      c.deallocate(*it, 1);
    const Stats s = c.stats();
    EXPECT_EQ(s.allocations, 64u);
    EXPECT_EQ(s.live_blocks(), 0u);
    // Every kind takes everything back; the bump allocator too, alignment padding
    // between the blocks included (the free of the last live block rewinds it).
    EXPECT_EQ(s.bytes_in_use, 0u);
    EXPECT_GT(s.peak_bytes, 0u);
    EXPECT_TRUE(c.check_invariants());
  }
}

TEST(ContextAllocator, BumpFreesOnlyTheMostRecentBlockInPlaceAndKnowsOnlyItsSize) {
  TestRegion r(64 * kKiB);
  ContextAllocator c(Lifetime::short_lived, r.block());
  Block x = c.allocate(Layout{100, 8});
  Block y = c.allocate(Layout{50, 8});
  ASSERT_TRUE(x && y);
  EXPECT_EQ(c.allocated_size(y.ptr), 50u);
  EXPECT_EQ(c.allocated_size(x.ptr), 0u) << "older blocks are not recorded";
  // An unsized free of the most recent block recovers its size and frees it in place.
  c.deallocate(Block{y.ptr, 0}, 8);
  EXPECT_EQ(c.stats().bytes_in_use, 104u);
  EXPECT_EQ(c.allocated_size(y.ptr), 0u) << "a freed block has no size";
  Block z = c.allocate(Layout{50, 8});
  EXPECT_EQ(z.ptr, y.ptr);
  // Grown in place, the most recent block's size follows; shrunk, too.
  Block g = c.grow(z, Layout{500, 8}, Move::forbidden);
  ASSERT_EQ(g.ptr, z.ptr);
  EXPECT_EQ(c.allocated_size(g.ptr), 500u);
  Block s = c.shrink(g, Layout{20, 8}, Move::forbidden);
  EXPECT_EQ(c.allocated_size(s.ptr), 20u);
  // An older block moved by grow becomes the most recent.
  Block m = c.grow(x, Layout{200, 8}, Move::allowed);
  ASSERT_TRUE(m);
  EXPECT_NE(m.ptr, x.ptr);
  EXPECT_EQ(c.allocated_size(m.ptr), 200u);
  EXPECT_EQ(c.allocated_size(s.ptr), 0u);
  // An unsized free of an older block is counted; its bytes wait for reset().
  const std::uint64_t used = c.stats().bytes_in_use;
  c.deallocate(Block{s.ptr, 0}, 8);
  EXPECT_EQ(c.stats().bytes_in_use, used);
  EXPECT_EQ(c.stats().live_blocks(), 1u);
  EXPECT_EQ(c.allocated_size(nullptr), 0u);
  EXPECT_TRUE(c.check_invariants());
}

TEST(ContextAllocator, BitSetUsesTheConfiguredBlockSizeAndRecoversSizes) {
  TestRegion r(64 * kKiB);
  ContextAllocator c(Lifetime::medium, r.block(), bitset_blocks(256));
  EXPECT_EQ(c.bitset_block_size(), 256u);
  Block a = c.allocate(Layout{1, 1});
  Block b = c.allocate(Layout{600, 8});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a.size, 256u);
  EXPECT_EQ(b.size, 768u);
  EXPECT_TRUE(is_aligned(a.ptr, 256));
  EXPECT_EQ(c.allocated_size(b.ptr), 768u);
  EXPECT_EQ(c.allocated_size(b.ptr + 256), 0u) << "an interior pointer";
  c.deallocate(Block{a.ptr, 0}, 1);  // unsized, out of order
  EXPECT_EQ(c.allocated_size(a.ptr), 0u);
  EXPECT_EQ(c.stats().bytes_in_use, 768u);
  Block again = c.allocate(Layout{200, 8});
  EXPECT_EQ(again.ptr, a.ptr) << "the freed block is reused";
  EXPECT_TRUE(c.check_invariants());
}

TEST(ContextAllocator, TreeClassesFollowTheRegionSize) {
  struct Case {
    std::size_t region, max_class;
    unsigned classes;
  };
  for (const Case& k : {Case{16 * kKiB, 4 * kKiB, 8}, Case{64 * kKiB, 16 * kKiB, 10},
                        Case{100 * kKiB, 16 * kKiB, 10}, Case{1 * kMiB, 256 * kKiB, 14},
                        Case{16 * kMiB, 4 * kMiB, 18}, Case{64, 32, 1}}) {
    const TreeConfig cfg = ContextAllocator::tree_config_for(k.region);
    EXPECT_EQ(cfg.min_class(), 32u) << k.region;
    EXPECT_EQ(cfg.max_class(), k.max_class) << k.region;
    EXPECT_EQ(cfg.classes(), k.classes) << k.region;
  }
  const TreeConfig huge = ContextAllocator::tree_config_for(SIZE_MAX);
  EXPECT_EQ(huge.classes(), TreeConfig::kMaxClasses) << "capped at the most classes a tree has";
}

// From 16 KiB to 16 MiB: the default classes validate, the largest class fits in the
// empty context, a request above it is refused (counted, not sent anywhere), and the
// metadata stays near 3%.
TEST(ContextAllocator, TreeInOneSmallRegionServesItsLargestClassAndRefusesMore) {
  for (std::size_t size = 16 * kKiB; size <= 16 * kMiB; size *= 4) {
    SCOPED_TRACE(size);
    TestRegion r(size);
    ASSERT_EQ(ContextAllocator::validate(Lifetime::long_lived, r.block()),
              ContextAllocator::ConfigError::none);
    ContextAllocator c(Lifetime::long_lived, r.block());
    const std::size_t max = c.tree_config().max_class();
    EXPECT_EQ(max, size / 4);
    // The tree object (~2 KiB) and the tree's metadata (~3%) come out of the region.
    const Stats empty = c.stats();
    EXPECT_GE(empty.capacity, size * 96 / 100 - ContextAllocator::tree_object_bytes());
    EXPECT_LT(empty.capacity, size - ContextAllocator::tree_object_bytes());
    EXPECT_FALSE(c.allocate(Layout{max + 1, 8})) << "above the largest class";
    EXPECT_EQ(c.stats().failures, 1u);
    Block big = c.allocate(Layout{max, 8});
    ASSERT_TRUE(big);
    EXPECT_EQ(c.allocated_size(big.ptr), max);
    Block small = c.allocate(Layout{40, 8});
    ASSERT_TRUE(small);
    EXPECT_EQ(c.allocated_size(small.ptr), 64u) << "rounded to the 32-byte granule";
    c.deallocate(Block{big.ptr, 0}, 8);
    c.deallocate(small, 8);
    EXPECT_EQ(c.stats().bytes_in_use, 0u);
    EXPECT_TRUE(c.check_invariants());
  }
}

TEST(ContextAllocator, GrowsAndShrinksThroughTheOneInterface) {
  TestRegion r(64 * kKiB);
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    SCOPED_TRACE(to_string(l));
    ContextAllocator c(l, r.block());
    Block b = c.allocate(Layout{64, 16});
    ASSERT_TRUE(b);
    std::memset(b.ptr, 0x3C, 64);
    Block g = c.grow(b, Layout{1000, 16}, Move::forbidden);
    ASSERT_EQ(g.ptr, b.ptr) << "the space after the only block is free";
    EXPECT_GE(g.size, 1000u);
    EXPECT_EQ(static_cast<unsigned char>(g.ptr[63]), 0x3Cu);
    Block s = c.shrink(g, Layout{10, 16}, Move::forbidden);
    EXPECT_EQ(s.ptr, b.ptr);
    EXPECT_EQ(c.allocated_size(s.ptr), s.size);
    Block gone = c.shrink(s, Layout{0, 16}, Move::allowed);
    EXPECT_TRUE(is_zero_size_sentinel(gone.ptr)) << "shrinking to 0 frees";
    EXPECT_EQ(c.stats().live_blocks(), 0u);
    EXPECT_FALSE(c.grow(zero_size_block(16), Layout{64 * kKiB + 1, 16}, Move::allowed));
    const Stats st = c.stats();
    EXPECT_EQ(st.grows, 1u);
    EXPECT_GE(st.shrinks, 1u);
    EXPECT_TRUE(c.check_invariants());
  }
}

TEST(ContextAllocator, ZeroSizesAndHugeSizesBehaveAsTheConceptSays) {
  TestRegion r(64 * kKiB);
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    SCOPED_TRACE(to_string(l));
    ContextAllocator c(l, r.block());
    Block z = c.allocate(Layout{0, 64});
    EXPECT_TRUE(is_zero_size_sentinel(z.ptr));
    EXPECT_TRUE(is_aligned(z.ptr, 64));
    c.deallocate(z, 64);
    c.deallocate(Block{}, 8);  // like free(NULL)
    for (std::size_t size : {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2}) {
      EXPECT_FALSE(c.allocate(Layout{size, 1})) << size;
      EXPECT_FALSE(c.allocate(Layout{size, 4096})) << size;
    }
    EXPECT_EQ(c.stats().failures, 6u);
    EXPECT_EQ(c.stats().misuses, 0u);
    Block zero = c.allocate_zeroed(Layout{300, 8});
    ASSERT_TRUE(zero);
    for (std::size_t i = 0; i < zero.size; ++i)
      ASSERT_EQ(zero.ptr[i], std::byte{0});
    EXPECT_TRUE(c.check_invariants());
  }
}

// ---------------------------------------------------------------- configuration

TEST(ContextAllocator, ValidateSaysWhyAConfigurationCannotWork) {
  using E = ContextAllocator::ConfigError;
  TestRegion r(64 * kKiB);
  EXPECT_EQ(ContextAllocator::validate(Lifetime::short_lived, Block{}), E::null_region);
  EXPECT_EQ(ContextAllocator::validate(Lifetime::medium, Block{r.data(), 0}), E::null_region);
  EXPECT_EQ(ContextAllocator::validate(static_cast<Lifetime>(7), r.block()), E::bad_lifetime);
  EXPECT_EQ(ContextAllocator::validate(Lifetime::medium, r.block(), bitset_blocks(12)),
            E::bad_block_size);
  EXPECT_EQ(ContextAllocator::validate(Lifetime::medium, r.block(), bitset_blocks(4)),
            E::bad_block_size);
  EXPECT_EQ(ContextAllocator::validate(Lifetime::medium, Block{r.data(), 24}, bitset_blocks(64)),
            E::region_too_small);
  EXPECT_EQ(
      ContextAllocator::validate(Lifetime::short_lived,
                                 Block{reinterpret_cast<std::byte*>(UINTPTR_MAX - 4095), 8192}),
      E::region_wraps);
  ContextOptions wide;
  wide.tree = TreeConfig::make(32, 64 * kKiB);
  EXPECT_EQ(ContextAllocator::validate(Lifetime::long_lived, r.block(), wide), E::region_too_small)
      << "the largest class must fit in the region";
  wide.tree = TreeConfig::make(32, 32 * kKiB);
  EXPECT_EQ(ContextAllocator::validate(Lifetime::long_lived, r.block(), wide), E::none);
  EXPECT_EQ(ContextAllocator::validate(Lifetime::long_lived, Block{r.data(), 150}),
            E::region_too_small);
  EXPECT_EQ(ContextAllocator::validate(Lifetime::short_lived, Block{r.data(), 1}), E::none);
  EXPECT_STREQ(ContextAllocator::to_string(E::bad_block_size),
               "bit set block size is not a power of two of at least 8 bytes");
}

TEST(ContextAllocator, ExplicitTreeClassesAreUsedAndValidated) {
  TestRegion r(64 * kKiB);
  ContextOptions o;
  o.tree = TreeConfig::make(64, 8 * kKiB);
  ContextAllocator c(Lifetime::long_lived, r.block(), o);
  EXPECT_EQ(c.tree_config().min_class(), 64u);
  Block b = c.allocate(Layout{1, 1});
  ASSERT_TRUE(b);
  EXPECT_EQ(b.size, 64u) << "the granule is the smallest class";
  EXPECT_FALSE(c.allocate(Layout{8 * kKiB + 1, 1}));
  EXPECT_TRUE(c.allocate(Layout{8 * kKiB, 1}));
  EXPECT_TRUE(c.check_invariants());
}

// ---------------------------------------------------------------- reset

void fill(ContextAllocator& c, std::vector<Block>* out) {
  for (std::size_t i = 0;; ++i) {
    Block b = c.allocate(Layout{48 + (i % 7) * 40, 16});
    if (!b) return;
    std::memset(b.ptr, 0xEE, b.size);
    out->push_back(b);
  }
}

TEST(ContextAllocator, ResetForgetsEveryBlockAndTheWholeRegionServesAgain) {
  TestRegion r(128 * kKiB);
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    SCOPED_TRACE(to_string(l));
    ContextAllocator c(l, r.block());
    std::vector<Block> first;
    fill(c, &first);
    ASSERT_GT(first.size(), 100u);
    c.deallocate(first[3], 16);  // one freed, the rest live at the reset
    const Stats before = c.stats();
    c.reset();
    const Stats after = c.stats();
    EXPECT_EQ(c.resets(), 1u);
    EXPECT_EQ(c.blocks_released_by_reset(), first.size() - 1);
    EXPECT_EQ(after.allocations, before.allocations) << "counters carry over";
    EXPECT_EQ(after.deallocations, before.allocations);
    EXPECT_EQ(after.live_blocks(), 0u);
    EXPECT_EQ(after.bytes_in_use, 0u);
    EXPECT_EQ(after.failures, before.failures);
    EXPECT_EQ(after.peak_bytes, before.peak_bytes);
    EXPECT_EQ(after.capacity, before.capacity);
    EXPECT_EQ(c.allocated_size(first.back().ptr), 0u) << "forgotten blocks have no size";
    EXPECT_TRUE(c.check_invariants());
    // The same number of blocks fits again, at the same places.
    std::vector<Block> second;
    fill(c, &second);
    EXPECT_EQ(second.size(), first.size());
    EXPECT_EQ(second.front().ptr, first.front().ptr);
    EXPECT_TRUE(c.check_invariants());
    c.reset();
    EXPECT_EQ(c.resets(), 2u);
    EXPECT_EQ(c.stats().live_blocks(), 0u);
    EXPECT_TRUE(c.check_invariants());
  }
}

// reset() costs the metadata, not the live blocks: with every page strictly inside the
// block area made inaccessible, a reset that walked (or freed) the blocks would fault.
TEST(ContextAllocator, ResetTouchesOnlyMetadataNotTheBlocks) {
  constexpr std::size_t kRegion = 1 * kMiB;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* m = ::mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  const Block region{static_cast<std::byte*>(m), kRegion};
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    SCOPED_TRACE(to_string(l));
    ContextAllocator c(l, region);
    std::vector<Block> blocks;
    fill(c, &blocks);
    // Every other block freed: the bit set and the tree hold many runs and spans.
    for (std::size_t i = 0; i < blocks.size(); i += 2)
      c.deallocate(blocks[i], 16);
    Block area;
    if (l == Lifetime::medium) area = Peer::bitset(c).block_area();
    if (l == Lifetime::long_lived)
      area = TestPeer<ContextTree>::usable(Peer::tree(c), region.end() - 1);
    if (l == Lifetime::short_lived) area = region;
    // Keep the first and last page: a fresh tree writes its one span's node and footer.
    const auto lo = align_up(reinterpret_cast<std::uintptr_t>(area.ptr), page) + page;
    const auto hi = align_down(reinterpret_cast<std::uintptr_t>(area.end()), page) - page;
    ASSERT_GT(hi, lo + 64 * page);
    ASSERT_EQ(::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_NONE), 0);
    c.reset();
    ASSERT_EQ(::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ | PROT_WRITE), 0);
    EXPECT_EQ(c.stats().bytes_in_use, 0u);
    EXPECT_TRUE(c.check_invariants());
  }
  ::munmap(m, kRegion);
}

// ---------------------------------------------------------------- randomized

// Expectations per kind for the randomized driver, from the reference model alone.
struct ContextHooks : testing::DefaultHooks<ContextAllocator> {
  static constexpr bool kResetWhenExhausted = false;
  Block area;                // where blocks can be (bit set: its blocks; tree: usable area)
  std::size_t granule = 1;   // bit set block size / tree granule
  std::size_t max_need = 0;  // tree: the largest class
  bool tree = false;

  // Whether a free gap between the live blocks holds the request: the bit set must then
  // succeed (next fit finds any aligned run); the tree whenever a gap holds size plus
  // the worst alignment padding (its spans are exactly the gaps: no two are neighbours).
  bool must_fit(const ReferenceModel& m, Layout l) const {
    const std::size_t n = l.size == 0 ? granule : (l.size + granule - 1) / granule * granule;
    const std::size_t align = std::max(l.align, granule);
    const std::size_t need = tree ? n + (l.align > granule ? l.align - granule : 0) : n;
    if (tree && need > max_need) return false;
    if (n > area.size) return false;
    auto fits = [&](std::uintptr_t lo, std::uintptr_t hi) {
      if (tree) return hi - lo >= need;
      const std::uintptr_t p = (lo + align - 1) / align * align;
      return p >= lo && p < hi && hi - p >= n;
    };
    std::uintptr_t gap = reinterpret_cast<std::uintptr_t>(area.ptr);
    for (const auto& [key, lb] : m.blocks()) {
      if (fits(gap, key)) return true;
      gap = key + lb.size;
    }
    return fits(gap, reinterpret_cast<std::uintptr_t>(area.end()));
  }
  bool failure_allowed(const ContextAllocator&, const ReferenceModel& m, Layout l) const {
    return !must_fit(m, l);
  }
};

struct BumpContextHooks : testing::DefaultHooks<ContextAllocator> {
  static constexpr bool kResetWhenExhausted = true;
  // A bump allocator may fail only when the rest of its region cannot hold the request.
  bool failure_allowed(const ContextAllocator& c, const ReferenceModel&, Layout l) const {
    const Stats s = c.stats();
    return s.bytes_in_use + l.size + l.align > s.capacity;
  }
  void reset(ContextAllocator& c) { c.reset(); }
};

template <class Hooks>
void run_randomized(ContextAllocator& c, DriverOptions opt, Hooks hooks) {
  RandomDriver<ContextAllocator, Hooks> driver(c, opt, hooks);
  ASSERT_TRUE(driver.run());
  const testing::DriverReport& rep = driver.report();
  const std::uint64_t n = testing::scaled(opt.ops);
  EXPECT_GT(rep.in_place, n / 50) << "resizes in place happen";
  EXPECT_GT(rep.failed_allocations, 0u) << "the region must fill up";
  EXPECT_GT(rep.frees, n / 5);
  ASSERT_TRUE(driver.free_all());
  EXPECT_EQ(c.stats().live_blocks(), 0u);
}

TEST(ContextAllocator, RandomizedBumpWithResetAgainstTheReferenceModel) {
  TestRegion r(256 * kKiB);
  ContextAllocator c(Lifetime::short_lived, r.block());
  DriverOptions opt;  // 1,000,000 operations in release builds
  opt.seed = testing::test_seed(0xC0B);
  opt.exact_bytes = false;  // a bump allocator's bytes in use include blocks freed out of order
  run_randomized(c, opt, BumpContextHooks{});
  EXPECT_GT(c.resets(), 10u) << "the region must fill up and be reset";
  c.reset();
  EXPECT_TRUE(c.allocate(Layout{r.size(), 1})) << "the whole region serves again";
  EXPECT_TRUE(c.check_invariants());
}

TEST(ContextAllocator, RandomizedBitSetAgainstTheReferenceModel) {
  TestRegion r(384 * kKiB);
  ContextAllocator c(Lifetime::medium, r.block(), bitset_blocks(16));
  ContextHooks hooks;
  hooks.area = Peer::bitset(c).block_area();
  hooks.granule = 16;
  DriverOptions opt;
  opt.seed = testing::test_seed(0xC0C);
  run_randomized(c, opt, hooks);
  const BitSetAllocator& b = Peer::bitset(c);
  EXPECT_EQ(b.free_block_count(), b.block_count());
  EXPECT_TRUE(c.allocate(Layout{b.block_count() * 16, 16})) << "the whole capacity, once more";
  EXPECT_TRUE(c.check_invariants());
}

TEST(ContextAllocator, RandomizedTreeAgainstTheReferenceModel) {
  TestRegion r(64 * kKiB);  // classes 32 B .. 16 KiB
  ContextAllocator c(Lifetime::long_lived, r.block());
  ContextHooks hooks;
  hooks.area = TestPeer<ContextTree>::usable(Peer::tree(c), r.data() + r.size() - 1);
  hooks.granule = 32;
  hooks.max_need = c.tree_config().max_class();
  hooks.tree = true;
  DriverOptions opt;
  opt.seed = testing::test_seed(0xC0D);
  opt.max_size = 16 * kKiB;  // with large alignments some requests exceed the largest class
  opt.target_live = 64;
  run_randomized(c, opt, hooks);
  const ContextTree& t = Peer::tree(c);
  EXPECT_EQ(t.largest_free_span(), t.capacity()) << "nothing lost: one free span again";
  EXPECT_TRUE(c.allocate(Layout{c.tree_config().max_class(), 32}));
  EXPECT_TRUE(c.check_invariants());
}

// ---------------------------------------------------------------- corruption

TEST(ContextAllocator, CheckInvariantsReportsACorruptedTagOrRecentBlock) {
  TestRegion r(64 * kKiB);
  ContextAllocator c(Lifetime::short_lived, r.block());
  ASSERT_TRUE(c.allocate(Layout{64, 8}));
  ASSERT_TRUE(c.check_invariants());
  Peer::tag(c) = ContextKind::tree;
  CheckResult bad = c.check_invariants();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("runs a tree allocator but its lifetime short_lived asks for bump"),
            std::string::npos)
      << bad.error();
  Peer::tag(c) = static_cast<ContextKind>(9);
  bad = c.check_invariants();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("tag 9 names no allocator"), std::string::npos) << bad.error();
  Peer::tag(c) = ContextKind::bump;
  ASSERT_TRUE(c.check_invariants());
  const std::byte* saved = Peer::recent(c);
  Peer::recent(c) = r.data() + r.size() + 64;
  bad = c.check_invariants();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("most recent block"), std::string::npos) << bad.error();
  Peer::recent(c) = saved;
  Peer::released_by_reset(c).set(5);
  bad = c.check_invariants();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("released by reset"), std::string::npos) << bad.error();
  Peer::released_by_reset(c).set(0);
  EXPECT_TRUE(c.check_invariants());
}

TEST(ContextAllocator, CheckInvariantsReportsCorruptedBitSetMetadata) {
  TestRegion r(64 * kKiB);
  ContextAllocator c(Lifetime::medium, r.block());
  ASSERT_TRUE(c.allocate(Layout{64 * 3, 8}));
  ASSERT_TRUE(c.check_invariants());
  // The bit sets sit at the start of the region: mark block 1 free in the middle of a run.
  auto* free_set = reinterpret_cast<std::uint64_t*>(r.data());
  free_set[0] |= 2;
  const CheckResult bad = c.check_invariants();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().rfind("context(bitset): bitset:", 0), 0u) << bad.error();
  free_set[0] &= ~std::uint64_t{2};
  EXPECT_TRUE(c.check_invariants());
}

TEST(ContextAllocator, CheckInvariantsReportsACorruptedTreeMap) {
  TestRegion r(64 * kKiB);
  ContextAllocator c(Lifetime::long_lived, r.block());
  Block b = c.allocate(Layout{256, 8});
  ASSERT_TRUE(b);
  ASSERT_TRUE(c.check_invariants());
  std::uint8_t* map = TestPeer<ContextTree>::map(Peer::tree(c), r.data() + r.size() - 1);
  const std::uint8_t saved = map[0];
  map[0] = 0;  // the live block's head byte
  const CheckResult bad = c.check_invariants();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().rfind("context(tree): tree:", 0), 0u) << bad.error();
  map[0] = saved;
  EXPECT_TRUE(c.check_invariants());
}

// ---------------------------------------------------------------- misuse

TEST(ContextAllocatorMisuse, ABadConfigurationIsReportedAndServesNothing) {
  TestRegion r(64 * kKiB);
  testing::expect_misuse(
      [&] {
        ContextAllocator c(Lifetime::medium, r.block(), bitset_blocks(12));
        EXPECT_EQ(c.kind(), ContextKind::none);
        EXPECT_EQ(c.config_error(), ContextAllocator::ConfigError::bad_block_size);
        EXPECT_FALSE(c.allocate(Layout{16, 8}));
        EXPECT_FALSE(c.contains(r.data()));
        EXPECT_EQ(c.allocated_size(r.data()), 0u);
        EXPECT_EQ(c.stats().failures, 1u);
        c.reset();
        EXPECT_TRUE(c.check_invariants());
      },
      "bad argument in context.construct");
}

TEST(ContextAllocatorMisuse, DoubleFreesAreReportedByEveryKind) {
  TestRegion r(64 * kKiB);
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    SCOPED_TRACE(to_string(l));
    ContextAllocator c(l, r.block());
    Block keep = c.allocate(Layout{32, 8});
    Block x = c.allocate(Layout{32, 8});
    ASSERT_TRUE(keep && x);
    c.deallocate(x, 8);
    const std::string name = to_string(kind_for(l));
    testing::expect_misuse([&] { c.deallocate(x, 8); }, "double free in " + name + ".deallocate");
    EXPECT_EQ(c.stats().misuses, 1u);
    EXPECT_EQ(c.stats().live_blocks(), 1u);
    EXPECT_TRUE(c.check_invariants());
  }
}

TEST(ContextAllocatorMisuse, ForeignPointersAreReportedByEveryKind) {
  TestRegion r(64 * kKiB);
  TestRegion elsewhere(4096);
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    SCOPED_TRACE(to_string(l));
    ContextAllocator c(l, r.block());
    ASSERT_TRUE(c.allocate(Layout{32, 8}));
    const std::string name = to_string(kind_for(l));
    testing::expect_misuse(
        [&] {
          c.deallocate(Block{elsewhere.data(), 32}, 8);
        },
        "foreign pointer in " + name + ".deallocate");
    EXPECT_EQ(c.stats().live_blocks(), 1u);
    EXPECT_TRUE(c.check_invariants());
  }
}

TEST(ContextAllocatorMisuse, GrowToASmallerSizeIsReported) {
  TestRegion r(64 * kKiB);
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    SCOPED_TRACE(to_string(l));
    ContextAllocator c(l, r.block());
    Block x = c.allocate(Layout{256, 8});
    ASSERT_TRUE(x);
    const std::string name = to_string(kind_for(l));
    testing::expect_misuse(
        [&] {
          EXPECT_FALSE(c.grow(x, Layout{8, 8}, Move::allowed));
        },
        "bad argument in " + name + ".grow");
    EXPECT_EQ(c.allocated_size(x.ptr), x.size) << "the block is untouched";
    EXPECT_TRUE(c.check_invariants());
  }
}

}  // namespace
}  // namespace ctxalloc
