// What a growing flow's `[flows] spill` does once the lcore's growth memory is spent
// (tests/dpdk/configs/lcore_spill_{refuse,thread,global}.ini: 4 MiB of growth memory, an
// 8 MiB thread allocator, no flow budget; one binary, run once per file). A flow asks for
// 8 KiB large blocks, far beyond the growth memory:
//   refuse: served from the growth memory, then refused (counted as memory), nothing from
//           the thread allocator or the global heap;
//   thread: then from the lcore's thread allocator (still the lcore's region), then refused;
//   global: then from the socket's global heap (outside the lcore's region), never refused.
// In every case every served block keeps its bytes and release gives everything back.
#include <gtest/gtest.h>
#include <rte_lcore.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "ctxalloc/dpdk/config.h"
#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/plugin.h"
#include "ctxalloc/switchable/growing_context.h"
#include "detail/lcore_heaps.h"
#include "dpdk/eal_env.h"
#include "dpdk/lcore_run.h"

namespace ctxalloc::dpdk {
namespace {

using ctxalloc::testing::EalEnvironment;
using ctxalloc::testing::on_lcore;

[[maybe_unused]] ::testing::Environment* const g_eal =
    ::testing::AddGlobalTestEnvironment(new EalEnvironment(EalEnvironment::default_args("0-1")));

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kBlock = 8192;  // above large_block (4 KiB): a large block each
constexpr unsigned kWorker = 1;
// 40 MiB of requests: beyond the growth memory, the thread allocator and both together,
// within the 32 MiB global heap plus what the lcore has.
constexpr int kRequests = static_cast<int>(40 * kMiB / kBlock);

bool in_region(const void* p) {
  return detail::heap_of_lcore(kWorker)->region.contains(p);
}

class Spill : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const unsigned flow_lcores[] = {kWorker};
    ASSERT_EQ(set_flow_lcores(flow_lcores, 1), 0);
    ASSERT_EQ(setup(), 0);
    ASSERT_TRUE(active_config()->flows.growing());
    ASSERT_EQ(active_config()->flows.growth_size, 4 * kMiB);
    ASSERT_EQ(active_config()->flows.budget, 0u) << "no budget: memory decides";
  }
};

TEST_F(Spill, TheConfiguredSpillDecidesOnceTheGrowthMemoryIsSpent) {
  const FlowSpill spill = active_config()->flows.spill;
  on_lcore(kWorker, [spill] {
    const LcoreFigures before = lcore_figures(kWorker);
    Context* flow = make_flow_context();
    ASSERT_NE(flow, nullptr);
    ASSERT_TRUE(flow->growing());
    std::vector<unsigned char*> served;
    int in_lcore = 0;
    int outside = 0;
    int refused_at = -1;
    {
      FlowScope in(*flow);
      for (int i = 0; i < kRequests; ++i) {
        auto* p = static_cast<unsigned char*>(ctxalloc::allocate(kBlock));
        if (p == nullptr) {
          refused_at = i;
          break;
        }
        std::memset(p, i & 0xff, kBlock);
        (in_region(p) ? in_lcore : outside) += 1;
        served.push_back(p);
      }
    }
    const LcoreFigures full = lcore_figures(kWorker);
    EXPECT_TRUE(flow->as_growing().check_invariants().ok);
    for (std::size_t i = 0; i < served.size(); ++i) {
      ASSERT_EQ(served[i][0], static_cast<unsigned char>(i & 0xff)) << "block " << i;
      ASSERT_EQ(served[i][kBlock - 1], static_cast<unsigned char>(i & 0xff)) << "block " << i;
    }
    // The growth memory (4 MiB) served the first blocks in every case.
    EXPECT_GE(in_lcore, static_cast<int>(3 * kMiB / kBlock));
    switch (spill) {
      case FlowSpill::refuse:
        ASSERT_GE(refused_at, 0) << "refuse: the growth memory bounds the flow";
        EXPECT_LE(served.size() * kBlock, 4 * kMiB) << "no more than the growth memory";
        EXPECT_EQ(outside, 0);
        EXPECT_EQ(full.spills_to_thread, before.spills_to_thread);
        EXPECT_EQ(full.spills_to_global, before.spills_to_global);
        EXPECT_EQ(full.refused_memory, before.refused_memory + 1) << "the refusal is counted";
        break;
      case FlowSpill::thread:
        ASSERT_GE(refused_at, 0) << "thread: the growth memory and thread allocator bound it";
        EXPECT_GT(served.size() * kBlock, 4 * kMiB) << "the thread allocator served some";
        EXPECT_LE(served.size() * kBlock, (4 + 8) * kMiB);
        EXPECT_EQ(outside, 0) << "never the global heap";
        EXPECT_GT(full.spills_to_thread, before.spills_to_thread);
        EXPECT_EQ(full.spills_to_global, before.spills_to_global);
        EXPECT_GT(full.refused_memory + full.spill_failures,
                  before.refused_memory + before.spill_failures)
            << "the refusal is counted";
        break;
      case FlowSpill::global:
        EXPECT_EQ(refused_at, -1) << "global: the socket's heap serves the rest";
        EXPECT_GT(outside, 0) << "blocks from the global heap, outside the lcore's region";
        EXPECT_GT(full.spills_to_global, before.spills_to_global);
        EXPECT_GT(full.spilled_bytes, 0u);
        break;
    }
    EXPECT_EQ(release_flow_context(flow), 0);
    const LcoreFigures after = lcore_figures(kWorker);
    EXPECT_EQ(after.contexts_live, 0u);
    EXPECT_EQ(after.chunk_bytes, 0u);
    EXPECT_EQ(after.large_bytes, 0u);
    EXPECT_EQ(after.spilled_bytes, 0u) << "spilled blocks go with the flow";
    EXPECT_TRUE(detail::heap_of_lcore(kWorker)->heap.flow_chunks().check_invariants().ok);
    // The memory came back: a new flow is served from the growth memory again.
    Context* again = make_flow_context();
    ASSERT_NE(again, nullptr);
    {
      FlowScope in(*again);
      void* p = ctxalloc::allocate(kBlock);
      EXPECT_NE(p, nullptr);
      EXPECT_TRUE(in_region(p));
    }
    EXPECT_EQ(release_flow_context(again), 0);
  });
}

TEST_F(Spill, TearDownReturnsEverything) {
  TeardownReport r;
  ASSERT_EQ(teardown(&r), 0);
  EXPECT_EQ(r.live_bytes, 0u);
  EXPECT_EQ(r.live_contexts, 0u);
}

}  // namespace
}  // namespace ctxalloc::dpdk
