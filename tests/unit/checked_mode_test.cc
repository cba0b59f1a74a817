// Checked mode (docs/hardening.md): the misuse cases that the hardening work added to
// what the allocators already reported -- a free with an alignment the block does not
// have, a write past the end of a block (tree canaries), use of a released context and
// use of a context on the wrong thread, a double free only the memory tools can see.
// Each is a death test under the abort policy and a counted run under the count policy
// (testing::expect_misuse). Checks that release builds leave out skip there, saying so.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "ctxalloc/allocators/bitset_allocator.h"
#include "ctxalloc/allocators/bump_allocator.h"
#include "ctxalloc/allocators/context_allocator.h"
#include "ctxalloc/allocators/detail/canary.h"
#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/allocators/tree_allocator.h"
#include "ctxalloc/core/poison.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/global_heap.h"
#include "ctxalloc/switchable/segment_source.h"
#include "ctxalloc/switchable/switchable.h"
#include "support/misuse_test_helpers.h"
#include "support/segment_provider.h"
#include "support/test_region.h"

namespace ctxalloc {
namespace {

using testing::expect_misuse;
using testing::TestRegion;
using testing::TestSegments;

#define SKIP_UNLESS_CHECKED()                                                               \
  if (!CTXALLOC_CHECKS)                                                                     \
  GTEST_SKIP() << "checked builds only (debug, asan): release builds leave this check out " \
                  "of their fast paths"

// Builds allocators with canaries (as CTXALLOC_CANARY=1 does) for as long as it lives.
class Canaries {
 public:
  Canaries() { detail::set_canaries_for_testing(true); }
  ~Canaries() { detail::set_canaries_for_testing(false); }
  Canaries(const Canaries&) = delete;
  Canaries& operator=(const Canaries&) = delete;
};

// A pointer aligned to 16 but not to 64, from an allocator asked for 16: freeing it with
// alignment 64 cannot match how it was allocated.
template <class A>
Block off_64(A& a) {
  Block b = a.allocate(Layout{48, 16});
  if (reinterpret_cast<std::uintptr_t>(b.ptr) % 64 == 0) {
    Block c = a.allocate(Layout{48, 16});
    a.deallocate(b, 16);
    b = c;
  }
  return b;
}

// ------------------------------------------------------------ wrong alignment

TEST(CheckedMode, BumpReportsAFreeWithAnAlignmentTheBlockDoesNotHave) {
  SKIP_UNLESS_CHECKED();
  TestRegion r(64 * 1024);
  BumpAllocator a(r.block());
  a.allocate(Layout{8, 8});
  Block b = a.allocate(Layout{24, 8});
  ASSERT_NE(reinterpret_cast<std::uintptr_t>(b.ptr) % 64, 0u);
  expect_misuse([&] { a.deallocate(b, 64); }, "wrong alignment in bump.deallocate");
  EXPECT_EQ(a.used(), 32u) << "nothing freed";
  a.deallocate(b, 8);
  EXPECT_EQ(a.used(), 8u);
}

TEST(CheckedMode, BitSetReportsAFreeWithAnAlignmentTheBlockDoesNotHave) {
  SKIP_UNLESS_CHECKED();
  TestRegion r(64 * 1024);
  BitSetAllocator a(r.block(), 16);
  Block b = off_64(a);
  expect_misuse([&] { a.deallocate(b, 64); }, "wrong alignment in bitset.deallocate");
  EXPECT_EQ(a.allocated_size(b.ptr), 48u) << "still live";
  a.deallocate(b, 16);
  EXPECT_TRUE(a.check_invariants());
}

TEST(CheckedMode, TreeReportsAFreeWithAnAlignmentTheBlockDoesNotHave) {
  SKIP_UNLESS_CHECKED();
  TestRegion r(256 * 1024);
  TreeAllocator a(r.block());
  Block b = a.allocate(Layout{32, 16});
  Block c = a.allocate(Layout{32, 16});  // one of the two is not 64-aligned
  Block odd = reinterpret_cast<std::uintptr_t>(b.ptr) % 64 != 0 ? b : c;
  expect_misuse([&] { a.deallocate(odd, 64); }, "wrong alignment in tree.deallocate");
  EXPECT_NE(a.allocated_size(odd.ptr), 0u) << "still live";
  a.deallocate(b, 16);
  a.deallocate(c, 16);
  EXPECT_EQ(a.stats().bytes_in_use, 0u);
}

TEST(CheckedMode, SizeClassReportsAFreeWithAnAlignmentTheBlockDoesNotHave) {
  SKIP_UNLESS_CHECKED();
  TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block b = off_64(a);
  expect_misuse([&] { a.deallocate(b, 64); }, "wrong alignment in size_class.deallocate");
  EXPECT_EQ(a.allocated_size(b.ptr), 48u) << "still live";
  a.deallocate(b, 16);
  EXPECT_TRUE(a.check_invariants());
}

TEST(CheckedMode, GlobalHeapReportsAFreeWithAnAlignmentTheBlockDoesNotHave) {
  SKIP_UNLESS_CHECKED();
  SegmentSource segs;
  GlobalHeap h(segs);
  Block b = off_64(h);
  expect_misuse([&] { h.deallocate(b, 64); }, "wrong alignment in tree.deallocate");
  EXPECT_NE(h.allocated_size(b.ptr), 0u) << "still live";
  h.deallocate(b, 16);
}

// ------------------------------------------------------------ canaries (overflow)

TEST(CheckedMode, TreeCanaryReportsAWritePastTheEndOnFree) {
  SKIP_UNLESS_CHECKED();
  Canaries on;
  TestRegion r(256 * 1024);
  TreeAllocator a(r.block());
  Block b = a.allocate(Layout{100, 16});  // 4 granules: 28 bytes of canary
  ASSERT_EQ(b.size, 100u) << "the reported size ends where the canary begins";
  std::memset(b.ptr, 0x11, b.size);  // the whole block: fine
  EXPECT_TRUE(a.check_invariants());
  b.ptr[b.size + 3] ^= std::byte{0x42};  // one write past the end: always a change
  EXPECT_FALSE(a.check_invariants()) << "the invariant walk sees the broken canary";
  expect_misuse([&] { a.deallocate(b, 16); }, "write past the end of a block in tree.deallocate");
  EXPECT_EQ(a.stats().bytes_in_use, 0u) << "freed all the same: the overrun stayed in the block";
}

TEST(CheckedMode, TreeCanaryReportsAWritePastTheEndOnResize) {
  SKIP_UNLESS_CHECKED();
  Canaries on;
  TestRegion r(256 * 1024);
  TreeAllocator a(r.block());
  Block b = a.allocate(Layout{70, 16});  // 3 granules: 26 bytes of canary
  b.ptr[b.size] ^= std::byte{0xFF};      // not `= 0`: the canary byte there may be 0
  expect_misuse(
      [&] {
        (void)a.shrink(b, Layout{40, 16}, Move::forbidden);
      },
      "write past the end of a block in tree.shrink");
  Block c = a.allocate(Layout{70, 16});
  c.ptr[c.size + 20] ^= std::byte{0xFF};
  expect_misuse(
      [&] {
        (void)a.grow(c, Layout{90, 16}, Move::forbidden);
      },
      "write past the end of a block in tree.grow");
}

TEST(CheckedMode, ContextAllocatorCanaryReportsAWritePastTheEnd) {
  SKIP_UNLESS_CHECKED();
  Canaries on;
  TestRegion r(256 * 1024);
  ContextAllocator c(Lifetime::long_lived, r.block());  // a tree context
  Block b = c.allocate(Layout{200, 8});
  ASSERT_EQ(b.size, 200u);
  b.ptr[b.size] ^= std::byte{0x7F};
  expect_misuse([&] { c.deallocate(b, 8); }, "write past the end of a block in tree.deallocate");
}

// ------------------------------------------------------------ contexts

TEST(CheckedMode, ReallocatingABlockOfAReleasedContextIsReported) {
  expect_misuse(
      [] {
        Context* c = Context::create(Lifetime::medium, 8192);
        void* p = nullptr;
        {
          ContextScope s(*c);
          p = allocate(64);
        }
        c->release_all();
        (void)reallocate(p, 128);
      },
      "use of a released context in context.reallocate");
}

TEST(CheckedMode, ReallocatingAContextBlockOnAnotherThreadIsReported) {
  Context* c = Context::create(Lifetime::long_lived, 8192);
  void* p = nullptr;
  {
    ContextScope s(*c);
    p = allocate(64);
  }
  expect_misuse(
      [p] {
        std::thread t([p] { (void)reallocate(p, 128); });
        t.join();
      },
      "use on the wrong thread in context.reallocate");
  deallocate(p);
  c->release();
}

TEST(CheckedMode, ReleasingAContextOnAnotherThreadIsReported) {
  Context* c = Context::create(Lifetime::short_lived, 8192);
  expect_misuse(
      [c] {
        std::thread t([c] { c->release_all(); });
        t.join();
      },
      "use on the wrong thread in context.release");
  c->release_all();
}

// ------------------------------------------------------------ the memory tools

TEST(CheckedMode, BumpDoubleFreeOfABlockFreedOutOfOrderIsReportedUnderTheTools) {
  if (!detail::poisoning_active())
    GTEST_SKIP() << "needs AddressSanitizer or memcheck: a bump allocator keeps no record of "
                    "blocks freed out of order, only their poisoning does";
  TestRegion r(64 * 1024);
  BumpAllocator a(r.block());
  Block x = a.allocate(Layout{64, 8});
  Block y = a.allocate(Layout{64, 8});
  a.deallocate(x, 8);  // not the most recent: only counted (and poisoned)
  expect_misuse([&] { a.deallocate(x, 8); }, "double free in bump.deallocate");
  a.deallocate(y, 8);
}

}  // namespace
}  // namespace ctxalloc
