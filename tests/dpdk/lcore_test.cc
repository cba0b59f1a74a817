// The per-lcore allocators (ctxalloc/dpdk/lcore.h) on two lcores with fixed bump flows
// (tests/dpdk/configs/lcore_fixed_bump.ini, the former embedded default), EAL --no-huge (so normal
// pages bound to the node, with a warning): set-up, each lcore's heap on its socket's memory,
// worker allocations served by the worker's heap, frees from another lcore going back to the owner,
// flow contexts, misuse, the regions' bit sets, randomized runs against models, and tear-down.
// Tests run in order: the last one tears down.
#include <gtest/gtest.h>
#include <rte_lcore.h>
#include <rte_memory.h>

#include <algorithm>
#include <cstring>
#include <memory_resource>
#include <random>
#include <thread>
#include <vector>

#include "ctxalloc/adaptors/current_resource.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/registry.h"
#include "ctxalloc/sources/numa_policy.h"
#include "ctxalloc/switchable/owner.h"
#include "ctxalloc_dpdk.h"
#include "detail/lcore_heaps.h"
#include "dpdk/eal_env.h"
#include "dpdk/lcore_run.h"
#include "support/misuse_test_helpers.h"
#include "support/random_driver.h"
#include "support/test_scale.h"

namespace ctxalloc {
template <>
struct TestPeer<dpdk::detail::SegmentRegion> {
  static void mark(dpdk::detail::SegmentRegion& r, std::size_t i) { r.set(i, 1, true); }
};
}  // namespace ctxalloc

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

const ThreadHeap* owner_heap(const void* p) {
  const OwnerTag* tag = SegmentMap::lookup(p);
  if (tag == nullptr) return nullptr;
  if (tag->kind != owner_kind::size_class && tag->kind != owner_kind::tree &&
      tag->kind != owner_kind::spill)
    return nullptr;
  return ThreadHeap::of_tag(tag);
}

class PerLcore : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(setup(), 0); }
};

TEST_F(PerLcore, SetUpBuildsAHeapPerLcoreAndPerSocket) {
  ASSERT_TRUE(is_set_up());
  EXPECT_EQ(setup(), 0) << "a second set-up does nothing";
  ASSERT_EQ(rte_eal_has_hugepages(), 0);
  for (unsigned l : {0u, kWorker}) {
    const LcoreFigures f = lcore_figures(l);
    ASSERT_TRUE(f.present) << l;
    EXPECT_EQ(f.socket, rte_lcore_to_socket_id(l));
    EXPECT_EQ(f.memory, Memory::normal_pages) << "EAL --no-huge, hugepages = prefer";
    // default.ini: thread_size 12M, 512 ready blocks of 16K (two 4 MiB segments).
    EXPECT_EQ(f.region_bytes, 20 * kMiB);
    EXPECT_EQ(f.context_bytes, 16u << 10);
    EXPECT_TRUE(f.thread_mode);
    EXPECT_EQ(f.contexts_live, 0u);
    EXPECT_EQ(f.segment_bytes, 8 * kMiB) << "the arena's slabs hold the ready blocks";
  }
  EXPECT_FALSE(lcore_figures(2).present) << "not an EAL lcore";
  const SocketFigures s = socket_figures(0);
  ASSERT_TRUE(s.present);
  EXPECT_EQ(s.region_bytes, 32 * kMiB);
  EXPECT_EQ(s.lcores, 2u);
  EXPECT_FALSE(socket_figures(1).present);
  const SocketCounters& c = Registry::instance().socket(0);
  EXPECT_EQ(c.normal_page_bytes.load(), 72 * kMiB) << "32M global + 2 x (12M + 8M)";
  EXPECT_EQ(c.hugepage_bytes.load(), 0u);
  EXPECT_GT(c.metadata_bytes.load(), 0u);
  EXPECT_EQ(Registry::instance().read_lcore(kWorker).sources, 2u);
  EXPECT_EQ(Registry::instance().read_socket(0)[Account::global_heap].capacity, 32 * kMiB);
  EXPECT_TRUE(heap_of(kWorker).region.check_invariants());
}

