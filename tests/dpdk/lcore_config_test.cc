// The per-lcore allocators under a configuration other than the default
// (tests/dpdk/configs/lcore_short_chain.ini, through CTXALLOC_CONFIG): tree flow contexts
// of 64 KiB, the chain `context -> global` (the thread heap left out), lcore 1 without a
// thread allocator, and max_flows = 6. Each setting is checked where it shows: the
// contexts' kind and size, where spills land, the lcore's mode, the flow limit, the
// regions' sizes, and the C API's figures. Tests run in order: the last one tears down.
#include <gtest/gtest.h>
#include <rte_lcore.h>

#include <cstring>
#include <thread>
#include <vector>

#include "ctxalloc/dpdk/config.h"
#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/plugin.h"
#include "ctxalloc/dpdk/registry.h"
#include "ctxalloc/switchable/owner.h"
#include "ctxalloc_dpdk.h"
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
constexpr std::size_t kFlowBytes = 64 << 10;
constexpr unsigned kWorker = 1;

detail::LcoreHeap& heap_of(unsigned lcore) {
  return *detail::heap_of_lcore(lcore);
}

bool in_flow(const void* p, const Context* f) {
  const OwnerTag* tag = SegmentMap::lookup(p);
  return tag != nullptr && Context::of(p, tag) == f;
}

const detail::SocketHeap& socket_heap() {
  return *detail::lcore_runtime().sockets[0].load();
}

class ShortChain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(setup(), 0);
    ASSERT_NE(std::strstr(active_config()->source.c_str(), "lcore_short_chain.ini"), nullptr)
        << "CTXALLOC_CONFIG must name the test's file: " << active_config()->source;
  }
};

TEST_F(ShortChain, RegionsFollowTheConfiguredSizes) {
  const LcoreFigures main = lcore_figures(0);
  const LcoreFigures worker = lcore_figures(kWorker);
  ASSERT_TRUE(main.present && worker.present);
  // lcore 0: thread_size 4M + 2 ready blocks of 64K (one segment); lcore 1: no thread
  // allocator, the ready blocks' segment only.
  EXPECT_EQ(main.region_bytes, 8 * kMiB);
  EXPECT_EQ(worker.region_bytes, 4 * kMiB);
  EXPECT_TRUE(main.thread_mode);
  EXPECT_FALSE(worker.thread_mode);
  EXPECT_EQ(main.context_bytes, kFlowBytes);
  EXPECT_EQ(socket_figures(0).region_bytes, 8 * kMiB);
  EXPECT_EQ(Registry::instance().socket(0).normal_page_bytes.load(), 20 * kMiB);
}

TEST_F(ShortChain, AnLcoreWithoutAThreadAllocatorRunsOnTheGlobalHeap) {
  const std::uint64_t global_allocs = socket_figures(0).heap.allocations;
  on_lcore(kWorker, [] {
    ASSERT_EQ(bind_lcore(), 0);
    EXPECT_EQ(current_mode(), Mode::global) << "thread_allocator = none";
    void* p = ctxalloc::allocate(200);
    ASSERT_NE(p, nullptr);
    const OwnerTag* tag = SegmentMap::lookup(p);
    ASSERT_NE(tag, nullptr);
    EXPECT_EQ(tag->kind, owner_kind::global_heap);
    EXPECT_TRUE(socket_heap().region.contains(p));
    ctxalloc::deallocate(p);
  });
  EXPECT_EQ(socket_figures(0).heap.allocations, global_allocs + 1);
  EXPECT_EQ(lcore_figures(kWorker).thread.allocations, 0u);
  // Its flow contexts still come from its own arena, as configured.
  on_lcore(kWorker, [] {
    Context* f = make_flow_context();
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->kind(), ContextKind::tree) << "flows kind = tree";
    EXPECT_EQ(f->bytes(), kFlowBytes);
    EXPECT_EQ(f->heap(), &heap_of(kWorker).heap);
    EXPECT_TRUE(heap_of(kWorker).region.contains(f));
    EXPECT_EQ(release_flow_context(f), 0);
  });
}

