// Regression tests for the bugs the fuzzers and stress tests of docs/hardening.md found,
// one per bug, named after it. The inputs that found them stay in fuzz/corpus/ too.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc {
namespace {

// switchable_fuzz, fuzz/corpus/switchable/crash-bump-context-reallocate-old-block.bin:
// in a bump (short-lived) context, reallocate() of a live block older than the most
// recent one was reported as a double free (the bump allocator knows only its most
// recent block's size) and returned null. It now moves the block, contents intact.
TEST(HardeningRegressions, ReallocateOfAnOlderBlockInABumpContextMovesIt) {
  Context* c = Context::create(Lifetime::short_lived, 8192);
  ASSERT_NE(c, nullptr);
  const std::uint64_t misuses = misuse_count();
  {
    ContextScope s(*c);
    auto* a = static_cast<unsigned char*>(allocate(40));
    auto* b = static_cast<unsigned char*>(allocate(40));  // a is no longer the most recent
    ASSERT_TRUE(a && b);
    for (int i = 0; i < 40; ++i) {
      a[i] = static_cast<unsigned char>(i);
      b[i] = static_cast<unsigned char>(100 + i);
    }
    auto* g = static_cast<unsigned char*>(reallocate(a, 300));
    ASSERT_NE(g, nullptr);
    EXPECT_NE(g, a) << "moved: a bump block can only grow in place when it is the most recent";
    for (int i = 0; i < 40; ++i) {
      ASSERT_EQ(g[i], i) << "contents kept";
      ASSERT_EQ(b[i], 100 + i) << "the neighbour untouched";
    }
    auto* s2 = static_cast<unsigned char*>(reallocate(b, 10));  // older than g now
    ASSERT_NE(s2, nullptr);
    for (int i = 0; i < 10; ++i)
      ASSERT_EQ(s2[i], 100 + i);
    deallocate(g);
    deallocate(s2);
  }
  EXPECT_EQ(misuse_count(), misuses) << "no misuse reported";
  c->release_all();
}

// dpdk_lcore PerLcore.RandomizedFlowsWithFreesFromTheOtherLcore under ASan: a block freed
// on another thread travels to its owner linked through its first word, but a bump
// context handed out blocks of exactly the size asked, 1-byte aligned when asked, so a
// remote free of a 1-byte block overwrote the seven bytes after it -- its neighbours.
// Every block of a context now has an aligned word of its own.
TEST(HardeningRegressions, ARemoteFreeOfATinyBumpContextBlockLeavesItsNeighboursIntact) {
  Context* c = Context::create(Lifetime::short_lived, 8192);
  ASSERT_NE(c, nullptr);
  const std::uint64_t misuses = misuse_count();
  constexpr int kBlocks = 64;
  unsigned char* blocks[kBlocks];
  {
    ContextScope s(*c);
    for (int i = 0; i < kBlocks; ++i) {
      blocks[i] = static_cast<unsigned char*>(allocate(1 + i % 3, 1));
      ASSERT_NE(blocks[i], nullptr);
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(blocks[i]) % alignof(void*), 0u) << i;
      if (i > 0) {
        ASSERT_GE(blocks[i] - blocks[i - 1], static_cast<std::ptrdiff_t>(sizeof(void*)));
      }
      std::memset(blocks[i], 0xC0 + i % 16, 1 + i % 3);
    }
  }
  std::thread other([&] {  // every other block freed on another thread
    for (int i = 0; i < kBlocks; i += 2)
      deallocate(blocks[i]);
    flush();
  });
  other.join();
  {
    ContextScope s(*c);
    flush();  // the owner takes the remote frees back
    for (int i = 1; i < kBlocks; i += 2) {
      for (int k = 0; k < 1 + i % 3; ++k)
        ASSERT_EQ(blocks[i][k], 0xC0 + i % 16) << "block " << i << " byte " << k;
      deallocate(blocks[i]);
    }
  }
  EXPECT_EQ(c->live_blocks(), 0u);
  EXPECT_EQ(misuse_count(), misuses) << "no misuse reported";
  c->release_all();
}

}  // namespace
}  // namespace ctxalloc