TEST_F(PerLcore, EachLcoresHeapIsOnItsSocketsMemory) {
  void* on_main = nullptr;
  ASSERT_EQ(bind_lcore(), 0);
  on_main = ctxalloc::allocate(100);
  void* on_worker = on_lcore(kWorker, [] {
    EXPECT_EQ(bind_lcore(), 0);
    EXPECT_EQ(current_mode(), Mode::thread);
    return ctxalloc::allocate(100);
  });
  ASSERT_NE(on_main, nullptr);
  ASSERT_NE(on_worker, nullptr);
  EXPECT_EQ(owner_heap(on_main), &heap_of(0).heap);
  EXPECT_EQ(owner_heap(on_worker), &heap_of(kWorker).heap);
  EXPECT_TRUE(heap_of(kWorker).region.contains(on_worker));
  EXPECT_FALSE(heap_of(0).region.contains(on_worker));
  for (void* p : {on_main, on_worker}) {
    // Normal pages: ours, not DPDK's memory; on the socket's node, bound there.
    EXPECT_EQ(rte_mem_virt2memseg(p, nullptr), nullptr);
    EXPECT_EQ(numa_node_of(p), static_cast<int>(rte_socket_id()));
    if (numa_supported()) {
      const NumaPolicyReadback pol = read_numa_policy(p);
      EXPECT_EQ(pol.mode, NumaMode::bind);
      EXPECT_TRUE(pol.nodes.test(rte_lcore_to_socket_id(kWorker)));
    }
  }
  // A thread that is no lcore allocates from its socket's global heap.
  void* global = nullptr;
  std::thread([&] { global = ctxalloc::allocate(100); }).join();
  ASSERT_NE(global, nullptr);
  const OwnerTag* tag = SegmentMap::lookup(global);
  ASSERT_NE(tag, nullptr);
  EXPECT_EQ(tag->kind, owner_kind::global_heap);
  EXPECT_EQ(tag->owner, &detail::lcore_runtime().sockets[0].load()->heap);
  ctxalloc::deallocate(global);
  on_lcore(kWorker, [&] { ctxalloc::deallocate(on_worker); });
  ctxalloc::deallocate(on_main);
}

// lcore_placement / socket_placement: every page of each region queried, all on the
// heap's own node here (normal pages, faulted in at set-up); what has no heap is -ENODEV.
TEST_F(PerLcore, PlacementCountsEveryPageOfEachRegionOnItsNode) {
  for (unsigned l : {0U, kWorker}) {
    Placement p;
    ASSERT_EQ(lcore_placement(l, &p), 0) << "lcore " << l;
    const LcoreFigures f = lcore_figures(l);
    EXPECT_EQ(p.node, f.socket);
    EXPECT_EQ(p.page_size, f.page_size);
    EXPECT_EQ(p.pages, f.region_bytes / f.page_size) << "lcore " << l;
    EXPECT_EQ(p.local_pages + p.remote_pages + p.absent_pages, p.pages);
    EXPECT_EQ(p.remote_pages, 0u);
    EXPECT_EQ(p.remote_node, -1);
    if (numa_supported()) {
      EXPECT_EQ(p.local_pages, p.pages) << "lcore " << l;
    }
  }
  Placement s;
  ASSERT_EQ(socket_placement(0, &s), 0);
  EXPECT_EQ(s.pages, socket_figures(0).region_bytes / socket_figures(0).page_size);
  EXPECT_EQ(s.remote_pages, 0u);
  Placement none;
  none.pages = 7;
  EXPECT_EQ(lcore_placement(kMaxLcores - 1, &none), -ENODEV);
  EXPECT_EQ(none.pages, 0u);
  EXPECT_EQ(socket_placement(1, &none), -ENODEV);
  EXPECT_EQ(socket_placement(kMaxSockets + 3, &none), -ENODEV);
  EXPECT_EQ(lcore_placement(0, nullptr), -EINVAL);
}