// context -> global: a full flow spills onto the global heap's memory, never onto the
// thread's segments, and fails (counted) once the global heap is spent.
TEST_F(ShortChain, AFullFlowSpillsToTheGlobalHeapOnlyThenFails) {
  constexpr std::size_t kBlock = 128 << 10;
  const LcoreFigures before = lcore_figures(0);
  ASSERT_EQ(bind_lcore(), 0);
  Context* f = make_flow_context();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->kind(), ContextKind::tree);
  std::vector<void*> got;
  {
    FlowScope in(*f);
    for (int i = 0; i < 200; ++i) {  // 25 MiB: more than the 8 MiB global heap
      void* p = ctxalloc::allocate(kBlock);
      if (p == nullptr) break;
      got.push_back(p);
    }
  }
  ASSERT_GT(got.size(), 1u);
  EXPECT_LT(got.size(), 200u) << "the chain ends at the global heap";
  std::size_t on_global = 0;
  for (void* p : got) {
    EXPECT_FALSE(heap_of(0).region.contains(p) && !in_flow(p, f)) << "not on the thread's";
    on_global += socket_heap().region.contains(p) ? 1 : 0;
  }
  EXPECT_GE(on_global, got.size() - 1) << "the first may fit in the context itself";
  const LcoreFigures mid = lcore_figures(0);
  EXPECT_EQ(mid.spills_to_thread, before.spills_to_thread) << "the chain skips the thread";
  EXPECT_GT(mid.spills_to_global, before.spills_to_global);
  EXPECT_EQ(mid.spill_failures - before.spill_failures, 1u);
  const LcoreCounts counts = Registry::instance().read_lcore_counts(0);
  EXPECT_EQ(counts.fallback_to_thread, mid.spills_to_thread);
  EXPECT_GE(counts.fallback_failures, 1u);
  EXPECT_EQ(release_flow_context(f), 0);
  EXPECT_EQ(lcore_figures(0).spilled_bytes, 0u);
  EXPECT_EQ(lcore_figures(0).bytes_in_use, before.bytes_in_use);
}

// max_flows = 6 over the two lcores: a share of 3 each, each lcore counting its own (no
// shared counter); one lcore's full share leaves the other's alone.
TEST_F(ShortChain, MaxFlowsIsEnforcedThroughPerLcoreShares) {
  EXPECT_EQ(lcore_figures(0).flow_share, 3u);
  EXPECT_EQ(lcore_figures(kWorker).flow_share, 3u);
  const std::uint64_t worker_hits = lcore_figures(kWorker).flow_limit_hits;
  std::vector<Context*> worker_flows = on_lcore(kWorker, [] {
    std::vector<Context*> v;
    for (int i = 0; i < 4; ++i)
      v.push_back(make_flow_context());
    return v;
  });
  for (int i = 0; i < 3; ++i)
    ASSERT_NE(worker_flows[i], nullptr);
  EXPECT_EQ(worker_flows[3], nullptr) << "the worker's share is 3";
  worker_flows.pop_back();
  EXPECT_EQ(lcore_figures(kWorker).flow_limit_hits, worker_hits + 1);
  Context* a = make_flow_context();
  Context* b = make_flow_context();
  Context* d = make_flow_context();
  ASSERT_NE(a, nullptr) << "lcore 0's share is untouched by the worker's";
  ASSERT_NE(b, nullptr);
  ASSERT_NE(d, nullptr);
  const std::uint64_t hits = lcore_figures(0).flow_limit_hits;
  EXPECT_EQ(make_flow_context(), nullptr) << "max_flows = 6: 3 per lcore";
  EXPECT_EQ(lcore_figures(0).flow_limit_hits, hits + 1);
  EXPECT_EQ(release_flow_context(a), 0);
  Context* c = make_flow_context();
  EXPECT_NE(c, nullptr) << "a released flow makes room";
  EXPECT_EQ(release_flow_context(b), 0);
  EXPECT_EQ(release_flow_context(c), 0);
  EXPECT_EQ(release_flow_context(d), 0);
  on_lcore(kWorker, [&] {
    for (Context* w : worker_flows)
      EXPECT_EQ(release_flow_context(w), 0);
  });
  EXPECT_EQ(lcore_figures(0).contexts_live + lcore_figures(kWorker).contexts_live, 0u);
}

