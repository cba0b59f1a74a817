// The per-lcore allocators with growing flow contexts: the embedded default
// (config/default.ini: [flows] kind = growing, 1 KiB first chunks, 16 KiB budget, spill
// global, 16 MiB growth per lcore, 100,000 flows), EAL --no-huge on lcores 0-1, with
// lcore 1 named the only flow lcore (set_flow_lcores, as ctxfwd does). Checked where each
// setting shows: the share and the flow memory of each lcore, flows on the lcore's own
// first-chunk memory, growth and large blocks on its growth memory, the budget's counted
// refusal, the share's limit with no shared counter, and tear-down. Tests run in order:
// the last one tears down.
#include <gtest/gtest.h>
#include <rte_lcore.h>

#include <cerrno>
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
constexpr unsigned kWorker = 1;

detail::LcoreHeap& heap_of(unsigned lcore) {
  return *detail::heap_of_lcore(lcore);
}

// Whether p lies in the lcore's region (its thread, first-chunk and growth memory).
bool in_region(const void* p, unsigned lcore) {
  return heap_of(lcore).region.contains(p);
}

class Growing : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const unsigned bad[] = {kMaxLcores};
    ASSERT_EQ(set_flow_lcores(bad, 1), -EINVAL);
    ASSERT_EQ(set_flow_lcores(nullptr, 1), -EINVAL);
    const unsigned flow_lcores[] = {kWorker};
    ASSERT_EQ(set_flow_lcores(flow_lcores, 1), 0);
    ASSERT_EQ(setup(), 0);
    ASSERT_EQ(active_config()->source, "embedded:config/default.ini");
    ASSERT_TRUE(active_config()->flows.growing());
  }
};

