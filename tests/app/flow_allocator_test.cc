// The "malloc" flow allocator (TrackedFlowAllocator over the C++ heap) without DPDK: the
// flow's containers allocate through it, release() frees everything at once, the budget
// and the pool bound it, misuse is reported, records freed on another thread are counted,
// and a randomized run against a model keeps the accounting exact. ("rte_malloc" is the
// same template over another backend: ctxfwd's end-to-end tests run it.)
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "flow_record.h"
#include "support/misuse_test_helpers.h"
#include "support/test_scale.h"
#include "tracked_flow_allocator.h"

namespace ctxalloc {
// Reaches a resource's first block header, to corrupt it on purpose.
template <>
struct TestPeer<ctxfwd::TrackedResource<ctxfwd::MallocBackend>> {
  static std::size_t& first_total(ctxfwd::TrackedResource<ctxfwd::MallocBackend>& r) {
    return r.head_.next->total;
  }
};
}  // namespace ctxalloc

namespace ctxfwd {
namespace {

struct Fixture {
  explicit Fixture(std::uint32_t max_flows = 8, std::uint32_t budget = 4096) {
    FlowAllocConfig cfg;
    cfg.max_flows = max_flows;
    cfg.context_bytes = budget;
    cfg.counters = &counters;
    EXPECT_EQ(alloc.init(cfg), "");
  }
  FlowAllocCounters counters;
  MallocFlowAllocator alloc;
};

std::span<const std::byte> bytes_of(const char* s) {
  return {reinterpret_cast<const std::byte*>(s), std::strlen(s)};
}

TEST(FlowAllocator, ReleaseFreesEverythingTheFlowsContainersHold) {
  Fixture f;
  auto* ctx = f.alloc.acquire();
  ASSERT_NE(ctx, nullptr);
  {
    MallocFlowAllocator::Scope scope(f.alloc, *ctx);
    // In a slot, as in ctxfwd's flow table; its destructor is never run (see flow_table.h).
    alignas(FlowRecord) std::byte slot[sizeof(FlowRecord)];
    auto* rec = new (slot) FlowRecord(f.alloc.resource(*ctx));
    const char* payload =
        "GET / HTTP/1.1 Host: example.org User-Agent: ctxfwd-test, and more than 64 bytes";
    for (std::uint32_t i = 0; i < 100; ++i)
      rec->on_packet(60 + i, i, bytes_of(payload), i == 0);
    EXPECT_EQ(rec->samples.size(), kMaxSamples);
    EXPECT_EQ(rec->samples.front().bytes, 60u + 100 - kMaxSamples);
    EXPECT_EQ(std::string_view(rec->first_payload), std::string_view(payload, kPayloadCopyBytes));
    EXPECT_GT(ctx->resource.blocks(), 2u);  // deque map, nodes, the string
    EXPECT_TRUE(f.alloc.check_invariants());
  }
  EXPECT_GT(f.counters.in_use(), 0u);
  EXPECT_LE(f.counters.in_use(), 4096u);
  f.alloc.release(*ctx);
  EXPECT_EQ(f.counters.in_use(), 0u);
  EXPECT_EQ(f.counters.contexts_live.get(), 0u);
  EXPECT_GT(f.counters.peak_bytes.get(), 0u);
  EXPECT_TRUE(f.alloc.check_invariants());
}

TEST(FlowAllocator, TheBudgetRefusesAndCounts) {
  Fixture f(4, 600);  // a deque's map and first node need 64 + 512 bytes plus headers
  auto* ctx = f.alloc.acquire();
  ASSERT_NE(ctx, nullptr);
  EXPECT_THROW(FlowRecord rec(f.alloc.resource(*ctx)), std::bad_alloc);
  EXPECT_EQ(f.counters.failures.get(), 1u);
  EXPECT_TRUE(f.alloc.check_invariants());
  f.alloc.release(*ctx);
  EXPECT_EQ(f.counters.in_use(), 0u);
  // Sizes near SIZE_MAX are refused without overflow.
  ctx = f.alloc.acquire();
  // (volatile: a constant this large is refused by the compiler's own size check)
  volatile std::size_t huge = SIZE_MAX - 8;
  EXPECT_THROW((void)f.alloc.resource(*ctx)->allocate(huge, 8), std::bad_alloc);
  EXPECT_THROW((void)f.alloc.resource(*ctx)->allocate(600 - 48 + 1, 16), std::bad_alloc);
  void* p = f.alloc.resource(*ctx)->allocate(600 - 48, 16);  // exactly the budget
  EXPECT_EQ(ctx->resource.bytes(), 600u);
  f.alloc.resource(*ctx)->deallocate(p, 600 - 48, 16);
  f.alloc.release(*ctx);
  EXPECT_EQ(f.counters.in_use(), 0u);
}

TEST(FlowAllocator, LargeAlignmentsAreHonoured) {
  Fixture f(2, 1 << 20);
  auto* ctx = f.alloc.acquire();
  auto* r = f.alloc.resource(*ctx);
  for (std::size_t align = 1; align <= 8192; align *= 2) {
    void* p = r->allocate(24, align);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << align;
    std::memset(p, 0xA5, 24);
  }
  EXPECT_TRUE(ctx->resource.check_invariants());
  f.alloc.release(*ctx);
  EXPECT_EQ(f.counters.in_use(), 0u);
}

TEST(FlowAllocator, ThePoolBoundsLiveFlows) {
  Fixture f(2);
  auto* a = f.alloc.acquire();
  auto* b = f.alloc.acquire();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(f.alloc.acquire(), nullptr);
  EXPECT_EQ(f.counters.failures.get(), 1u);
  f.alloc.release(*a);
  EXPECT_EQ(f.alloc.acquire(), a);  // handed out again
  EXPECT_EQ(f.counters.contexts_acquired.get(), 3u);
  EXPECT_EQ(f.alloc.live_contexts(), 2u);
  EXPECT_TRUE(f.alloc.check_invariants());
}

TEST(FlowAllocator, DoubleReleaseIsAMisuse) {
  Fixture f;
  auto* ctx = f.alloc.acquire();
  f.alloc.release(*ctx);
  ctxalloc::testing::expect_misuse([&] { f.alloc.release(*ctx); }, "double free");
  EXPECT_GE(f.counters.misuses.get(), 1u);
  EXPECT_TRUE(f.alloc.check_invariants());
}

TEST(FlowAllocator, AForeignPointerIsAMisuseAndIsNotFreed) {
  Fixture f;
  auto* a = f.alloc.acquire();
  auto* b = f.alloc.acquire();
  void* p = f.alloc.resource(*a)->allocate(100, 8);
  ctxalloc::testing::expect_misuse([&] { f.alloc.resource(*b)->deallocate(p, 100, 8); },
                                   "foreign pointer");
  EXPECT_EQ(a->resource.blocks(), 1u);  // still a's
  void* q = f.alloc.resource(*a)->allocate(100, 8);
  ctxalloc::testing::expect_misuse([&] { f.alloc.resource(*a)->deallocate(q, 99, 8); },
                                   "wrong size");
  EXPECT_TRUE(f.alloc.check_invariants());
  f.alloc.release(*a);
  f.alloc.release(*b);
  EXPECT_EQ(f.counters.in_use(), 0u);
}

TEST(FlowAllocator, RecordsFreedOnAnotherThreadAreCountedAsCrossLcore) {
  Fixture f;
  std::vector<void*> recs;
  for (int i = 0; i < 100; ++i)
    recs.push_back(f.alloc.allocate_record(64));
  f.alloc.free_record(recs.back(), 64);  // on the owner: not cross-lcore
  recs.pop_back();
  std::thread other([&] {
    for (void* r : recs)
      f.alloc.free_record(r, 64);
  });
  other.join();
  EXPECT_EQ(f.counters.records.get(), 100u);
  EXPECT_EQ(f.counters.cross_lcore_frees.load(), 99u);
  EXPECT_EQ(f.counters.in_use(), 0u);
  EXPECT_EQ(f.counters.peak_bytes.get(), 100u * 64);
}

TEST(FlowAllocator, CheckInvariantsNoticesACorruptHeader) {
  Fixture f;
  auto* ctx = f.alloc.acquire();
  (void)f.alloc.resource(*ctx)->allocate(100, 8);
  ASSERT_TRUE(f.alloc.check_invariants());
  auto& total = ctxalloc::TestPeer<TrackedResource<MallocBackend>>::first_total(ctx->resource);
  const std::size_t saved = total;
  total += 16;
  EXPECT_FALSE(ctx->resource.check_invariants());
  EXPECT_FALSE(f.alloc.check_invariants());
  total = saved;
  EXPECT_TRUE(f.alloc.check_invariants());
  f.alloc.release(*ctx);
}

// Random allocations, frees and whole releases over a few flows against a model of
// what each flow holds; payloads are checked before every free.
TEST(FlowAllocator, RandomizedAgainstAModel) {
  constexpr std::uint32_t kFlows = 8;
  constexpr std::uint32_t kBudget = 64 * 1024;
  Fixture f(kFlows, kBudget);
  struct Live {
    void* p;
    std::size_t n, align;
    unsigned char fill;
  };
  std::vector<MallocFlowAllocator::Context*> ctx(kFlows, nullptr);
  std::vector<std::vector<Live>> model(kFlows);
  std::uint64_t rng = ctxalloc::testing::test_seed(0x5eed);
  auto next = [&] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  const std::uint64_t ops = ctxalloc::testing::scaled(1'000'000);
  std::uint64_t refused = 0;
  for (std::uint64_t op = 0; op < ops; ++op) {
    const std::uint32_t i = static_cast<std::uint32_t>(next() % kFlows);
    if (ctx[i] == nullptr) {
      ctx[i] = f.alloc.acquire();
      ASSERT_NE(ctx[i], nullptr);
    }
    const std::uint64_t what = next() % 100;
    if (what < 55) {
      const std::size_t n = 1 + next() % 700;
      const std::size_t align = std::size_t{1} << (next() % 8);
      try {
        void* p = f.alloc.resource(*ctx[i])->allocate(n, align);
        ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u);
        const auto fill = static_cast<unsigned char>(op);
        std::memset(p, fill, n);
        model[i].push_back({p, n, align, fill});
      } catch (const std::bad_alloc&) {
        ++refused;  // over the budget: the flow holds close to 64 KiB
      }
    } else if (what < 98 && !model[i].empty()) {
      const std::size_t k = next() % model[i].size();
      const Live l = model[i][k];
      for (std::size_t b = 0; b < l.n; ++b)
        ASSERT_EQ(static_cast<unsigned char*>(l.p)[b], l.fill) << "op " << op;
      f.alloc.resource(*ctx[i])->deallocate(l.p, l.n, l.align);
      model[i][k] = model[i].back();
      model[i].pop_back();
    } else {
      f.alloc.release(*ctx[i]);
      ctx[i] = nullptr;
      model[i].clear();
    }
    if (op % 4096 == 0) {
      ASSERT_TRUE(f.alloc.check_invariants()) << "op " << op;
      std::uint64_t blocks = 0;
      for (std::uint32_t j = 0; j < kFlows; ++j)
        if (ctx[j] != nullptr) blocks += ctx[j]->resource.blocks();
      std::uint64_t want = 0;
      for (const auto& m : model)
        want += m.size();
      ASSERT_EQ(blocks, want);
    }
  }
  EXPECT_EQ(f.counters.failures.get(), refused);
  for (std::uint32_t i = 0; i < kFlows; ++i)
    if (ctx[i] != nullptr) f.alloc.release(*ctx[i]);
  EXPECT_EQ(f.counters.in_use(), 0u);
  EXPECT_TRUE(f.alloc.check_invariants());
  // Everything came back: every flow can take its whole budget again.
  for (std::uint32_t i = 0; i < kFlows; ++i) {
    auto* c = f.alloc.acquire();
    ASSERT_NE(c, nullptr);
    EXPECT_NO_THROW((void)f.alloc.resource(*c)->allocate(kBudget - 48, 16));
  }
  EXPECT_LE(f.counters.peak_bytes.get(), std::uint64_t{kFlows} * kBudget);
}

}  // namespace
}  // namespace ctxfwd