TEST_F(PerLcore, WorkerAllocationsAreServedByItsThreadHeap) {
  const LcoreFigures main_before = lcore_figures(0);
  const SocketFigures global_before = socket_figures(0);
  const LcoreFigures before = lcore_figures(kWorker);
  std::vector<void*> blocks = on_lcore(kWorker, [] {
    std::vector<void*> v;
    for (int i = 0; i < 1000; ++i)
      v.push_back(ctxalloc::allocate(64));
    for (int i = 0; i < 100; ++i)
      v.push_back(ctxalloc::allocate(8192));
    return v;
  });
  for (void* p : blocks)
    ASSERT_EQ(owner_heap(p), &heap_of(kWorker).heap);
  const LcoreFigures after = lcore_figures(kWorker);
  EXPECT_EQ(after.thread.allocations - before.thread.allocations, 1100u);
  EXPECT_GE(after.thread.bytes_in_use - before.thread.bytes_in_use, 1000u * 64 + 100u * 8192);
  EXPECT_EQ(lcore_figures(0).thread.allocations, main_before.thread.allocations);
  EXPECT_EQ(socket_figures(0).heap.allocations, global_before.heap.allocations);
  EXPECT_EQ(after.thread_to_global, 0u);
  on_lcore(kWorker, [&] {
    for (void* p : blocks)
      ctxalloc::deallocate(p);
  });
  EXPECT_EQ(lcore_figures(kWorker).thread.bytes_in_use, before.thread.bytes_in_use);
  on_lcore(kWorker, [] { EXPECT_TRUE(heap_of(kWorker).heap.check_invariants()); });
}

TEST_F(PerLcore, AContextMadeOnLcore1AndFreedOnLcore0GoesBackToLcore1) {
  struct Made {
    Context* flow;
    std::vector<void*> blocks;
  };
  const std::uint64_t received = lcore_figures(kWorker).remote_received;
  Made m = on_lcore(kWorker, [] {
    Made r{make_flow_context(), {}};
    EXPECT_NE(r.flow, nullptr);
    if (r.flow == nullptr) return r;
    FlowScope in(*r.flow);
    for (int i = 0; i < 40; ++i)
      r.blocks.push_back(ctxalloc::allocate(100));
    for (int i = 0; i < 3; ++i)  // 16 KiB contexts: the third spills
      r.blocks.push_back(ctxalloc::allocate(6000));
    return r;
  });
  ASSERT_NE(m.flow, nullptr);
  EXPECT_EQ(m.flow->live_blocks(), 43u);
  EXPECT_GE(m.flow->stats().spills, 1u);
  EXPECT_EQ(lcore_figures(kWorker).contexts_live, 1u);
  for (void* p : m.blocks) {
    const OwnerTag* tag = SegmentMap::lookup(p);
    ASSERT_NE(tag, nullptr);
    EXPECT_TRUE(tag->kind == owner_kind::context_arena || tag->kind == owner_kind::spill);
  }
  // Lcore 0 frees them: each goes back to lcore 1 (batched, pushed by flush()).
  for (void* p : m.blocks)
    ctxalloc::deallocate(p);
  ctxalloc::flush();
  EXPECT_EQ(lcore_figures(0).remote_received, 0u);
  on_lcore(kWorker, [&] {
    ctxalloc::flush();  // the owner drains what lcore 0 sent
    EXPECT_EQ(m.flow->live_blocks(), 0u);
    EXPECT_EQ(m.flow->stats().spilled_live, 0u);
    EXPECT_EQ(release_flow_context(m.flow), 0);
  });
  EXPECT_EQ(lcore_figures(kWorker).remote_received - received, 43u);
  EXPECT_EQ(lcore_figures(kWorker).contexts_live, 0u);
  EXPECT_EQ(lcore_figures(kWorker).spilled_bytes, 0u);
}

TEST_F(PerLcore, FlowsAreMadeAsConfiguredAndReleasedWhole) {
  const LcoreFigures before = lcore_figures(kWorker);
  on_lcore(kWorker, [] {
    std::vector<Context*> flows;
    for (int i = 0; i < 10; ++i) {
      Context* f = make_flow_context();
      ASSERT_NE(f, nullptr);
      EXPECT_EQ(f->kind(), ContextKind::bump) << "default.ini: kind = bump";
      EXPECT_EQ(f->bytes(), 16u << 10);
      EXPECT_EQ(f->heap(), &heap_of(kWorker).heap);
      flows.push_back(f);
    }
    for (Context* f : flows) {
      FlowScope in(*f);
      // Ordinary C++ in the flow: the vector outgrows 16 KiB and spills; release frees
      // it all, so the vector is left to leak on purpose (its memory dies with the flow).
      auto* v = new (ctxalloc::allocate(sizeof(std::pmr::vector<int>)))
          std::pmr::vector<int>(current_resource());
      for (int i = 0; i < 10000; ++i)
        v->push_back(i);
      EXPECT_EQ((*v)[9999], 9999);
    }
    EXPECT_EQ(lcore_figures(kWorker).contexts_live, 10u);
    // Spilled onto the thread's segments, or (once the earlier tests' small and medium
    // segments hold the 12 MiB) onto the global heap's memory.
    const LcoreFigures mid = lcore_figures(kWorker);
    EXPECT_GT(mid.spills_to_thread + mid.spills_to_global, 0u);
    for (Context* f : flows)
      EXPECT_EQ(release_flow_context(f), 0);
  });
  const LcoreFigures after = lcore_figures(kWorker);
  EXPECT_EQ(after.contexts_made - before.contexts_made, 10u);
  EXPECT_EQ(after.contexts_released - before.contexts_released, 10u);
  EXPECT_EQ(after.contexts_live, 0u);
  EXPECT_EQ(after.spilled_bytes, 0u);
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  EXPECT_EQ(after.spill_failures, 0u);
  // The registry's counters are the heap's: context -> thread fallbacks.
  const LcoreCounts counts = Registry::instance().read_lcore_counts(kWorker);
  EXPECT_EQ(counts.fallback_to_thread, after.spills_to_thread);
  EXPECT_EQ(counts.fallback_to_global, after.spills_to_global + after.thread_to_global);
  EXPECT_EQ(Registry::instance().read_lcore(kWorker)[Account::context].allocations,
            after.contexts_made);
}

