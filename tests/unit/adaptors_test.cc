#include <gtest/gtest.h>

#include <deque>
#include <list>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

#include "ctxalloc/adaptors/pmr.h"
#include "ctxalloc/adaptors/stl_allocator.h"
#include "ctxalloc/allocators/bump_allocator.h"
#include "ctxalloc/allocators/size_class_allocator.h"
#include "support/random_driver.h"
#include "support/segment_provider.h"
#include "support/test_region.h"

namespace ctxalloc {

template <>
struct TestPeer<PmrAllocator> {
  static void corrupt(PmrAllocator& a) { a.counters_.deallocations.add(1000); }
};

namespace {

TEST(MemoryResource, PmrContainersAllocateFromABumpRegion) {
  testing::TestRegion r(1 << 20);
  BumpAllocator bump(r.block());
  MemoryResource res(bump);
  {
    std::pmr::vector<int> v(&res);
    for (int i = 0; i < 1000; ++i)
      v.push_back(i);
    std::pmr::string s("a string long enough to leave the small-string buffer", &res);
    std::pmr::deque<std::pair<int, long>> d(&res);
    for (int i = 0; i < 100; ++i)
      d.emplace_back(i, i * 2L);
    EXPECT_EQ(v[999], 999);
    EXPECT_EQ(d.back().second, 198);
    EXPECT_TRUE(bump.contains(v.data()));
    EXPECT_TRUE(bump.contains(s.data()));
  }
  const Stats st = bump.stats();
  EXPECT_GT(st.allocations, 10u);
  EXPECT_EQ(st.live_blocks(), 0u) << "every container gave its memory back";
  EXPECT_TRUE(bump.check_invariants());
}

TEST(MemoryResource, ExhaustionThrowsBadAllocAndTheContainerStaysValid) {
  testing::TestRegion r(4096);
  BumpAllocator bump(r.block());
  MemoryResource res(bump);
  std::pmr::vector<char> v(&res);
  v.push_back('x');
  EXPECT_THROW(v.reserve(100000), std::bad_alloc);
  EXPECT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], 'x');
}

TEST(MemoryResource, EqualOnlyOverTheSameAllocator) {
  testing::TestSegments segs;
  SizeClassAllocator a(segs.provider());
  SizeClassAllocator b(segs.provider());
  MemoryResource ra(a), ra2(a), rb(b);
  EXPECT_TRUE(ra.is_equal(ra2));
  EXPECT_FALSE(ra.is_equal(rb));
  EXPECT_FALSE(ra.is_equal(*std::pmr::new_delete_resource()));
}

TEST(StlAllocator, NodeContainersOverTheSizeClassAllocatorGiveEverythingBack) {
  testing::TestSegments segs;
  SizeClassAllocator a(segs.provider());
  {
    std::list<int, StlAllocator<int, SizeClassAllocator>> l{
        StlAllocator<int, SizeClassAllocator>(a)};
    using Pair = std::pair<const int, std::string>;
    std::map<int, std::string, std::less<>, StlAllocator<Pair, SizeClassAllocator>> m{
        StlAllocator<Pair, SizeClassAllocator>(a)};
    for (int i = 0; i < 5000; ++i) {
      l.push_back(i);
      m.emplace(i, "v");
    }
    EXPECT_EQ(a.stats().live_blocks(), 10000u);
    EXPECT_EQ(m.at(4321), "v");
  }
  EXPECT_EQ(a.stats().live_blocks(), 0u);
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
  EXPECT_TRUE(a.check_invariants());
}

TEST(StlAllocator, RefusalsBecomeTheStandardExceptions) {
  testing::TestSegments segs;
  SizeClassAllocator a(segs.provider());
  StlAllocator<double, SizeClassAllocator> alloc(a);
  EXPECT_THROW((void)alloc.allocate(SIZE_MAX / 4), std::bad_array_new_length);
  EXPECT_THROW((void)alloc.allocate(1000), std::bad_alloc) << "8000 bytes: above 1 KiB";
  std::vector<double, StlAllocator<double, SizeClassAllocator>> v(alloc);
  v.reserve(100);
  EXPECT_THROW(v.reserve(1000), std::bad_alloc);
  EXPECT_EQ(v.capacity(), 100u) << "the vector is unchanged by the refused reserve";
  StlAllocator<int, SizeClassAllocator> rebound(alloc);
  EXPECT_TRUE(rebound == alloc);
}

TEST(PmrAllocator, ARefusingResourceGivesANullBlockNotAnException) {
  PmrAllocator a(std::pmr::null_memory_resource());
  EXPECT_FALSE(a.allocate(Layout{64, 8}));
  EXPECT_EQ(a.stats().failures, 1u);
  Block z = a.allocate(Layout{0, 8});
  EXPECT_TRUE(is_zero_size_sentinel(z.ptr));
  a.deallocate(z, 8);
  EXPECT_FALSE(a.contains(z.ptr));
}

// Over new_delete_resource: libstdc++ 12's unsynchronized_pool_resource returns blocks
// that miss alignments above 16 for some sizes (36 B aligned 32, for one), which this
// driver reports at once.
TEST(PmrAllocator, RandomizedAgainstTheReferenceModelOverNewDelete) {
  PmrAllocator a(std::pmr::new_delete_resource());
  testing::DriverOptions opt;
  opt.seed = testing::test_seed(0x9312);
  opt.claims_blocks = false;  // a memory resource cannot tell its own pointers
  // A memory resource needs a block's own alignment back: resizes keep it (pmr.h).
  opt.resize_realign_every = 0;
  testing::RandomDriver<PmrAllocator> driver(a, opt);
  ASSERT_TRUE(driver.run());
  ASSERT_TRUE(driver.free_all());
  EXPECT_EQ(driver.report().failed_allocations, 0u);
  // new/delete never refuses while the system has memory: a large block works.
  Block big = a.allocate(Layout{1 << 24, 64});
  ASSERT_TRUE(big);
  a.deallocate(big, 64);
  EXPECT_TRUE(a.check_invariants());
}

TEST(PmrAllocator, CheckInvariantsReportsCorruptedCounters) {
  PmrAllocator a;
  a.deallocate(a.allocate(Layout{16, 8}), 8);
  ASSERT_TRUE(a.check_invariants());
  TestPeer<PmrAllocator>::corrupt(a);
  EXPECT_FALSE(a.check_invariants());
}

}  // namespace
}  // namespace ctxalloc
