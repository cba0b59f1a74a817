#include "ctxalloc/allocators/malloc_allocator.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "ctxalloc/core/sanitizers.h"
#include "support/misuse_test_helpers.h"
#include "support/random_driver.h"

#if defined(CTXALLOC_ASAN_ACTIVE)
// These tests ask malloc (the oversize allocator) for impossible sizes on purpose: under
// ASan it must return null as glibc's does, not abort.
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=1";
}
#endif

namespace ctxalloc {

template <>
struct TestPeer<MallocAllocator> {
  static detail::PointerTable& table(MallocAllocator& a) { return a.table_; }
};

template <>
struct TestPeer<detail::PointerTable> {
  static detail::PointerTable::Entry* slots(detail::PointerTable& t) { return t.slots_; }
  static std::size_t& count(detail::PointerTable& t) { return t.count_; }
  static std::size_t home(const detail::PointerTable& t, std::uintptr_t key) { return t.home(key); }
};

namespace {

using testing::DriverOptions;
using testing::RandomDriver;
using TablePeer = TestPeer<detail::PointerTable>;

TEST(MallocAllocator, AllocatesTracksAndFrees) {
  MallocAllocator a;
  Block x = a.allocate(Layout{100, 8});
  ASSERT_TRUE(x);
  EXPECT_EQ(x.size, 100u);
  std::memset(x.ptr, 1, x.size);
  EXPECT_TRUE(a.contains(x.ptr));
  EXPECT_FALSE(a.contains(x.ptr + 1)) << "only block starts: malloc's memory is not a range";
  EXPECT_EQ(a.allocated_size(x.ptr), 100u);
  EXPECT_EQ(a.stats().bytes_in_use, 100u);
  a.deallocate(Block{x.ptr, 0}, 8);  // unsized free
  EXPECT_FALSE(a.contains(x.ptr));
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(MallocAllocator, HonoursEveryPowerOfTwoAlignmentUpToOneMebibyte) {
  MallocAllocator a;
  std::vector<Block> blocks;
  for (std::size_t align = 1; align <= (1u << 20); align *= 2) {
    Block b = a.allocate(Layout{3, align});
    ASSERT_TRUE(b) << align;
    EXPECT_TRUE(is_aligned(b.ptr, align)) << align;
    blocks.push_back(b);
  }
  EXPECT_TRUE(a.check_invariants());
  for (Block b : blocks)
    a.deallocate(b, 1);
  EXPECT_EQ(a.stats().live_blocks(), 0u);
}

TEST(MallocAllocator, ZeroSizeAndHugeRequests) {
  MallocAllocator a;
  Block z = a.allocate(Layout{0, 64});
  EXPECT_TRUE(is_zero_size_sentinel(z.ptr));
  a.deallocate(z, 64);
  Block real = a.allocate(Layout{0, 1 << 16});
  ASSERT_TRUE(real);
  EXPECT_TRUE(a.contains(real.ptr));
  a.deallocate(real, 1 << 16);
  for (std::size_t size : {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2}) {
    EXPECT_FALSE(a.allocate(Layout{size, 16}));
    EXPECT_FALSE(a.allocate(Layout{size, 4096}));
  }
  EXPECT_EQ(a.stats().failures, 6u);
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  Block zeroed = a.allocate_zeroed(Layout{5000, 16});
  ASSERT_TRUE(zeroed);
  for (std::size_t i = 0; i < zeroed.size; ++i)
    ASSERT_EQ(zeroed.ptr[i], std::byte{0});
  a.deallocate(zeroed, 16);
  EXPECT_TRUE(a.check_invariants());
}

TEST(MallocAllocator, GrowsInPlaceWithinTheUsableSizeElseMovesKeepingTheBytes) {
  MallocAllocator a;
  Block x = a.allocate(Layout{1, 8});
  x.ptr[0] = std::byte{7};
  const std::size_t usable = ::malloc_usable_size(x.ptr);  // glibc: 24; ASan: 1
  Block g = a.grow(x, Layout{usable, 8}, Move::forbidden);
  ASSERT_EQ(g.ptr, x.ptr);
  EXPECT_EQ(a.allocated_size(x.ptr), usable);
  EXPECT_FALSE(a.grow(g, Layout{1 << 20, 8}, Move::forbidden));
  Block m = a.grow(g, Layout{1 << 20, 8}, Move::allowed);
  ASSERT_TRUE(m);
  EXPECT_EQ(m.ptr[0], std::byte{7});
  EXPECT_EQ(a.stats().bytes_in_use, 1u << 20);
  // Over-aligned blocks move through posix_memalign, keeping alignment and bytes.
  Block al = a.allocate(Layout{64, 4096});
  std::memset(al.ptr, 3, 64);
  Block alg = a.grow(al, Layout{100000, 4096}, Move::allowed);
  ASSERT_TRUE(alg);
  EXPECT_TRUE(is_aligned(alg.ptr, 4096));
  EXPECT_EQ(alg.ptr[63], std::byte{3});
  EXPECT_TRUE(a.check_invariants());
  a.deallocate(m, 8);
  a.deallocate(alg, 4096);
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
}

TEST(MallocAllocator, ShrinksInPlaceOrThroughRealloc) {
  MallocAllocator a;
  Block x = a.allocate(Layout{1 << 20, 16});
  std::memset(x.ptr, 9, 100);
  Block s = a.shrink(x, Layout{500000, 16}, Move::forbidden);
  EXPECT_EQ(s.ptr, x.ptr);
  EXPECT_EQ(a.stats().bytes_in_use, 500000u);
  Block t = a.shrink(s, Layout{100, 16}, Move::allowed);  // may move: realloc
  ASSERT_TRUE(t);
  EXPECT_EQ(t.ptr[99], std::byte{9});
  EXPECT_EQ(a.allocated_size(t.ptr), 100u);
  Block z = a.shrink(t, Layout{0, 16}, Move::allowed);
  EXPECT_TRUE(is_zero_size_sentinel(z.ptr));
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_EQ(a.stats().shrinks, 2u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(MallocAllocator, FreesBlocksStillLiveWhenDestroyed) {
  // LeakSanitizer (asan build) fails the test binary if these leak.
  MallocAllocator a;
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(a.allocate(Layout{static_cast<std::size_t>(i + 1), 16}));
  EXPECT_EQ(a.stats().live_blocks(), 1000u);
}

TEST(MallocAllocator, RandomizedAgainstTheReferenceModel) {
  MallocAllocator a;
  DriverOptions opt;
  opt.seed = testing::test_seed(0xA11C);
  opt.max_size = 16 * 1024;  // the driver fills and checks every byte: keep blocks small
  opt.target_live = 256;
  opt.max_live = 512;
  RandomDriver<MallocAllocator> driver(a, opt);
  ASSERT_TRUE(driver.run());
  EXPECT_EQ(driver.report().failed_allocations, 0u);
  EXPECT_GT(driver.report().in_place, 1000u);
  ASSERT_TRUE(driver.free_all());
  EXPECT_EQ(TestPeer<MallocAllocator>::table(a).count(), 0u);
}

TEST(PointerTable, MatchesASetUnderRandomInsertsAndErasesWithCollidingKeys) {
  detail::PointerTable t;
  std::set<std::uintptr_t> model;
  std::mt19937_64 rng(testing::test_seed(5));
  const std::uint64_t n = testing::scaled(1'000'000);
  for (std::uint64_t i = 0; i < n; ++i) {
    // Keys from a small space, 16 apart: long probe runs, wrap-around, many erases.
    const std::uintptr_t key = 16 * (1 + rng() % 4096);
    if (model.count(key) != 0) {
      detail::PointerTable::Entry* e = t.find(key);
      ASSERT_NE(e, nullptr);
      ASSERT_EQ(e->size, key / 2);
      t.erase(e);
      model.erase(key);
    } else {
      ASSERT_EQ(t.find(key), nullptr);
      ASSERT_TRUE(t.reserve_one());
      t.insert(key, key / 2, 16);
      model.insert(key);
    }
    if (i % 4096 == 0) {
      ASSERT_EQ(t.check(), "");
    }
  }
  ASSERT_EQ(t.count(), model.size());
  ASSERT_EQ(t.check(), "");
  for (std::uintptr_t key : model)
    ASSERT_NE(t.find(key), nullptr);
}

TEST(MallocAllocator, CheckInvariantsReportsCorruptedBookkeeping) {
  MallocAllocator a;
  std::vector<Block> blocks;
  for (int i = 0; i < 100; ++i)
    blocks.push_back(a.allocate(Layout{64, 16}));
  ASSERT_TRUE(a.check_invariants());
  detail::PointerTable& t = TestPeer<MallocAllocator>::table(a);
  detail::PointerTable::Entry* e = t.find(reinterpret_cast<std::uintptr_t>(blocks[5].ptr));
  e->size += 1;
  CheckResult c = a.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("bytes"), std::string::npos) << c.error();
  e->size -= 1;
  TablePeer::count(t) += 1;
  c = a.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("counts"), std::string::npos) << c.error();
  TablePeer::count(t) -= 1;
  ASSERT_TRUE(a.check_invariants());
  // Move an entry from its home slot to the empty slot after it: the home slot, now
  // empty, cuts it off from lookups.
  detail::PointerTable::Entry* slots = TablePeer::slots(t);
  const std::size_t cap = t.capacity();
  bool moved = false;
  for (std::size_t i = 0; i < cap && !moved; ++i) {
    const std::size_t next = (i + 1) % cap;
    if (slots[i].key != 0 && slots[next].key == 0 && TablePeer::home(t, slots[i].key) == i) {
      slots[next] = slots[i];
      slots[i].key = 0;
      moved = true;
    }
  }
  ASSERT_TRUE(moved);
  c = a.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("cut off"), std::string::npos) << c.error();
}

TEST(MallocAllocatorMisuse, ForeignPointersAndDoubleFreesAreReported) {
  MallocAllocator a;
  Block x = a.allocate(Layout{64, 16});
  int on_stack = 0;
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{reinterpret_cast<std::byte*>(&on_stack), 4}, 4);
      },
      "foreign pointer in malloc.deallocate");
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{x.ptr + 16, 16}, 16);
      },
      "foreign pointer in malloc.deallocate");
  testing::expect_misuse(
      [&] {
        a.deallocate(Block{x.ptr, 65}, 16);
      },
      "wrong size in malloc.deallocate");
  testing::expect_misuse(
      [&] {
        EXPECT_FALSE(a.grow(x, Layout{8, 16}, Move::allowed));
      },
      "bad argument in malloc.grow");
  a.deallocate(x, 16);
  // A freed pointer is forgotten: a double free reads as a foreign pointer.
  testing::expect_misuse([&] { a.deallocate(x, 16); }, "foreign pointer in malloc.deallocate");
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_TRUE(a.check_invariants());
}

}  // namespace
}  // namespace ctxalloc