// The chain of default.ini, context -> thread -> global, run dry on lcore 0 (whose thread
// heap earlier tests barely touched: a segment of it is still free): 256 KiB requests
// in one 16 KiB flow spill onto the thread's segments, then onto the global heap's
// memory, then fail; each step counted in the lcore's figures and the registry.
TEST_F(PerLcore, AnExhaustedFlowFallsBackToTheThreadThenTheGlobalHeapCounted) {
  constexpr std::size_t kBlock = 256 << 10;
  const LcoreFigures before = lcore_figures(0);
  const LcoreCounts counts_before = Registry::instance().read_lcore_counts(0);
  const detail::SocketHeap& socket = *detail::lcore_runtime().sockets[0].load();
  Context* f = make_flow_context();
  ASSERT_NE(f, nullptr);
  std::vector<void*> got;
  {
    FlowScope in(*f);
    for (int i = 0; i < 400; ++i) {  // 100 MiB: more than the lcore and the socket hold
      void* p = ctxalloc::allocate(kBlock);
      if (p == nullptr) break;
      std::memset(p, i & 0xff, kBlock);
      got.push_back(p);
    }
  }
  ASSERT_FALSE(got.empty());
  EXPECT_LT(got.size(), 400u) << "the chain ran dry";
  EXPECT_GE(got.size() * kBlock, 16 * kMiB);
  EXPECT_TRUE(heap_of(0).region.contains(got.front())) << "first onto the thread's segments";
  EXPECT_TRUE(socket.region.contains(got.back())) << "then onto the global heap's memory";
  for (std::size_t i = 0; i < got.size(); i += 7)
    EXPECT_EQ(static_cast<unsigned char*>(got[i])[kBlock - 1], i & 0xff) << i;
  const LcoreFigures mid = lcore_figures(0);
  EXPECT_GT(mid.spills_to_thread, before.spills_to_thread);
  EXPECT_GT(mid.spills_to_global, before.spills_to_global);
  EXPECT_EQ(mid.spill_failures - before.spill_failures, 1u) << "one refusal, then we stopped";
  EXPECT_GE(mid.spilled_bytes, got.size() * kBlock);  // the spill tree counts its classes
  const LcoreCounts counts = Registry::instance().read_lcore_counts(0);
  EXPECT_EQ(counts.fallback_to_thread - counts_before.fallback_to_thread,
            mid.spills_to_thread - before.spills_to_thread);
  EXPECT_EQ(counts.fallback_to_global - counts_before.fallback_to_global,
            mid.spills_to_global - before.spills_to_global);
  EXPECT_EQ(counts.fallback_failures - counts_before.fallback_failures, 1u);
  EXPECT_TRUE(f->check_invariants());
  EXPECT_EQ(release_flow_context(f), 0) << "spilled blocks go with the flow";
  const LcoreFigures after = lcore_figures(0);
  EXPECT_EQ(after.spilled_bytes, 0u);
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  EXPECT_TRUE(heap_of(0).heap.check_invariants());
}

