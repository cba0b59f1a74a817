// The `ctxalloc` mempool ops driven through DPDK's mempool API: single and bulk gets and
// puts with and without the per-lcore cache, objects put on another lcore, threads
// without an lcore id, exhaustion, mbuf pools, invariants and their corruption, misuse,
// statistics, and a randomized differential test against a model.
#include <gtest/gtest.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/sanitizers.h"
#include "ctxalloc/dpdk/plugin.h"
#include "ctxalloc/dpdk/registry.h"
#include "ctxalloc_dpdk.h"
#include "detail/pool.h"
#include "dpdk/eal_env.h"
#include "support/misuse_test_helpers.h"
#include "support/test_scale.h"

namespace ctxalloc::dpdk {
namespace {

using testing::EalEnvironment;

[[maybe_unused]] ::testing::Environment* const g_eal =
    ::testing::AddGlobalTestEnvironment(new EalEnvironment(EalEnvironment::default_args(
        "0-1", {"--vdev=net_null0", "--mbuf-pool-ops-name=ctxalloc"})));

constexpr unsigned kElt = 64;

// A mempool on the ctxalloc ops, freed at the end of the scope.
class Pool {
 public:
  Pool(const char* name, unsigned n, unsigned cache, unsigned elt = kElt) {
    mp_ = rte_mempool_create_empty(name, n, elt, cache, 0, SOCKET_ID_ANY, 0);
    EXPECT_NE(mp_, nullptr) << name;
    if (mp_ == nullptr) return;
    EXPECT_EQ(rte_mempool_set_ops_byname(mp_, CTXALLOC_MEMPOOL_OPS, nullptr), 0);
    EXPECT_EQ(rte_mempool_populate_default(mp_), static_cast<int>(n));
  }
  ~Pool() { rte_mempool_free(mp_); }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  rte_mempool* get() const { return mp_; }
  unsigned avail() const { return rte_mempool_avail_count(mp_); }
  std::string check() const {
    char why[256] = "";
    const int rc = ctxalloc_dpdk_mempool_check(mp_, why, sizeof why);
    return rc == 0 ? "" : why;
  }