// The C API on the worker: a flow entered and left, malloc inside it, the figures.
TEST_F(ShortChain, TheCApiMakesEntersAndReleasesFlows) {
  const std::uint64_t made = lcore_figures(kWorker).contexts_made;
  on_lcore(kWorker, [] {
    ASSERT_EQ(ctxalloc_dpdk_lcore_bind(), 0);
    struct ctxalloc_dpdk_flow* flow = ctxalloc_dpdk_flow_create();
    ASSERT_NE(flow, nullptr);
    struct ctxalloc_dpdk_scope saved;
    ASSERT_EQ(ctxalloc_dpdk_flow_enter(flow, &saved), 0);
    void* p = ctxalloc_dpdk_malloc(100);
    void* q = ctxalloc_dpdk_aligned_alloc(256, 1000);
    ctxalloc_dpdk_flow_leave(&saved);
    ASSERT_NE(p, nullptr);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(q) % 256, 0u);
    auto* ctx = reinterpret_cast<Context*>(flow);
    EXPECT_TRUE(in_flow(p, ctx));
    EXPECT_EQ(ctx->live_blocks(), 2u);
    ctxalloc_dpdk_free(p);
    EXPECT_EQ(ctx->live_blocks(), 1u);
    EXPECT_EQ(current_mode(), Mode::global) << "left: back to the lcore's own mode";
    EXPECT_EQ(ctxalloc_dpdk_flow_enter(nullptr, &saved), -EINVAL);
    EXPECT_EQ(ctxalloc_dpdk_flow_release(flow), 0) << "q goes with it";
    EXPECT_EQ(ctxalloc_dpdk_flow_release(nullptr), -EINVAL);
  });
  struct ctxalloc_dpdk_lcore_info info;
  ASSERT_EQ(ctxalloc_dpdk_lcore_info(kWorker, &info), 0);
  EXPECT_EQ(info.present, 1);
  EXPECT_EQ(info.thread_mode, 0);
  EXPECT_EQ(info.memory, CTXALLOC_DPDK_MEMORY_NORMAL_PAGES);
  EXPECT_EQ(info.contexts_made, made + 1);
  EXPECT_EQ(info.contexts_live, 0u);
  EXPECT_EQ(info.region_bytes, 4 * kMiB);
  EXPECT_EQ(ctxalloc_dpdk_lcore_info(128, &info), -EINVAL);
  struct ctxalloc_dpdk_socket_info s;
  ASSERT_EQ(ctxalloc_dpdk_socket_info(0, &s), 0);
  EXPECT_EQ(s.present, 1);
  EXPECT_EQ(s.lcores, 2u);
  EXPECT_EQ(s.region_bytes, 8 * kMiB);
  ASSERT_EQ(ctxalloc_dpdk_socket_info(1, &s), 0);
  EXPECT_EQ(s.present, 0);
  struct ctxalloc_dpdk_placement p;
  ASSERT_EQ(ctxalloc_dpdk_lcore_placement(kWorker, &p), 0);
  EXPECT_EQ(p.pages * p.page_size, 4 * kMiB);
  EXPECT_EQ(p.local_pages + p.absent_pages + p.remote_pages, p.pages);
  EXPECT_EQ(p.remote_pages, 0u);
  ASSERT_EQ(ctxalloc_dpdk_socket_placement(0, &p), 0);
  EXPECT_EQ(p.pages * p.page_size, 8 * kMiB);
  EXPECT_EQ(ctxalloc_dpdk_socket_placement(1, &p), -ENODEV);
  EXPECT_EQ(p.pages, 0u);
  EXPECT_EQ(ctxalloc_dpdk_lcore_placement(0, nullptr), -EINVAL);
}

// A thread registered with EAL after set-up (rte_thread_register) gets a heap from the
// lcore callback, made on that thread, with [lcore.default]'s settings; unregistering
// unbinds it (the heap stays until tear-down).
TEST_F(ShortChain, AThreadRegisteredLaterGetsItsOwnHeap) {
  unsigned id = RTE_MAX_LCORE;
  std::thread([&] {
    ASSERT_EQ(rte_thread_register(), 0);
    id = rte_lcore_id();
    const LcoreFigures f = lcore_figures(id);
    ASSERT_TRUE(f.present) << "lcore " << id << " on socket " << rte_lcore_to_socket_id(id);
    EXPECT_TRUE(f.thread_mode);
    EXPECT_EQ(f.region_bytes, 8 * kMiB) << "tree of 4 MiB + the ready blocks' segment";
    Context* c = make_flow_context();
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->heap(), &heap_of(id).heap);
    {
      FlowScope in(*c);
      EXPECT_TRUE(in_flow(ctxalloc::allocate(100), c));
    }
    void* p = ctxalloc::allocate(100);  // thread mode: its own heap
    EXPECT_TRUE(heap_of(id).region.contains(p));
    ctxalloc::deallocate(p);
    EXPECT_EQ(release_flow_context(c), 0);
    EXPECT_TRUE(lcore_figures(id).bound);
    rte_thread_unregister();
    EXPECT_FALSE(lcore_figures(id).bound) << "the uninit callback unbound it";
  }).join();
  ASSERT_NE(id, static_cast<unsigned>(RTE_MAX_LCORE));
  EXPECT_NE(id, 0u);
  EXPECT_NE(id, kWorker);
  EXPECT_TRUE(lcore_figures(id).present);
  EXPECT_EQ(lcore_figures(id).bytes_in_use, 0u);
}

TEST_F(ShortChain, TearDownReturnsTheConfiguredBytes) {
  struct ctxalloc_dpdk_teardown r;
  ASSERT_EQ(ctxalloc_dpdk_fini(&r), 0);
  EXPECT_EQ(r.lcores, 3u) << "0, 1 and the registered thread's";
  EXPECT_EQ(r.sockets, 1u);
  EXPECT_EQ(r.live_bytes, 0u);
  EXPECT_EQ(r.bytes_returned, 28 * kMiB);
  EXPECT_EQ(Registry::instance().socket(0).normal_page_bytes.load(), 0u);
  EXPECT_FALSE(lcore_figures(0).present);
}

}  // namespace
}  // namespace ctxalloc::dpdk