TEST_F(PerLcore, TheFirstFlowContextBindsTheLcoreImplicitly) {
  ASSERT_EQ(unbind_lcore(), 0);
  EXPECT_FALSE(lcore_figures(0).bound);
  EXPECT_EQ(unbind_lcore(), -ENODEV) << "not bound any more";
  Context* f = make_flow_context();
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(lcore_figures(0).bound);
  EXPECT_EQ(current_mode(), Mode::thread);
  EXPECT_EQ(current_thread_heap(), &heap_of(0).heap);
  EXPECT_EQ(release_flow_context(f), 0);
}

TEST_F(PerLcore, ThreadsWithoutAnLcoreHeapGetNoFlowContexts) {
  std::thread([] {
    EXPECT_EQ(bind_lcore(), -ENODEV);
    EXPECT_EQ(unbind_lcore(), -ENODEV);
    EXPECT_EQ(make_flow_context(), nullptr);
    EXPECT_EQ(ctxalloc_dpdk_lcore_bind(), -ENODEV);
    EXPECT_EQ(ctxalloc_dpdk_flow_create(), nullptr);
    void* p = ctxalloc_dpdk_malloc(64);  // the socket's global heap
    EXPECT_EQ(SegmentMap::lookup(p)->kind, owner_kind::global_heap);
    ctxalloc_dpdk_free(p);
  }).join();
  EXPECT_EQ(release_flow_context(nullptr), -EINVAL);
}

TEST_F(PerLcore, ReleasingAFlowOnAnotherLcoreIsMisuseAndKeepsIt) {
  Context* f = on_lcore(kWorker, [] { return make_flow_context(); });
  ASSERT_NE(f, nullptr);
  testing::expect_misuse([&] { EXPECT_EQ(release_flow_context(f), -EPERM); },
                         "use on the wrong thread");
  EXPECT_EQ(lcore_figures(kWorker).contexts_live, 1u) << "still there";
  on_lcore(kWorker, [&] { EXPECT_EQ(release_flow_context(f), 0); });
  EXPECT_EQ(lcore_figures(kWorker).contexts_live, 0u);
  int on_stack = 0;
  testing::expect_misuse([&] { ctxalloc_dpdk_free(&on_stack); }, "foreign pointer");
}

// ------------------------------------------------------------------ the regions' bit sets

detail::RegionRequest pages(std::size_t segments) {
  detail::RegionRequest r;
  r.name = "test_region";
  r.bytes = segments * detail::SegmentRegion::kSegment;
  r.kind = detail::PageKind::normal_pages;
  return r;
}

TEST(SegmentRegion, HandsOutSegmentsFirstFitAndTakesThemBack) {
  detail::SegmentRegion r;
  const char* why = "";
  ASSERT_EQ(r.reserve(pages(8), &why), 0) << why;
  constexpr std::size_t kSeg = detail::SegmentRegion::kSegment;
  const Block a = r.obtain(kSeg);
  const Block b = r.obtain(2 * kSeg);
  const Block c = r.obtain(kSeg);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a.ptr, r.base());
  EXPECT_EQ(b.ptr, r.base() + kSeg);
  EXPECT_EQ(c.ptr, r.base() + 3 * kSeg);
  EXPECT_EQ(r.free_segments(), 4u);
  r.release(b);
  EXPECT_EQ(r.obtain(2 * kSeg).ptr, b.ptr) << "the hole fits";
  EXPECT_FALSE(r.obtain(5 * kSeg)) << "4 free, not 5";
  EXPECT_FALSE(r.obtain(kSeg + 1)) << "whole segments only";
  const Block d = r.obtain(4 * kSeg);
  EXPECT_EQ(d.ptr, r.base() + 4 * kSeg);
  EXPECT_EQ(r.free_segments(), 0u);
  EXPECT_TRUE(r.check_invariants());
  const char* again = "";
  EXPECT_EQ(r.reserve(pages(1), &again), -EINVAL);
  EXPECT_EQ(r.reserve(pages(0), &again), -EINVAL);
}

TEST(SegmentRegion, ARegionRefusesBadSizes) {
  detail::SegmentRegion r;
  const char* why = "";
  detail::RegionRequest bad = pages(1);
  bad.bytes += 4096;
  EXPECT_EQ(r.reserve(bad, &why), -EINVAL);
  EXPECT_EQ(r.reserve(pages(detail::SegmentRegion::kMaxSegments + 1), &why), -EINVAL);
  EXPECT_FALSE(r.reserved());
  EXPECT_FALSE(r.obtain(detail::SegmentRegion::kSegment)) << "nothing reserved";
}

