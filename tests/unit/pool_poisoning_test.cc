// Pools known to the memory tools: for every allocator, a use after free inside its own
// memory (a block it handed out, freed, and not yet handed out again) is reported by
// AddressSanitizer like one on the heap. Death tests, in the asan variant; elsewhere they
// skip (the memcheck_pools test runs the same cases under valgrind's memcheck in
// release builds). Also: the "tool paths" (every request through the slow paths, which
// is what memcheck runs use) against the reference model, in every variant.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "ctxalloc/allocators/bitset_allocator.h"
#include "ctxalloc/allocators/bump_allocator.h"
#include "ctxalloc/allocators/context_allocator.h"
#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/allocators/tree_allocator.h"
#include "ctxalloc/core/poison.h"
#include "ctxalloc/switchable/global_heap.h"
#include "ctxalloc/switchable/thread_heap.h"
#include "support/random_driver.h"
#include "support/segment_provider.h"
#include "support/test_region.h"

namespace ctxalloc {
namespace {

using testing::DriverOptions;
using testing::RandomDriver;
using testing::TestRegion;
using testing::TestSegments;

#if defined(CTXALLOC_ASAN_ACTIVE)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

// What AddressSanitizer prints for an access to memory a pool poisoned.
constexpr const char* kReport = "use-after-poison";

#define SKIP_WITHOUT_ASAN()                                                              \
  if (!kAsan)                                                                            \
  GTEST_SKIP() << "needs AddressSanitizer (the asan variant); release builds run these " \
                  "cases under valgrind's memcheck (the memcheck_pools test)"

// A write the compiler cannot drop: the death test must really touch p.
void touch(void* p) {
  *static_cast<volatile unsigned char*>(p) = 0x5A;
}

TEST(PoolPoisoning, BumpAllocatorReportsAUseAfterAFreeAndAfterReset) {
  SKIP_WITHOUT_ASAN();
  TestRegion r(64 * 1024);
  BumpAllocator a(r.block());
  Block x = a.allocate(Layout{64, 8});
  Block y = a.allocate(Layout{64, 8});
  ASSERT_TRUE(x && y);
  touch(y.ptr + 63);   // live: fine
  a.deallocate(y, 8);  // LIFO: back to the free part
  EXPECT_DEATH(touch(y.ptr + 8), kReport);
  a.deallocate(x, 8);
  Block z = a.allocate(Layout{32, 8});
  touch(z.ptr + 31);  // reused: addressable again
  EXPECT_DEATH(touch(z.ptr + 32), kReport) << "past the most recent block: the free part";
  a.reset();
  EXPECT_DEATH(touch(z.ptr), kReport);
}

TEST(PoolPoisoning, BumpAllocatorPoisonsABlockFreedOutOfOrderAndCatchesItsDoubleFree) {
  SKIP_WITHOUT_ASAN();
  TestRegion r(64 * 1024);
  BumpAllocator a(r.block());
  Block x = a.allocate(Layout{64, 8});
  Block y = a.allocate(Layout{64, 8});
  a.deallocate(x, 8);  // not the most recent: counted, its bytes wait for reset
  EXPECT_DEATH(touch(x.ptr + 10), kReport);
  touch(y.ptr);
  set_misuse_policy(MisusePolicy::count);
  const std::uint64_t before = a.stats().misuses;
  a.deallocate(x, 8);
  EXPECT_EQ(a.stats().misuses, before + 1) << "poisoned: a double free";
  set_misuse_policy(MisusePolicy::abort);
}

TEST(PoolPoisoning, BitSetAllocatorReportsAUseAfterFree) {
  SKIP_WITHOUT_ASAN();
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 64);
  Block x = a.allocate(Layout{200, 8});
  ASSERT_TRUE(x);
  a.deallocate(x, 8);
  EXPECT_DEATH(touch(x.ptr + 100), kReport);
}

TEST(PoolPoisoning, TreeAllocatorReportsAUseAfterFree) {
  SKIP_WITHOUT_ASAN();
  TestRegion r(256 * 1024);
  TreeAllocator a(r.block());
  Block x = a.allocate(Layout{256, 16});
  Block fence = a.allocate(Layout{32, 16});
  ASSERT_TRUE(x && fence);
  a.deallocate(x, 16);
  // The free span keeps its node (first 32 bytes) and footer (last 8) addressable for
  // the allocator; everything between is poisoned.
  EXPECT_DEATH(touch(x.ptr + 64), kReport);
}

TEST(PoolPoisoning, SizeClassAllocatorReportsAUseAfterFreeIncludingItsLinkWord) {
  SKIP_WITHOUT_ASAN();
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block x = a.allocate(Layout{64, 8});
  Block y = a.allocate(Layout{64, 8});
  ASSERT_TRUE(x && y);
  a.deallocate(x, 8);
  EXPECT_DEATH(touch(x.ptr), kReport) << "the free-list link word too";
  EXPECT_DEATH(touch(x.ptr + 40), kReport);
  Block again = a.allocate(Layout{64, 8});
  EXPECT_EQ(again.ptr, x.ptr) << "LIFO reuse";
  touch(again.ptr + 40);  // handed out again: addressable
  // Blocks carved but never handed out are poisoned too.
  EXPECT_DEATH(touch(y.ptr + 64 + 8), kReport);
  EXPECT_TRUE(a.check_invariants());  // walks the free lists through poisoned links
}

TEST(PoolPoisoning, ContextAllocatorReportsAUseAfterFreeInEveryKind) {
  SKIP_WITHOUT_ASAN();
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    SCOPED_TRACE(to_string(l));
    TestRegion r(64 * 1024);
    ContextAllocator c(l, r.block());
    Block x = c.allocate(Layout{200, 8});
    Block y = c.allocate(Layout{200, 8});
    ASSERT_TRUE(x && y);
    c.deallocate(y, 8);
    EXPECT_DEATH(touch(y.ptr + 100), kReport);
    c.reset();  // every block dies at once
    EXPECT_DEATH(touch(x.ptr + 100), kReport);
    Block z = c.allocate(Layout{200, 8});
    ASSERT_TRUE(z);
    touch(z.ptr + 100);
  }
}

