// What a one-node machine cannot show (docs/sources.md, "What this one-node machine
// cannot exercise"), on two real nodes: each policy puts pages where it says, moving
// migrates them, strict refuses misplaced pages, hugetlb pages come from the bound
// node's pool, and the switchable runtime gives each node its own global heap and each
// thread a heap on its node, with frees from the other node going back to the owner.
// Skips with its reason on a machine without two nodes (scripts/numa_guest.sh boots one).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "ctxalloc/sources/mmap_source.h"
#include "ctxalloc/switchable/switchable.h"
#include "two_node.h"

namespace ctxalloc {
namespace {

using testing::all_on;
using testing::describe;
using testing::nodes_of;
using testing::on_node;

constexpr std::size_t kMiB = 1024 * 1024;

Block populated(MemoryMapSource& s, std::size_t bytes) {
  const Block b = s.obtain(bytes);
  EXPECT_TRUE(b) << s.last_error().message();
  return b;
}

TEST(TwoNodes, BindPutsEveryPageOnTheBoundNodeWhicheverCpuFaultsIt) {
  CTXALLOC_REQUIRE_TWO_NODES();
  for (unsigned node : {0U, 1U}) {
    // Faulted in from the other node's CPU: the policy decides, not locality.
    on_node(1 - node, [&] {
      MapOptions o;
      o.numa = NumaPolicy::bind_to(node);
      o.populate = true;
      MemoryMapSource s(o);
      const Block b = populated(s, 4 * kMiB);
      ASSERT_TRUE(b);
      EXPECT_TRUE(all_on(b.ptr, b.size, static_cast<int>(node)))
          << describe(nodes_of(b.ptr, b.size));
      s.release(b);
    });
  }
}

TEST(TwoNodes, LocalAndDefaultFollowTheFaultingCpu) {
  CTXALLOC_REQUIRE_TWO_NODES();
  for (unsigned node : {0U, 1U}) {
    on_node(node, [&] {
      for (NumaPolicy p : {NumaPolicy::local(), NumaPolicy{}}) {
        MapOptions o;
        o.numa = p;
        o.populate = true;
        MemoryMapSource s(o);
        const Block b = populated(s, 2 * kMiB);
        ASSERT_TRUE(b);
        EXPECT_TRUE(all_on(b.ptr, b.size, static_cast<int>(node)))
            << to_string(p.mode) << ": " << describe(nodes_of(b.ptr, b.size));
        s.release(b);
      }
    });
  }
}

TEST(TwoNodes, InterleaveSpreadsPagesEvenlyOverBothNodes) {
  CTXALLOC_REQUIRE_TWO_NODES();
  MapOptions o;
  o.numa = NumaPolicy::interleave_over(NodeMask{0, 1});
  o.populate = true;
  MemoryMapSource s(o);
  // 1 MiB: too small for a transparent hugepage, whose 2 MiB would be one interleave unit.
  const Block b = populated(s, 1 * kMiB);
  ASSERT_TRUE(b);
  const auto m = nodes_of(b.ptr, b.size);
  // 256 pages (and the last byte's), alternating by page offset: half on each, give or
  // take a page.
  ASSERT_EQ(m.size(), 2u) << describe(m);
  EXPECT_NEAR(static_cast<double>(m.at(0)), 128.0, 2.0) << describe(m);
  EXPECT_NEAR(static_cast<double>(m.at(1)), 128.0, 2.0) << describe(m);
  s.release(b);
}

TEST(TwoNodes, PreferredPutsPagesOnItsNodeWhenThereIsRoom) {
  CTXALLOC_REQUIRE_TWO_NODES();
  on_node(0, [&] {
    MapOptions o;
    o.numa = NumaPolicy::preferred_node(1);
    o.populate = true;
    MemoryMapSource s(o);
    const Block b = populated(s, 2 * kMiB);
    ASSERT_TRUE(b);
    EXPECT_TRUE(all_on(b.ptr, b.size, 1)) << describe(nodes_of(b.ptr, b.size));
    s.release(b);
  });
}

TEST(TwoNodes, MoveMigratesPopulatedPagesAndKeepsTheirBytes) {
  CTXALLOC_REQUIRE_TWO_NODES();
  MapOptions o;
  o.numa = NumaPolicy::bind_to(0);
  o.populate = true;
  MemoryMapSource s(o);
  const Block b = populated(s, 2 * kMiB);
  ASSERT_TRUE(b);
  for (std::size_t i = 0; i < b.size; ++i)
    b.ptr[i] = static_cast<std::byte>(i * 7);
  ASSERT_TRUE(all_on(b.ptr, b.size, 0)) << describe(nodes_of(b.ptr, b.size));

  NumaPolicy to1 = NumaPolicy::bind_to(1);
  to1.strict = true;
  // Strict without move: the pages are on node 0, the policy says node 1: EIO, no move.
  const SourceError refused = apply_numa_policy(b.ptr, b.size, to1);
  EXPECT_EQ(refused.code(), SourceErrc::policy_failed) << refused.message();
  EXPECT_EQ(refused.sys_errno(), EIO) << refused.message();
  EXPECT_TRUE(all_on(b.ptr, b.size, 0)) << describe(nodes_of(b.ptr, b.size));

  to1.move = true;
  const SourceError moved = apply_numa_policy(b.ptr, b.size, to1);
  EXPECT_TRUE(moved.ok()) << moved.message();
  EXPECT_TRUE(all_on(b.ptr, b.size, 1)) << describe(nodes_of(b.ptr, b.size));
  bool same = true;
  for (std::size_t i = 0; i < b.size; ++i)
    same = same && b.ptr[i] == static_cast<std::byte>(i * 7);
  EXPECT_TRUE(same) << "moving pages keeps their bytes";
  s.release(b);
}

TEST(TwoNodes, HugetlbPagesComeFromTheBoundNodesPool) {
  CTXALLOC_REQUIRE_TWO_NODES();
  for (unsigned node : {0U, 1U}) {
    const testing::NodeHugepages before = testing::node_hugepages(node);
    const testing::NodeHugepages other = testing::node_hugepages(1 - node);
    if (before.free < 2)
      GTEST_SKIP() << "node " << node << " has " << before.free << " free 2 MiB hugepages";
    on_node(1 - node, [&] {
      MapOptions o;
      o.huge = HugePages::size_2m;
      o.fallback = HugeFallback::fail;
      o.numa = NumaPolicy::bind_to(node);
      o.populate = true;
      MemoryMapSource s(o);
      const Block b = populated(s, 4 * kMiB);
      ASSERT_TRUE(b);
      EXPECT_TRUE(all_on(b.ptr, b.size, static_cast<int>(node), 2 * kMiB))
          << describe(nodes_of(b.ptr, b.size, 2 * kMiB));
      EXPECT_EQ(testing::node_hugepages(node).free, before.free - 2) << "node " << node;
      EXPECT_EQ(testing::node_hugepages(1 - node).free, other.free) << "the other node's pool";
      s.release(b);
    });
    EXPECT_EQ(testing::node_hugepages(node).free, before.free) << "given back to node " << node;
  }
}

TEST(TwoNodes, EachNodeHasItsOwnGlobalHeapOnItsOwnMemory) {
  CTXALLOC_REQUIRE_TWO_NODES();
  GlobalHeap* heaps[2] = {};
  for (unsigned node : {0U, 1U}) {
    on_node(node, [&] {
      heaps[node] = &current_global_heap();
      ModeScope global(Mode::global);
      std::vector<void*> blocks;
      for (std::size_t size = 16; size <= 256 * 1024; size *= 2) {
        void* p = allocate(size);
        ASSERT_NE(p, nullptr) << size;
        std::memset(p, 1, size);
        EXPECT_TRUE(all_on(p, size, static_cast<int>(node)))
            << size << " B on node " << node << "'s global heap: " << describe(nodes_of(p, size));
        blocks.push_back(p);
      }
      for (void* p : blocks)
        deallocate(p);
    });
  }
  EXPECT_NE(heaps[0], heaps[1]) << "one global heap per node";
}

TEST(TwoNodes, ThreadHeapsLiveOnTheirNodeAndRemoteFreesGoBackToTheOwner) {
  CTXALLOC_REQUIRE_TWO_NODES();
  constexpr int kBlocks = 256;
  std::vector<void*> blocks;
  std::uint64_t received_before = 0;
  ThreadHeap* owner = nullptr;
  // The owner allocates on node 1 and stays alive while node 0 frees its blocks.
  std::atomic<int> phase{0};
  std::thread owner_thread([&] {
    ASSERT_TRUE(testing::pin_to_node(1));
    ModeScope thread(Mode::thread);
    owner = current_thread_heap();
    ASSERT_NE(owner, nullptr);
    for (int i = 0; i < kBlocks; ++i) {
      const std::size_t size = 16 + (static_cast<std::size_t>(i) * 97) % 8000;
      void* p = allocate(size);
      ASSERT_NE(p, nullptr);
      std::memset(p, 2, size);
      EXPECT_TRUE(all_on(p, size, 1)) << size << " B: " << describe(nodes_of(p, size));
      blocks.push_back(p);
    }
    received_before = owner->stats().remote_received;
    phase = 1;
    while (phase.load() != 2)
      std::this_thread::yield();
    flush();  // drains what node 0 pushed back
    const ThreadHeapStats st = owner->stats();
    EXPECT_EQ(st.remote_received - received_before, static_cast<std::uint64_t>(kBlocks));
    EXPECT_EQ(st.total().bytes_in_use, 0u) << "every block back with its owner";
    // The owner's memory is reused for its next blocks, still on node 1.
    void* again = allocate(64);
    EXPECT_TRUE(all_on(again, 64, 1));
    deallocate(again);
  });
  while (phase.load() != 1)
    std::this_thread::yield();
  on_node(0, [&] {
    for (void* p : blocks)
      deallocate(p);
    flush();  // pushes the batched frees to their owner
  });
  phase = 2;
  owner_thread.join();
}

}  // namespace
}  // namespace ctxalloc