TEST(SegmentRegion, CheckInvariantsFindsACorruptBitSet) {
  detail::SegmentRegion r;
  const char* why = "";
  ASSERT_EQ(r.reserve(pages(4), &why), 0);
  ASSERT_TRUE(r.obtain(detail::SegmentRegion::kSegment));
  EXPECT_TRUE(r.check_invariants());
  TestPeer<detail::SegmentRegion>::mark(r, 2);  // marked out, never counted
  const CheckResult c = r.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("2 segments marked out, 1 counted"), std::string::npos) << c.error();
}

TEST(SegmentRegion, ForeignAndDoubleReleasesAreMisuse) {
  detail::SegmentRegion r;
  const char* why = "";
  ASSERT_EQ(r.reserve(pages(2), &why), 0);
  const Block a = r.obtain(detail::SegmentRegion::kSegment);
  ASSERT_TRUE(a);
  r.release(a);
  testing::expect_misuse([&] { r.release(a); }, "double free");
  alignas(64) static std::byte outside[64];
  testing::expect_misuse([&] { r.release(Block{outside, sizeof outside}); }, "foreign pointer");
  EXPECT_EQ(r.free_segments(), 2u);
  EXPECT_TRUE(r.check_invariants());
}

// First fit against a model: every obtain lands where the model's first fit is, and no
// two blocks overlap.
TEST(SegmentRegion, RandomizedAgainstAModel) {
  constexpr std::size_t kSegs = 64;
  constexpr std::size_t kSeg = detail::SegmentRegion::kSegment;
  detail::SegmentRegion r;
  const char* why = "";
  ASSERT_EQ(r.reserve(pages(kSegs), &why), 0);
  std::vector<bool> taken(kSegs, false);
  std::vector<Block> held;
  std::mt19937_64 rng(7);
  const std::uint64_t n = ctxalloc::testing::scaled(1'000'000);
  for (std::uint64_t i = 0; i < n; ++i) {
    if (held.empty() || rng() % 2 == 0) {
      const std::size_t want = 1 + rng() % 4;
      std::size_t first = kSegs, run = 0;
      for (std::size_t s = 0; s < kSegs; ++s) {
        run = taken[s] ? 0 : run + 1;
        if (run == want) {
          first = s + 1 - want;
          break;
        }
      }
      const Block b = r.obtain(want * kSeg);
      if (first == kSegs) {
        ASSERT_FALSE(b) << i;
        continue;
      }
      ASSERT_TRUE(b) << i;
      ASSERT_EQ(b.ptr, r.base() + first * kSeg) << i;
      for (std::size_t s = first; s < first + want; ++s)
        taken[s] = true;
      held.push_back(b);
    } else {
      const std::size_t k = rng() % held.size();
      const Block b = held[k];
      held[k] = held.back();
      held.pop_back();
      r.release(b);
      const auto first = static_cast<std::size_t>(b.ptr - r.base()) / kSeg;
      for (std::size_t s = first; s < first + b.size / kSeg; ++s)
        taken[s] = false;
    }
    if (i % 4096 == 0) {
      ASSERT_TRUE(r.check_invariants()) << i;
    }
  }
  for (const Block& b : held)
    r.release(b);
  EXPECT_EQ(r.free_segments(), kSegs);
  EXPECT_TRUE(r.check_invariants());
}

// ------------------------------------------------------------------ randomized runs

// The lcore's allocator as the switchable API serves it on the bound lcore (thread mode),
// seen as an Allocator for the randomized driver.
class LcoreAllocator {
 public:
  explicit LcoreAllocator(detail::LcoreHeap& h) : h_(h) {}
  Block allocate(Layout l) noexcept { return block(ctxalloc::allocate(l.size, l.align)); }
  Block allocate_zeroed(Layout l) noexcept {
    const Block b = allocate(l);  // the whole usable size, as the Allocator concept says
    if (b.ptr != nullptr) std::memset(b.ptr, 0, b.size);
    return b;
  }
  void deallocate(Block b, std::size_t) noexcept { ctxalloc::deallocate(b.ptr); }
  Block grow(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }
  Block shrink(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }
  // Its heap's blocks, and what the heap passed to the socket's global heap when its
  // segments ran out (the fallback the configuration allows).
  bool contains(const void* p) const noexcept {
    const OwnerTag* tag = SegmentMap::lookup(p);
    if (tag == nullptr) return false;
    if (h_.heap.owns_tag(tag)) return true;
    return (tag->kind == owner_kind::global_heap || tag->kind == owner_kind::large) &&
           tag->owner == &h_.heap.global();
  }
  CheckResult check_invariants() const {
    if (CheckResult r = h_.heap.check_invariants(); !r) return r;
    return h_.region.check_invariants();
  }
  Stats stats() const noexcept {
    Stats s = h_.heap.stats().total();
    s += h_.heap.global().stats();
    return s;
  }