TEST(PoolPoisoning, GlobalHeapReportsAUseAfterFree) {
  SKIP_WITHOUT_ASAN();
  SegmentSource segs;
  GlobalHeap h(segs);
  Block x = h.allocate(Layout{4000, 16});
  Block fence = h.allocate(Layout{64, 16});
  ASSERT_TRUE(x && fence);
  h.deallocate(Block{x.ptr, 0}, 16);
  EXPECT_DEATH(touch(x.ptr + 2000), kReport);
  h.deallocate(Block{fence.ptr, 0}, 16);
}

TEST(PoolPoisoning, ThreadHeapReportsAUseAfterFreeOfSmallAndMediumBlocks) {
  SKIP_WITHOUT_ASAN();
  SegmentSource segs;
  GlobalHeap global(segs);
  ThreadHeap h(segs, global);
  Block small = h.allocate(Layout{48, 16});
  Block medium = h.allocate(Layout{20000, 16});
  Block fence = h.allocate(Layout{20000, 16});
  ASSERT_TRUE(small && medium && fence);
  h.free_owned(small.ptr, SegmentMap::lookup(small.ptr));
  h.free_owned(medium.ptr, SegmentMap::lookup(medium.ptr));
  EXPECT_DEATH(touch(small.ptr + 8), kReport);
  EXPECT_DEATH(touch(medium.ptr + 5000), kReport);
  h.free_owned(fence.ptr, SegmentMap::lookup(fence.ptr));
}

// ------------------------------------------------------------------ the tool paths

// Builds allocators that send every request through their slow paths, as they do under
// memcheck, for as long as it lives.
class ToolPaths {
 public:
  ToolPaths() { detail::set_pool_slow_paths_for_testing(true); }
  ~ToolPaths() { detail::set_pool_slow_paths_for_testing(false); }
  ToolPaths(const ToolPaths&) = delete;
  ToolPaths& operator=(const ToolPaths&) = delete;
};

DriverOptions tool_path_options(std::uint64_t seed) {
  DriverOptions opt;
  opt.ops = 200'000;
  opt.seed = testing::test_seed(seed);
  opt.max_size = 2048;
  opt.max_align = 256;
  opt.target_live = 128;
  return opt;
}

// The bump allocator cannot reuse blocks freed out of order: when it fills up, the driver
// frees everything and resets it.
struct BumpResetHooks : testing::DefaultHooks<BumpAllocator> {
  static constexpr bool kResetWhenExhausted = true;
  // A bump region fills up by design (frees out of order give nothing back); the driver
  // still checks that each failure is counted and changes nothing.
  bool failure_allowed(const BumpAllocator&, const testing::ReferenceModel&, Layout) const {
    return true;
  }
  void reset(BumpAllocator& a) { a.reset(); }
};

TEST(PoolToolPaths, BumpAllocatorAgainstTheReferenceModel) {
  ToolPaths tool;
  TestRegion r(256 * 1024);
  BumpAllocator a(r.block());
  DriverOptions opt = tool_path_options(0xB0);
  opt.exact_bytes = false;  // bump's bytes in use count blocks freed out of order
  RandomDriver<BumpAllocator, BumpResetHooks> driver(a, opt);
  ASSERT_TRUE(driver.run());
  ASSERT_TRUE(driver.free_all());
  a.reset();
  EXPECT_TRUE(a.allocate(Layout{r.size(), 1})) << "the whole region again";
  EXPECT_TRUE(a.check_invariants());
}

TEST(PoolToolPaths, BitSetAllocatorAgainstTheReferenceModel) {
  ToolPaths tool;
  TestRegion r(1 << 20);
  BitSetAllocator a(r.block(), 32);
  RandomDriver<BitSetAllocator> driver(a, tool_path_options(0xB1));
  ASSERT_TRUE(driver.run());
  ASSERT_TRUE(driver.free_all());
  EXPECT_EQ(a.free_block_count(), a.block_count());
  EXPECT_TRUE(a.check_invariants());
}

TEST(PoolToolPaths, SizeClassAllocatorAgainstTheReferenceModel) {
  ToolPaths tool;
  TestSegments segs;
  {
    SizeClassAllocator a(segs.provider());
    DriverOptions opt = tool_path_options(0xB2);
    opt.max_size = 1024;
    opt.exact_bytes = false;  // blocks are rounded to classes
    RandomDriver<SizeClassAllocator> driver(a, opt);
    ASSERT_TRUE(driver.run());
    ASSERT_TRUE(driver.free_all());
    EXPECT_TRUE(a.check_invariants());
    a.trim();
    EXPECT_EQ(a.segments(), 0u) << "every page came back empty";
  }
  EXPECT_EQ(segs.outstanding(), 0);
}

}  // namespace
}  // namespace ctxalloc