TEST_F(Growing, TheFlowLcoreHoldsTheWholeShareAndItsFlowMemory) {
  EXPECT_EQ(set_flow_lcores(&kWorker, 1), -EBUSY) << "only before set-up";
  const LcoreFigures main = lcore_figures(0);
  const LcoreFigures worker = lcore_figures(kWorker);
  ASSERT_TRUE(main.present && worker.present);
  EXPECT_TRUE(worker.growing);
  EXPECT_EQ(main.flow_share, 0u) << "not a flow lcore";
  EXPECT_EQ(worker.flow_share, 100'000u) << "max_flows = 100000 over one flow lcore";
  // 100,000 first chunks of 1 KiB at 4,092 per segment: 25 segments.
  EXPECT_EQ(worker.first_chunk_bytes, 100 * kMiB);
  EXPECT_EQ(worker.growth_bytes, 16 * kMiB);
  EXPECT_EQ(worker.region_bytes, (12 + 100 + 16) * kMiB);
  EXPECT_EQ(main.region_bytes, 12 * kMiB) << "its thread allocator only";
  EXPECT_EQ(worker.context_bytes, 1024u) << "a flow's first chunk";
  EXPECT_EQ(worker.flow_segment_bytes, 0u) << "taken as flows come";
}

TEST_F(Growing, AnLcoreWithoutAShareMakesNoFlow) {
  const std::uint64_t hits = lcore_figures(0).flow_limit_hits;
  EXPECT_EQ(make_flow_context(), nullptr);
  EXPECT_EQ(lcore_figures(0).flow_limit_hits, hits + 1);
}

TEST_F(Growing, AFlowGrowsOnTheLcoresFlowMemoryWithinItsBudget) {
  on_lcore(kWorker, [] {
    Context* flow = make_flow_context();
    ASSERT_NE(flow, nullptr);
    ASSERT_TRUE(flow->growing());
    GrowingContext& g = flow->as_growing();
    EXPECT_EQ(g.heap(), &heap_of(kWorker).heap);
    EXPECT_EQ(g.held(), 1024u);
    EXPECT_TRUE(in_region(&g, kWorker));
    std::vector<void*> small;
    {
      FlowScope in(*flow);
      for (int i = 0; i < 20; ++i) {  // 20 x 200 B: beyond the first chunk, within budget
        void* p = ctxalloc::allocate(200);
        ASSERT_NE(p, nullptr);
        std::memset(p, i, 200);
        EXPECT_TRUE(in_region(p, kWorker));
        small.push_back(p);
      }
      void* big = ctxalloc::allocate(5000);  // above large_block (4 KiB): a large block
      ASSERT_NE(big, nullptr);
      EXPECT_TRUE(in_region(big, kWorker)) << "large blocks on the growth memory first";
    }
    EXPECT_GT(g.chunk_count(), 1u);
    EXPECT_LE(g.held(), 16u << 10);
    EXPECT_TRUE(g.check_invariants().ok);
    const LcoreFigures mid = lcore_figures(kWorker);
    EXPECT_EQ(mid.contexts_live, 1u);
    EXPECT_GT(mid.chunk_bytes, 1024u);
    EXPECT_GT(mid.large_bytes, 5000u - 1);
    EXPECT_EQ(mid.spills_to_thread + mid.spills_to_global, 0u) << "growth memory served it";
    // Beyond the budget: refused and counted, the flow keeps what it has.
    const std::uint64_t refused = mid.refused_budget;
    {
      FlowScope in(*flow);
      void* over = ctxalloc::allocate(12000);
      EXPECT_EQ(over, nullptr);
    }
    EXPECT_EQ(lcore_figures(kWorker).refused_budget, refused + 1);
    for (std::size_t i = 0; i < small.size(); ++i)
      EXPECT_EQ(static_cast<unsigned char*>(small[i])[199], static_cast<unsigned char>(i));
    EXPECT_EQ(release_flow_context(flow), 0);
    const LcoreFigures after = lcore_figures(kWorker);
    EXPECT_EQ(after.contexts_live, 0u);
    EXPECT_EQ(after.chunk_bytes, 0u);
    EXPECT_EQ(after.large_bytes, 0u);
    EXPECT_TRUE(heap_of(kWorker).heap.flow_chunks().check_invariants().ok);
  });
}

// The share is the lcore's own limit (its pool's context limit): no shared counter.
TEST_F(Growing, TheShareBoundsTheLcoresLiveFlows) {
  on_lcore(kWorker, [] {
    std::vector<Context*> flows;
    flows.reserve(100'000);
    for (int i = 0; i < 100'000; ++i) {
      Context* c = make_flow_context();
      ASSERT_NE(c, nullptr) << "flow " << i << " of the share";
      flows.push_back(c);
    }
    const LcoreFigures full = lcore_figures(kWorker);
    EXPECT_EQ(full.contexts_live, 100'000u);
    EXPECT_EQ(heap_of(kWorker).first_chunks.bytes_out(), full.first_chunk_bytes)
        << "the share's first chunks fill their memory, and only it";
    EXPECT_EQ(make_flow_context(), nullptr) << "the 100,001st";
    EXPECT_EQ(lcore_figures(kWorker).flow_limit_hits, full.flow_limit_hits + 1);
    EXPECT_EQ(lcore_figures(kWorker).refused_memory, full.refused_memory) << "not for memory";
    EXPECT_EQ(release_flow_context(flows.back()), 0);
    flows.pop_back();
    Context* again = make_flow_context();
    EXPECT_NE(again, nullptr) << "a released flow makes room";
    if (again != nullptr) flows.push_back(again);
    for (Context* c : flows)
      EXPECT_EQ(release_flow_context(c), 0);
    EXPECT_EQ(lcore_figures(kWorker).contexts_live, 0u);
    EXPECT_EQ(lcore_figures(kWorker).peak_contexts, 100'000u);
  });
}

TEST_F(Growing, TearDownReturnsEverything) {
  TeardownReport r;
  ASSERT_EQ(teardown(&r), 0);
  EXPECT_EQ(r.live_bytes, 0u);
  EXPECT_EQ(r.live_contexts, 0u);
  EXPECT_EQ(r.bytes_returned, (12 + 128 + 32) * kMiB) << "lcore 0, lcore 1, the global heap";
}

}  // namespace
}  // namespace ctxalloc::dpdk