 private:
  static Block block(void* p) noexcept {
    return p == nullptr ? Block{} : Block{static_cast<std::byte*>(p), ctxalloc::usable_size(p)};
  }
  // The switchable API moves blocks as it must; a resize that must not move fails.
  Block resize(Block b, Layout l, Move m) noexcept {
    if (m == Move::forbidden) return Block{};
    return block(ctxalloc::reallocate(b.ptr, l.size, l.align));
  }
  detail::LcoreHeap& h_;
};
static_assert(Allocator<LcoreAllocator>);

TEST_F(PerLcore, RandomizedOnAnLcoresHeapAgainstTheReferenceModel) {
  on_lcore(kWorker, [] {
    ASSERT_EQ(bind_lcore(), 0);
    ASSERT_EQ(current_mode(), Mode::thread);
    LcoreAllocator a(heap_of(kWorker));
    const Stats start = a.stats();
    ctxalloc::testing::DriverOptions opt;
    opt.max_size = 16384;  // small and medium blocks: the thread heap's own
    opt.max_align = 4096;
    opt.exact_bytes = false;  // the heap counts class sizes; usable_size agrees, start != 0
    opt.exact_counts = false;
    // At most 1,024 live blocks (log-uniform sizes up to 16 KiB): the chain never runs
    // dry, so any failure is an error. (Left uncapped, the driver piles blocks up until
    // an allocation fails, and a chain's failure count is not exact: each tier that
    // refuses counts its own. Falling back to the global heap is tested on its own.)
    opt.max_live = 1024;
    ctxalloc::testing::RandomDriver<LcoreAllocator> d(a, opt);
    ASSERT_TRUE(d.run());
    ASSERT_TRUE(d.free_all());
    EXPECT_EQ(a.stats().bytes_in_use, start.bytes_in_use);
    EXPECT_EQ(a.stats().live_blocks(), start.live_blocks());
    EXPECT_EQ(d.report().failed_allocations, 0u);
  });
}