 private:
  rte_mempool* mp_ = nullptr;
};

unsigned driver_count(const Pool& p) {
  return rte_mempool_get_ops(p.get()->ops_index)->get_count(p.get());
}

TEST(CtxallocMempool, OpsAreRegisteredInTheTable) {
  ASSERT_GE(ops_index(), 0);
  EXPECT_STREQ(rte_mempool_get_ops(ops_index())->name, "ctxalloc");
  EXPECT_LE(rte_mempool_ops_table.num_ops, static_cast<std::uint32_t>(RTE_MEMPOOL_MAX_OPS_IDX));
  EXPECT_EQ(ctxalloc_dpdk_ops_index(), ops_index());
  // A second registration (another copy of the plugin) finds the first instead of
  // adding an entry that rte_mempool_set_ops_byname could never pick.
  const std::uint32_t before = rte_mempool_ops_table.num_ops;
  EXPECT_EQ(detail::register_ops("ctxalloc"), ops_index());
  EXPECT_EQ(rte_mempool_ops_table.num_ops, before);
}

TEST(CtxallocMempool, SingleGetAndPutWithoutCache) {
  Pool p("single_nocache", 1024, 0);
  EXPECT_EQ(p.avail(), 1024u);
  void* obj = nullptr;
  ASSERT_EQ(rte_mempool_get(p.get(), &obj), 0);
  ASSERT_NE(obj, nullptr);
  EXPECT_EQ(p.avail(), 1023u);
  std::memset(obj, 0xab, kElt);
  rte_mempool_put(p.get(), obj);
  EXPECT_EQ(p.avail(), 1024u);
  void* again = nullptr;
  ASSERT_EQ(rte_mempool_get(p.get(), &again), 0);
  EXPECT_EQ(again, obj) << "the lane is a stack: the last object put comes back first";
  rte_mempool_put(p.get(), again);
  EXPECT_EQ(p.check(), "");
}

void bulk_round_trip(unsigned cache) {
  Pool p(cache ? "bulk_cache" : "bulk_nocache", 4096, cache);
  std::vector<void*> objs(32 * 64);
  for (unsigned i = 0; i < 64; ++i)
    ASSERT_EQ(rte_mempool_get_bulk(p.get(), objs.data() + 32 * i, 32), 0);
  EXPECT_EQ(p.avail(), 4096u - 2048u);
  std::set<void*> distinct(objs.begin(), objs.end());
  EXPECT_EQ(distinct.size(), objs.size()) << "an object handed out twice";
  for (void* o : objs)
    std::memset(o, 0x5a, kElt);  // writable, and not overlapping (the check below)
  for (unsigned i = 0; i < 64; ++i)
    rte_mempool_put_bulk(p.get(), objs.data() + 32 * i, 32);
  EXPECT_EQ(p.avail(), 4096u);
  EXPECT_EQ(p.check(), "");
}

TEST(CtxallocMempool, BulkGetAndPutWithoutCache) {
  bulk_round_trip(0);
}

TEST(CtxallocMempool, BulkGetAndPutWithThePerLcoreCache) {
  bulk_round_trip(256);
}

TEST(CtxallocMempool, ExhaustionIsAllOrNothing) {
  Pool p("exhaust", 100, 0);
  std::vector<void*> a(64), b(64);
  ASSERT_EQ(rte_mempool_get_bulk(p.get(), a.data(), 64), 0);
  EXPECT_EQ(rte_mempool_get_bulk(p.get(), b.data(), 64), -ENOENT);
  EXPECT_EQ(p.avail(), 36u) << "a refused get takes nothing";
  ASSERT_EQ(rte_mempool_get_bulk(p.get(), b.data(), 36), 0);
  void* one = nullptr;
  EXPECT_EQ(rte_mempool_get(p.get(), &one), -ENOENT);
  rte_mempool_put_bulk(p.get(), a.data(), 64);
  rte_mempool_put_bulk(p.get(), b.data(), 36);
  EXPECT_EQ(p.avail(), 100u);
  EXPECT_EQ(p.check(), "");
}

TEST(CtxallocMempool, AFailedGetLeavesTheCallersArrayUntouched) {
  // DPDK's cache refill counts on it: after a failed dequeue into its own array it
  // keeps using what the array held.
  Pool p("untouched", 64, 0);
  std::vector<void*> out(60);
  ASSERT_EQ(rte_mempool_get_bulk(p.get(), out.data(), 60), 0);
  rte_mempool_put_bulk(p.get(), out.data(), 5);  // 5 in lcore 0's lane, 4 on the shared stack
  void* sentinel = &out;
  std::vector<void*> buf(20, sentinel);
  EXPECT_EQ(rte_mempool_ops_dequeue_bulk(p.get(), buf.data(), 20), -ENOENT);
  EXPECT_EQ(std::count(buf.begin(), buf.end(), sentinel), 20);
  EXPECT_EQ(p.avail(), 9u);
  EXPECT_EQ(rte_mempool_ops_dequeue_bulk(p.get(), buf.data(), 9), 0);
  rte_mempool_put_bulk(p.get(), buf.data(), 9);
  rte_mempool_put_bulk(p.get(), out.data() + 5, 55);
  EXPECT_EQ(p.check(), "");
}

// ------------------------------------------------------------------ other lcores

struct Batch {
  rte_mempool* mp;
  std::vector<void*>* objs;
  int rc = 0;
};

int put_all(void* arg) {
  auto* b = static_cast<Batch*>(arg);
  for (std::size_t i = 0; i < b->objs->size(); i += 8)
    rte_mempool_put_bulk(b->mp, b->objs->data() + i, 8);
  return 0;
}

int get_all(void* arg) {
  auto* b = static_cast<Batch*>(arg);
  for (std::size_t i = 0; i < b->objs->size(); i += 8)
    if (rte_mempool_get_bulk(b->mp, b->objs->data() + i, 8) != 0) b->rc = -1;
  return 0;
}

void run_on_lcore1(int (*fn)(void*), Batch& b) {
  ASSERT_EQ(rte_eal_remote_launch(fn, &b, 1), 0);
  EXPECT_EQ(rte_eal_wait_lcore(1), 0);
}

TEST(CtxallocMempool, ObjectsPutOnAnotherLcoreComeBack) {
  ASSERT_GE(rte_lcore_count(), 2u) << "EAL runs with -l 0-1";
  Pool p("cross_lcore", 512, 0);
  std::vector<void*> objs(512);
  ASSERT_EQ(rte_mempool_get_bulk(p.get(), objs.data(), 512), 0);  // all of them, on lcore 0
  Batch b{p.get(), &objs};
  run_on_lcore1(put_all, b);  // lcore 1 puts them all into its own lane
  const detail::PoolState& st = *detail::pool_state(p.get());
  const detail::Lane* lane1 = st.lanes[1].load();
  ASSERT_NE(lane1, nullptr);
  EXPECT_EQ(lane1->deque.size(), 512u);
  EXPECT_EQ(lane1->hot().puts.get(), 512u);
  // Lcore 0 gets every one back: its lane and the shared stack are empty, so it steals.
  std::vector<void*> back(512);
  ASSERT_EQ(rte_mempool_get_bulk(p.get(), back.data(), 512), 0);
  std::sort(objs.begin(), objs.end());
  std::sort(back.begin(), back.end());
  EXPECT_EQ(objs, back);
  EXPECT_EQ(st.lanes[0].load()->stolen.get(), 512u);
  rte_mempool_put_bulk(p.get(), back.data(), 512);
  EXPECT_EQ(p.check(), "");
}

TEST(CtxallocMempool, ObjectsGotOnAnotherLcoreArePutHere) {
  Pool p("cross_lcore_back", 256, 0);
  std::vector<void*> objs(256);
  Batch b{p.get(), &objs};
  run_on_lcore1(get_all, b);
  ASSERT_EQ(b.rc, 0);
  EXPECT_EQ(p.avail(), 0u);
  rte_mempool_put_bulk(p.get(), objs.data(), 256);
  EXPECT_EQ(p.avail(), 256u);
  EXPECT_EQ(p.check(), "");
}

// Two lcores get and put at once, and objects travel from lcore 1 to lcore 0 through a
// ring (the pipeline pattern): lane pushes, takes and steals race. Nothing may be lost
// or handed out twice.
struct Churn {
  rte_mempool* mp;
  rte_ring* ring;
  std::uint64_t rounds;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> failures{0};
};

int churn_producer(void* arg) {
  auto* c = static_cast<Churn*>(arg);
  std::minstd_rand rng(7);
  void* objs[32];
  for (std::uint64_t i = 0; i < c->rounds; ++i) {
    const unsigned n = 1 + rng() % 32;
    if (rte_mempool_get_bulk(c->mp, objs, n) != 0) {
      c->failures.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const unsigned sent = rte_ring_enqueue_burst(c->ring, objs, n, nullptr);
    if (sent < n) rte_mempool_put_bulk(c->mp, objs + sent, n - sent);
  }
  c->done.store(true);
  return 0;
}

TEST(CtxallocMempool, TwoLcoresChurningTogetherLoseNothing) {
  Pool p("churn", 2048, 0);
  rte_ring* ring =
      rte_ring_create("churn_ring", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  ASSERT_NE(ring, nullptr);
  Churn c{p.get(), ring, testing::scaled(200'000, 20'000)};
  ASSERT_EQ(rte_eal_remote_launch(churn_producer, &c, 1), 0);
  std::minstd_rand rng(11);
  void* objs[32];
  std::vector<void*> mine;
  while (!c.done.load() || rte_ring_count(ring) > 0) {
    const unsigned got = rte_ring_dequeue_burst(ring, objs, 32, nullptr);
    rte_mempool_put_bulk(p.get(), objs, got);  // freed on lcore 0, got on lcore 1
    const unsigned n = 1 + rng() % 16;         // and lcore 0 takes some itself (steals, too)
    if (rte_mempool_get_bulk(p.get(), objs, n) == 0) rte_mempool_put_bulk(p.get(), objs, n);
  }
  EXPECT_EQ(rte_eal_wait_lcore(1), 0);
  EXPECT_EQ(p.avail(), 2048u);
  EXPECT_EQ(p.check(), "");
  rte_ring_free(ring);
}

TEST(CtxallocMempool, ThreadsWithoutAnLcoreIdUseTheSharedStack) {
  Pool p("non_eal", 256, 0);
  const detail::PoolState& st = *detail::pool_state(p.get());
  std::vector<void*> objs(100);
  int rc = -1;
  std::thread t([&] {
    rc = rte_lcore_id() == LCORE_ID_ANY ? rte_mempool_get_bulk(p.get(), objs.data(), 100) : -2;
  });
  t.join();
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(st.shared.gets.load(), 100u);
  EXPECT_EQ(p.avail(), 156u);
  std::thread([&] { rte_mempool_put_bulk(p.get(), objs.data(), 100); }).join();
  EXPECT_EQ(st.shared.puts.load(), 100u);
  EXPECT_EQ(st.shared.size(), 256u) << "all back on the shared stack";
  ctxalloc_dpdk_stats s{};
  ASSERT_EQ(ctxalloc_dpdk_lcore_stats(CTXALLOC_LCORE_NON_EAL, CTXALLOC_ACCOUNT_MEMPOOL, &s), 0);
  EXPECT_GE(s.allocations, 100u);
  EXPECT_EQ(p.check(), "");
}

// ------------------------------------------------------------------ mbufs

TEST(CtxallocMempool, PktmbufPoolCreatedByOps) {
  rte_mempool* mp = rte_pktmbuf_pool_create_by_ops(
      "mbufs_by_ops", 1023, 32, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY, CTXALLOC_MEMPOOL_OPS);
  ASSERT_NE(mp, nullptr);
  EXPECT_EQ(mp->ops_index, ops_index());
  rte_mbuf* m[64];
  ASSERT_EQ(rte_pktmbuf_alloc_bulk(mp, m, 64), 0);
  for (rte_mbuf* x : m)
    EXPECT_NE(rte_pktmbuf_append(x, 100), nullptr);
  rte_pktmbuf_free_bulk(m, 64);
  EXPECT_EQ(rte_mempool_avail_count(mp), 1023u);
  char why[128];
  EXPECT_EQ(ctxalloc_dpdk_mempool_check(mp, why, sizeof why), 0) << why;
  rte_mempool_free(mp);
}

TEST(CtxallocMempool, IsTheDefaultMbufOpsWithEalMbufPoolOpsName) {
  // EAL runs with --mbuf-pool-ops-name=ctxalloc: rte_pktmbuf_pool_create picks it.
  EXPECT_STREQ(rte_mbuf_best_mempool_ops(), "ctxalloc");
  rte_mempool* mp = rte_pktmbuf_pool_create("mbufs_default", 511, 0, 0, 256, SOCKET_ID_ANY);
  ASSERT_NE(mp, nullptr);
  EXPECT_EQ(mp->ops_index, ops_index());
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  ASSERT_NE(m, nullptr);
  rte_pktmbuf_free(m);
  rte_mempool_free(mp);
}

// ------------------------------------------------------------------ invariants

TEST(CtxallocMempool, CheckInvariantsFindsCorruption) {
  Pool p("corrupt", 64, 0);
  void* objs[8];
  ASSERT_EQ(rte_mempool_get_bulk(p.get(), objs, 8), 0);
  rte_mempool_put_bulk(p.get(), objs, 8);  // lcore 0's lane holds 8
  ASSERT_EQ(p.check(), "");
  detail::PoolState& st = *detail::pool_state(p.get());
  detail::PoolLaneDeque& lane = st.lanes[rte_lcore_id()].load()->deque;
  void* top = nullptr;  // for_each visits bottom first: the last one is the top slot
  ASSERT_TRUE(lane.for_each([&](void* o) { top = o; }));
  ASSERT_NE(top, objs[3]);
  // An object held twice.
  lane.overwrite_for_test(0, objs[3]);
  const std::string twice = p.check();
  EXPECT_NE(twice.find("twice"), std::string::npos) << twice;
  // A pointer that is not one of the pool's objects.
  int outsider = 0;
  lane.overwrite_for_test(0, &outsider);
  const std::string foreign = p.check();
  EXPECT_NE(foreign.find("not one of its objects"), std::string::npos) << foreign;
  lane.overwrite_for_test(0, top);  // restore
  EXPECT_EQ(p.check(), "");
  char why[64];
  EXPECT_EQ(ctxalloc_dpdk_mempool_check(nullptr, why, sizeof why), -EINVAL);
}

// The index of a registered driver other than ctxalloc (ring_mp_mc when it is there).
int other_driver_index() {
  int any = -1;
  for (unsigned i = 0; i < rte_mempool_ops_table.num_ops; ++i) {
    if (static_cast<int>(i) == ops_index()) continue;
    if (std::strcmp(rte_mempool_ops_table.ops[i].name, "ring_mp_mc") == 0)
      return static_cast<int>(i);
    if (any < 0) any = static_cast<int>(i);
  }
  return any;
}

// Issue 19, item 8: the ops_index of a pool made by the ctxalloc driver, rewritten to name
// another driver (what a secondary with another driver order sees): the check refuses,
// names both drivers and the index, and does not walk the pool.
TEST(CtxallocMempool, CheckRefusesAPoolWhoseOpsIndexNamesAnotherDriver) {
  Pool p("c19_reindexed", 64, 0);
  const int other = other_driver_index();
  ASSERT_GE(other, 0) << "no other mempool driver registered";
  const char* other_name = rte_mempool_ops_table.ops[other].name;
  const int own = p.get()->ops_index;
  p.get()->ops_index = other;
  char why[512] = "";
  EXPECT_EQ(ctxalloc_dpdk_mempool_check(p.get(), why, sizeof why), -ENXIO);
  const std::string msg = why;
  EXPECT_NE(msg.find("c19_reindexed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ops_index " + std::to_string(other) + " names driver " + other_name),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("ctxalloc is at " + std::to_string(ops_index())), std::string::npos) << msg;
  EXPECT_NE(msg.find("Secondary processes"), std::string::npos) << msg;
  // A truncated message is still terminated.
  char small[16];
  EXPECT_EQ(ctxalloc_dpdk_mempool_check(p.get(), small, sizeof small), -ENXIO);
  EXPECT_EQ(std::strlen(small), sizeof small - 1);
  EXPECT_EQ(ctxalloc_dpdk_mempool_check(p.get(), nullptr, 0), -ENXIO);
  p.get()->ops_index = own;
  EXPECT_EQ(p.check(), "");
}

// The other way round: a pool another driver made, its ops_index rewritten to name
// ctxalloc. Its pool data is not a PoolState: refused without walking it; and a pool data
// pointer outside DPDK memory is not even read.
TEST(CtxallocMempool, CheckRefusesAnotherDriversPoolThatNamesCtxalloc) {
  rte_mempool* mp = rte_mempool_create_empty("c19_ring", 64, kElt, 0, 0, SOCKET_ID_ANY, 0);
  ASSERT_NE(mp, nullptr);
  const int other = other_driver_index();
  ASSERT_GE(other, 0);
  ASSERT_EQ(rte_mempool_set_ops_byname(mp, rte_mempool_ops_table.ops[other].name, nullptr), 0);
  ASSERT_EQ(rte_mempool_populate_default(mp), 64);
  char why[512] = "";
  EXPECT_EQ(ctxalloc_dpdk_mempool_check(mp, why, sizeof why), -EINVAL);
  EXPECT_NE(std::string(why).find("not a ctxalloc pool"), std::string::npos) << why;
  mp->ops_index = ops_index();
  EXPECT_EQ(ctxalloc_dpdk_mempool_check(mp, why, sizeof why), -ENXIO);
  std::string msg = why;
  EXPECT_NE(msg.find("c19_ring"), std::string::npos) << msg;
  EXPECT_NE(msg.find("names ctxalloc in this process, but its pool data"), std::string::npos)
      << msg;
  // The ctxalloc callbacks DPDK now calls refuse it instead of taking the other driver's
  // data for lanes: gets fail, puts are refused, the count is 0; the other driver's pool
  // is untouched (all 64 objects still in it once its own index is back).
  void* obj = nullptr;
  EXPECT_EQ(rte_mempool_get(mp, &obj), -ENXIO);
  void* objs[8];
  EXPECT_EQ(rte_mempool_get_bulk(mp, objs, 8), -ENXIO);
  EXPECT_EQ(rte_mempool_avail_count(mp), 0u);
  mp->ops_index = other;
  ASSERT_EQ(rte_mempool_get(mp, &obj), 0);
  mp->ops_index = ops_index();
  rte_mempool_put(mp, obj);  // refused: the object stays out
  mp->ops_index = other;
  EXPECT_EQ(rte_mempool_avail_count(mp), 63u);
  rte_mempool_put(mp, obj);
  EXPECT_EQ(rte_mempool_avail_count(mp), 64u);
  mp->ops_index = ops_index();
  void* const ring_data = mp->pool_data;
  // A copy of a real pool's header elsewhere: the self pointer gives it away.
  Pool real("c19_real", 64, 0);
  alignas(16) static unsigned char copy[64];
  std::memcpy(copy, real.get()->pool_data, sizeof copy);
  mp->pool_data = copy;
  EXPECT_EQ(ctxalloc_dpdk_mempool_check(mp, why, sizeof why), -ENXIO);
  // Pool data outside DPDK memory is not read at all: a page that faults when touched.
  void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  mp->pool_data = page;
  EXPECT_EQ(ctxalloc_dpdk_mempool_check(mp, why, sizeof why), -ENXIO);
  munmap(page, 4096);
  mp->pool_data = ring_data;
  mp->ops_index = other;
  rte_mempool_free(mp);
}

// A freed pool's state is no longer taken for a live one (op_free clears the magic).
TEST(CtxallocMempool, PoolStateCarriesItsMagicUntilFreed) {
  Pool p("c19_magic", 64, 0);
  const detail::PoolState* st = detail::pool_state(p.get());
  EXPECT_EQ(st->magic, detail::kPoolMagic);
  EXPECT_EQ(st->self, st);
  EXPECT_EQ(detail::verify_pool(p.get(), nullptr), 0);
  detail::pool_state(p.get())->magic = 0;
  std::string why;
  EXPECT_EQ(detail::verify_pool(p.get(), &why), -ENXIO);
  EXPECT_NE(why.find("c19_magic"), std::string::npos) << why;
  detail::pool_state(p.get())->magic = detail::kPoolMagic;
  EXPECT_EQ(p.check(), "");
}

TEST(CtxallocMempool, ForeignPointerIsReportedAndDropped) {
  Pool p("foreign", 64, 0);
  testing::expect_misuse(
      [&] {
        static int outsider;
        void* objs[2];
        if (rte_mempool_get(p.get(), &objs[0]) != 0) return;
        objs[1] = &outsider;
        EXPECT_EQ(rte_mempool_ops_enqueue_bulk(p.get(), objs, 2), -EINVAL);
      },
      "foreign pointer in ctxalloc mempool.enqueue");
  EXPECT_EQ(p.avail(), 64u) << "the pool's own object went back, the outsider did not";
  EXPECT_EQ(p.check(), "");
  EXPECT_GE(detail::pool_stats(*detail::pool_state(p.get())).misuses, 1u);
}

TEST(CtxallocMempool, PuttingMoreThanThePoolHoldsIsReported) {
  Pool p("double_put", 4, 0);
  void* objs[4];
  ASSERT_EQ(rte_mempool_get_bulk(p.get(), objs, 4), 0);
  rte_mempool_put_bulk(p.get(), objs, 4);
  // The lane and the shared stack hold 4 each at most: the 5th extra put overflows both.
  testing::expect_misuse(
      [&] {
        int rc = 0;
        for (int i = 0; i < 5 && rc == 0; ++i)
          rc = rte_mempool_ops_enqueue_bulk(p.get(), objs, 1);
        EXPECT_EQ(rc, -ENOBUFS);
      },
      "double free in ctxalloc mempool.enqueue");
  // check_invariants sees it too: more objects held than the pool has.
  EXPECT_NE(p.check().find("holds 8 objects, but only 4 were populated"), std::string::npos)
      << p.check();
  detail::pool_state(p.get())->shared.pop(objs, 4);  // repair, so that free is clean
}

#if defined(CTXALLOC_ASAN_ACTIVE)
TEST(CtxallocMempool, UseAfterPutIsReportedByAddressSanitizer) {
  // Objects the driver holds are poisoned (objects in DPDK's per-lcore cache are not:
  // this pool has none).
  Pool p("poisoned", 16, 0);
  void* o = nullptr;
  ASSERT_EQ(rte_mempool_get(p.get(), &o), 0);
  *static_cast<volatile char*>(o) = 1;  // fine: handed out
  rte_mempool_put(p.get(), o);
  EXPECT_DEATH(*static_cast<volatile char*>(o) = 2, "use-after-poison");
}
#endif

// ------------------------------------------------------------------ statistics

TEST(CtxallocMempool, StatisticsFollowGetsAndPuts) {
  Pool p("stats", 1000, 0, 200);
  const unsigned lcore = rte_lcore_id();
  const std::uint64_t obj = detail::pool_state(p.get())->obj_bytes;
  ASSERT_GE(obj, 200u);
  auto lcore_bytes = [&] {
    return Registry::instance().read_lcore(lcore)[Account::mempool].bytes_in_use;
  };
  auto socket_bytes = [&] {
    return Registry::instance()
        .read_socket(static_cast<unsigned>(detail::pool_state(p.get())->socket))[Account::mempool]
        .bytes_in_use;
  };
  const std::uint64_t l0 = lcore_bytes(), s0 = socket_bytes();
  std::vector<void*> objs(300);
  ASSERT_EQ(rte_mempool_get_bulk(p.get(), objs.data(), 300), 0);
  EXPECT_EQ(lcore_bytes() - l0, 300 * obj);
  EXPECT_EQ(socket_bytes() - s0, 300 * obj);
  const detail::Lane& lane = *detail::pool_state(p.get())->lanes[lcore].load();
  EXPECT_EQ(lane.peak_net.get(), 300u);
  void* too_many[800];
  EXPECT_NE(rte_mempool_get_bulk(p.get(), too_many, 800), 0);
  EXPECT_EQ(lane.failures.get(), 1u);
  rte_mempool_put_bulk(p.get(), objs.data(), 300);
  EXPECT_EQ(lcore_bytes(), l0);
  EXPECT_EQ(socket_bytes(), s0);
  ctxalloc_dpdk_stats s{};
  ASSERT_EQ(ctxalloc_dpdk_socket_stats(0, CTXALLOC_ACCOUNT_MEMPOOL, &s), 0);
  EXPECT_GE(s.peak_bytes, 300 * obj) << "the pool's peak was seen by the reads above";
  EXPECT_EQ(ctxalloc_dpdk_socket_stats(0, 9, &s), -EINVAL);
}

TEST(CtxallocMempool, FreeingAPoolDetachesItFromTheRegistry) {
  const AccountTotals before = Registry::instance().read_socket(0);
  {
    Pool p("detached", 128, 0);
    void* o;
    ASSERT_EQ(rte_mempool_get(p.get(), &o), 0);
    EXPECT_EQ(Registry::instance().read_socket(0).sources, before.sources + 1);
    rte_mempool_put(p.get(), o);
  }
  EXPECT_EQ(Registry::instance().read_socket(0).sources, before.sources);
  EXPECT_EQ(Registry::instance().read_socket(0)[Account::mempool].bytes_in_use,
            before[Account::mempool].bytes_in_use);
}

// ------------------------------------------------------------------ randomized

// Random bulk gets and puts on lcore 0 against a model of what the test holds: the pool
// must hand out only its own objects, never one that is held, refuse exactly when too
// few are left, and keep its invariants.
void randomized(unsigned cache, std::uint64_t seed) {
  constexpr unsigned kSize = 1000;
  Pool p(cache ? "random_cache" : "random_nocache", kSize, cache);
  std::mt19937_64 rng(testing::test_seed(seed));
  std::vector<void*> held;
  std::set<void*> held_set, seen;
  void* buf[64];
  const std::uint64_t ops = testing::scaled(1'000'000);
  for (std::uint64_t op = 0; op < ops; ++op) {
    const unsigned n = 1 + static_cast<unsigned>(rng() % 64);
    if (rng() % 2 == 0) {
      const int rc = rte_mempool_get_bulk(p.get(), buf, n);
      if (held.size() + n > kSize) {
        ASSERT_NE(rc, 0) << "more than the pool holds, at op " << op;
        continue;
      }
      // With a cache, objects may sit in it; without, a refusal means the pool is short.
      if (rc != 0) {
        ASSERT_NE(cache, 0u) << "refused with " << kSize - held.size() << " free, at op " << op;
        continue;
      }
      for (unsigned i = 0; i < n; ++i) {
        ASSERT_TRUE(held_set.insert(buf[i]).second) << "handed out twice, at op " << op;
        held.push_back(buf[i]);
        seen.insert(buf[i]);
      }
    } else if (!held.empty()) {
      const unsigned k = std::min<unsigned>(n, static_cast<unsigned>(held.size()));
      for (unsigned i = 0; i < k; ++i) {
        std::swap(held[rng() % held.size()], held.back());
        buf[i] = held.back();
        held.pop_back();
        held_set.erase(buf[i]);
      }
      rte_mempool_put_bulk(p.get(), buf, k);
    }
    if (op % 4096 == 0) {
      ASSERT_EQ(p.avail(), kSize - held.size()) << "at op " << op;
      if (cache == 0) {
        ASSERT_EQ(p.check(), "") << "at op " << op;
      }
    }
  }
  ASSERT_LE(seen.size(), kSize) << "objects the pool does not have";
  rte_mempool_put_bulk(p.get(), held.data(), static_cast<unsigned>(held.size()));
  EXPECT_EQ(p.avail(), kSize);
  if (cache == 0) {
    EXPECT_EQ(driver_count(p), kSize);
    EXPECT_EQ(p.check(), "");
  }
}

TEST(CtxallocMempool, RandomizedAgainstAModelWithoutCache) {
  randomized(0, 1);
}

TEST(CtxallocMempool, RandomizedAgainstAModelWithCache) {
  randomized(32, 2);
}

}  // namespace
}  // namespace ctxalloc::dpdk