// Flows made, filled, partly freed from the other lcore, and released at random, rounds
// apart (a round on lcore 1, then lcore 0 frees what it was handed): at the end every
// byte is back.
TEST_F(PerLcore, RandomizedFlowsWithFreesFromTheOtherLcore) {
  struct Flow {
    Context* ctx;
    std::vector<void*> blocks;
    unsigned handed;  // blocks lcore 0 holds now: the flow must outlive their frees
  };
  const LcoreFigures start = lcore_figures(kWorker);
  std::vector<Flow> flows;
  std::vector<void*> handed;  // blocks lcore 0 frees between rounds
  std::mt19937_64 rng(11);
  const std::uint64_t rounds = ctxalloc::testing::scaled(20'000) / 10 + 10;
  std::uint64_t remote = 0;
  for (std::uint64_t round = 0; round < rounds; ++round) {
    on_lcore(kWorker, [&] {
      ctxalloc::flush();  // apply lcore 0's frees of the last round
      for (Flow& f : flows) {
        ASSERT_EQ(f.ctx->live_blocks(), f.blocks.size()) << round;
        f.handed = 0;
      }
      for (int op = 0; op < 50; ++op) {
        const unsigned roll = static_cast<unsigned>(rng() % 100);
        if (flows.empty() || (roll < 10 && flows.size() < 64)) {
          Context* c = make_flow_context();
          ASSERT_NE(c, nullptr);
          flows.push_back(Flow{c, {}, 0});
        } else if (roll < 15) {
          const std::size_t k = rng() % flows.size();
          if (flows[k].handed != 0) continue;                // lcore 0 still holds blocks of it
          ASSERT_EQ(release_flow_context(flows[k].ctx), 0);  // its blocks die with it
          flows[k] = flows.back();
          flows.pop_back();
        } else {
          Flow& f = flows[rng() % flows.size()];
          FlowScope in(*f.ctx);
          void* p = ctxalloc::allocate(1 + rng() % 3000);
          ASSERT_NE(p, nullptr);
          static_cast<unsigned char*>(p)[0] = 0xab;
          if (roll < 40) {
            handed.push_back(p);  // lcore 0 frees it after this round
            ++f.handed;
            continue;
          }
          f.blocks.push_back(p);
          if (roll >= 70) {  // and a free on the owner, within the flow
            const std::size_t k = rng() % f.blocks.size();
            ctxalloc::deallocate(f.blocks[k]);
            f.blocks[k] = f.blocks.back();
            f.blocks.pop_back();
          }
        }
      }
    });
    for (void* p : handed)
      ctxalloc::deallocate(p);
    remote += handed.size();
    handed.clear();
    ctxalloc::flush();
  }
  on_lcore(kWorker, [&] {
    ctxalloc::flush();
    for (Flow& f : flows) {
      EXPECT_EQ(f.ctx->live_blocks(), f.blocks.size());
      EXPECT_TRUE(f.ctx->check_invariants());
      EXPECT_EQ(release_flow_context(f.ctx), 0);
    }
    EXPECT_TRUE(heap_of(kWorker).heap.check_invariants());
  });
  const LcoreFigures end = lcore_figures(kWorker);
  EXPECT_EQ(end.contexts_live, 0u);
  EXPECT_EQ(end.spilled_bytes, 0u);
  EXPECT_EQ(end.bytes_in_use, start.bytes_in_use);
  EXPECT_EQ(end.remote_received - start.remote_received, remote);
  EXPECT_EQ(end.spill_failures, 0u);
}

// ------------------------------------------------------------------ tear-down (last)

TEST_F(PerLcore, TearDownChecksThenReturnsEverything) {
  // A flow still live: tear-down refuses, says why, frees nothing.
  Context* kept = on_lcore(kWorker, [] { return make_flow_context(); });
  ASSERT_NE(kept, nullptr);
  void* was_in_worker_region = heap_of(kWorker).region.base();
  TeardownReport r;
  EXPECT_EQ(teardown(&r), -EBUSY);
  EXPECT_EQ(r.live_contexts, 1u);
  EXPECT_EQ(r.busy_lcores, 0u);
  EXPECT_TRUE(is_set_up());
  EXPECT_FALSE(lcore_figures(kWorker).bound) << "tear-down unbound it on its own thread";
  EXPECT_EQ(on_lcore(kWorker, [] { return current_mode(); }), Mode::global);
  // The lcore binds again to release it.
  on_lcore(kWorker, [&] { EXPECT_EQ(release_flow_context(kept), 0); });

  ASSERT_EQ(teardown(&r), 0);
  EXPECT_EQ(r.lcores, 2u);
  EXPECT_EQ(r.sockets, 1u);
  EXPECT_EQ(r.live_bytes, 0u);
  EXPECT_EQ(r.live_contexts, 0u);
  EXPECT_EQ(r.bytes_returned, 72 * kMiB);
  EXPECT_FALSE(is_set_up());
  EXPECT_FALSE(lcore_figures(kWorker).present);
  EXPECT_FALSE(socket_figures(0).present);
  const SocketCounters& c = Registry::instance().socket(0);
  EXPECT_EQ(c.normal_page_bytes.load(), 0u);
  EXPECT_EQ(c.metadata_bytes.load(), 0u);
  EXPECT_EQ(Registry::instance().read_lcore(kWorker).sources, 0u);
  EXPECT_EQ(Registry::instance().read_socket(0).sources, 0u);
  EXPECT_EQ(SegmentMap::lookup(was_in_worker_region), nullptr) << "no segment of it is left";
  EXPECT_EQ(current_mode(), Mode::global);
  EXPECT_EQ(on_lcore(kWorker, [] { return make_flow_context(); }), nullptr);
  EXPECT_EQ(teardown(&r), 0) << "nothing to do";

  // And again: set-up after tear-down builds it all afresh.
  ASSERT_EQ(setup(), 0);
  Context* again = on_lcore(kWorker, [] { return make_flow_context(); });
  ASSERT_NE(again, nullptr);
  on_lcore(kWorker, [&] { EXPECT_EQ(release_flow_context(again), 0); });
  EXPECT_EQ(teardown(&r), 0);
  EXPECT_EQ(r.bytes_returned, 72 * kMiB);
}

}  // namespace
}  // namespace ctxalloc::dpdk
