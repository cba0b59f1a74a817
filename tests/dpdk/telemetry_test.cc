// The /ctxalloc/ telemetry commands, over DPDK's real telemetry socket, the way
// dpdk-telemetry.py talks to it: a SOCK_SEQPACKET connection to
// <runtime dir>/dpdk_telemetry.v2, a JSON greeting, then one JSON reply per command.
// EAL keeps telemetry on here, with a --file-prefix of its own.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/registry.h"
#include "ctxalloc_dpdk.h"
#include "dpdk/eal_env.h"
#include "dpdk/json_lite.h"
#include "dpdk/lcore_run.h"

namespace ctxalloc::dpdk {
namespace {

using testing::EalEnvironment;
using testing::Json;

std::vector<std::string> telemetry_args() {
  return {"ctxalloc_telemetry_test",
          "-l",
          "0-1",
          "--no-huge",
          "-m",
          "256",
          "--no-pci",
          "--vdev=net_null0",
          "--file-prefix=ctxalloc_tel_" + std::to_string(getpid()),
          "--log-level=lib.eal:warning"};
}

[[maybe_unused]] ::testing::Environment* const g_eal =
    ::testing::AddGlobalTestEnvironment(new EalEnvironment(telemetry_args()));

class Telemetry {
 public:
  Telemetry() {
    const std::string path = std::string(rte_eal_get_runtime_dir()) + "/dpdk_telemetry.v2";
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ADD_FAILURE() << "cannot connect to " << path << ": " << std::strerror(errno);
      return;
    }
    greeting_ = Json::parse(receive());
  }
  ~Telemetry() { close(fd_); }

  /// Sends a command ("/ctxalloc/lcore,1") and returns the value under its name.
  Json ask(const std::string& cmd) {
    EXPECT_EQ(send(fd_, cmd.data(), cmd.size(), 0), static_cast<ssize_t>(cmd.size()));
    const Json reply = Json::parse(receive());
    return reply[cmd.substr(0, cmd.find(','))];
  }
  const Json& greeting() const { return greeting_; }

 private:
  std::string receive() {
    std::string buf(64 * 1024, '\0');
    const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    EXPECT_GT(n, 0);
    buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return buf;
  }

  int fd_ = -1;
  Json greeting_;
};

class Pool {
 public:
  Pool(const char* name, unsigned n, unsigned elt) {
    mp_ = rte_mempool_create_empty(name, n, elt, 0, 0, SOCKET_ID_ANY, 0);
    EXPECT_NE(mp_, nullptr);
    EXPECT_EQ(rte_mempool_set_ops_byname(mp_, CTXALLOC_MEMPOOL_OPS, nullptr), 0);
    EXPECT_EQ(rte_mempool_populate_default(mp_), static_cast<int>(n));
  }
  ~Pool() { rte_mempool_free(mp_); }
  rte_mempool* get() const { return mp_; }

 private:
  rte_mempool* mp_ = nullptr;
};

TEST(Telemetry, TheSocketGreetsAndListsTheCtxallocCommands) {
  Telemetry t;
  EXPECT_NE(t.greeting()["version"].str.find("DPDK"), std::string::npos);
  const Json list = t.ask("/");
  std::vector<std::string> names;
  for (const Json& c : list.arr)
    names.push_back(c.str);
  for (const char* c : {"/ctxalloc/stats", "/ctxalloc/lcore", "/ctxalloc/socket",
                        "/ctxalloc/config", "/ctxalloc/mempools", "/ctxalloc/mempool"})
    EXPECT_NE(std::find(names.begin(), names.end(), c), names.end()) << c;
}

TEST(Telemetry, ConfigShowsTheEmbeddedDefault) {
  Telemetry t;
  const Json c = t.ask("/ctxalloc/config");
  EXPECT_EQ(c["source"].str, "embedded:config/default.ini");
  EXPECT_EQ(c["hugepages"].str, "prefer");
  EXPECT_EQ(c["fallback"].str, "context -> thread -> global");
  EXPECT_EQ(c["sockets"]["0"]["lcores"].str, "0-1");
  EXPECT_EQ(c["sockets"]["0"]["global_heap"].u64(), 32u << 20);
  EXPECT_EQ(c["lcore_default"]["thread_allocator"].str, "tree");
  EXPECT_EQ(c["flows"]["kind"].str, "growing");
  EXPECT_EQ(c["flows"]["first_chunk"].u64(), 1u << 10);
  EXPECT_EQ(c["flows"]["max_chunk"].u64(), 16u << 10);
  EXPECT_EQ(c["flows"]["large_block"].u64(), 4u << 10);
  EXPECT_EQ(c["flows"]["budget"].u64(), 16u << 10);
  EXPECT_EQ(c["flows"]["spill"].str, "global");
  EXPECT_EQ(c["flows"]["growth_size"].u64(), 16u << 20);
  EXPECT_EQ(c["flows"]["max_flows"].u64(), 100'000u);
  EXPECT_EQ(c["flows"]["idle_timeout_ms"].u64(), 10'000u);
}

TEST(Telemetry, BytesInUseRiseByAtLeastWhatWasAllocated) {
  Pool p("tel_bytes", 1000, 1000);
  Telemetry t;
  constexpr std::uint64_t kObjects = 100, kElt = 1000, kX = kObjects * kElt;
  const std::uint64_t total0 = t.ask("/ctxalloc/stats")["totals"]["bytes_in_use"].u64();
  const std::uint64_t lcore0 = t.ask("/ctxalloc/lcore,0")["mempool"]["bytes_in_use"].u64();
  const std::uint64_t socket0 = t.ask("/ctxalloc/socket,0")["mempool"]["bytes_in_use"].u64();
  std::vector<void*> objs(kObjects);
  ASSERT_EQ(rte_mempool_get_bulk(p.get(), objs.data(), kObjects), 0);
  const Json stats = t.ask("/ctxalloc/stats");
  EXPECT_GE(stats["totals"]["bytes_in_use"].u64(), total0 + kX);
  EXPECT_GE(stats["totals"]["mempool"]["bytes_in_use"].u64(), kX);
  EXPECT_GE(stats["sockets"]["0"]["bytes_in_use"].u64(), kX);
  EXPECT_GE(stats["lcores"]["0"]["bytes_in_use"].u64(), kX);
  EXPECT_GE(t.ask("/ctxalloc/lcore,0")["mempool"]["bytes_in_use"].u64(), lcore0 + kX);
  EXPECT_GE(t.ask("/ctxalloc/socket,0")["mempool"]["bytes_in_use"].u64(), socket0 + kX);
  rte_mempool_put_bulk(p.get(), objs.data(), kObjects);
  EXPECT_EQ(t.ask("/ctxalloc/stats")["totals"]["bytes_in_use"].u64(), total0) << "and back";
  EXPECT_GE(t.ask("/ctxalloc/socket,0")["mempool"]["peak_bytes"].u64(), kX);
}

int get_on_worker(void* arg) {
  auto* objs = static_cast<std::vector<void*>*>(arg);
  rte_mempool* mp = rte_mempool_lookup("tel_worker");
  return rte_mempool_get_bulk(mp, objs->data(), static_cast<unsigned>(objs->size()));
}

TEST(Telemetry, EachLcoreReportsWhatItAllocated) {
  Pool p("tel_worker", 512, 256);
  Telemetry t;
  const std::uint64_t before = t.ask("/ctxalloc/lcore,1")["mempool"]["bytes_in_use"].u64();
  std::vector<void*> objs(64);
  ASSERT_EQ(rte_eal_remote_launch(get_on_worker, &objs, 1), 0);
  ASSERT_EQ(rte_eal_wait_lcore(1), 0);
  const Json l1 = t.ask("/ctxalloc/lcore,1");
  EXPECT_EQ(l1["role"].str, "rte");
  EXPECT_GE(l1["mempool"]["bytes_in_use"].u64(), before + 64 * 256);
  EXPECT_TRUE(l1["sources"].has("mempool/tel_worker"));
  rte_mempool_put_bulk(p.get(), objs.data(), 64);  // freed on lcore 0
  const Json pool = t.ask("/ctxalloc/mempool,tel_worker");
  EXPECT_EQ(pool["lanes"]["1"]["gets"].u64(), 64u);
  EXPECT_EQ(pool["lanes"]["0"]["puts"].u64(), 64u);
  EXPECT_EQ(pool["pool"]["available"].u64(), 512u);
}

TEST(Telemetry, MempoolsListsEveryCtxallocPool) {
  Pool a("tel_list_a", 128, 64), b("tel_list_b", 256, 64);
  Telemetry t;
  const Json pools = t.ask("/ctxalloc/mempools");
  ASSERT_TRUE(pools.has("tel_list_a"));
  ASSERT_TRUE(pools.has("tel_list_b"));
  EXPECT_EQ(pools["tel_list_b"]["size"].u64(), 256u);
  EXPECT_EQ(pools["tel_list_b"]["available"].u64(), 256u);
  EXPECT_EQ(pools["tel_list_b"]["in_shared_stack"].u64(), 256u)
      << "populated onto the shared stack";
}

TEST(Telemetry, SocketShowsMemoryAndHugepages) {
  Pool p("tel_socket", 128, 64);
  Telemetry t;
  const Json s = t.ask("/ctxalloc/socket,0");
  EXPECT_GT(s["dpdk_heap"]["total_bytes"].u64(), 0u);
  EXPECT_GT(s["ctxalloc_memory"]["metadata_bytes"].u64(), 0u) << "the pool's stacks";
  EXPECT_EQ(s["eal_hugepages"].str, "no");
  EXPECT_EQ(s["config"]["hugepages"].u64(), 112u);
  EXPECT_TRUE(s.has("hugepages"));
}

// What the per-lcore allocators (issue 8) will do: attach their Stats and count fallbacks.
struct FakeThreadAllocator {
  Stats stats;
  static Stats read(const void* self) noexcept {
    return static_cast<const FakeThreadAllocator*>(self)->stats;
  }
};

TEST(Telemetry, AttachedSourcesAndLcoreCountersAreReported) {
  FakeThreadAllocator a;
  a.stats.allocations = 7;
  a.stats.bytes_in_use = 4096;
  a.stats.peak_bytes = 8192;
  a.stats.capacity = 1 << 20;
  Registry& reg = Registry::instance();
  ASSERT_EQ(
      reg.attach_lcore(1, StatsSource{Account::thread, "thread", FakeThreadAllocator::read, &a}),
      0);
  reg.lcore(1).fallback_to_global.add(3);
  Telemetry t;
  const Json l1 = t.ask("/ctxalloc/lcore,1");
  EXPECT_EQ(l1["thread"]["bytes_in_use"].u64(), 4096u);
  EXPECT_EQ(l1["thread"]["peak_bytes"].u64(), 8192u);
  EXPECT_EQ(l1["thread"]["capacity"].u64(), 1u << 20);
  EXPECT_EQ(l1["fallback_to_global"].u64(), 3u);
  EXPECT_EQ(reg.detach(&a), 1u);
  EXPECT_EQ(t.ask("/ctxalloc/lcore,1")["thread"]["bytes_in_use"].u64(), 0u);
}

TEST(Telemetry, BadParametersGetNoAnswer) {
  Telemetry t;
  EXPECT_TRUE(t.ask("/ctxalloc/lcore,abc").is_null());
  EXPECT_TRUE(t.ask("/ctxalloc/lcore,500").is_null());
  EXPECT_TRUE(t.ask("/ctxalloc/socket,-1").is_null());
  EXPECT_TRUE(t.ask("/ctxalloc/mempool,no_such_pool").is_null());
  EXPECT_FALSE(t.ask("/ctxalloc/lcore,non_eal").is_null());
}

// The per-lcore allocators' figures (issue 8), with a growing flow live on lcore 1 that
// asked beyond its budget: the lcore's heap, its flow memory, contexts and refusals, and
// the socket's global heap, as the lcore's own figures give them. Last: it sets up and
// tears down.
TEST(Telemetry, PerLcoreHeapsReportTheirFigures) {
  ASSERT_EQ(setup(), 0);
  Context* flow = ctxalloc::testing::on_lcore(1, [] {
    Context* f = make_flow_context();
    if (f == nullptr) return f;
    FlowScope in(*f);
    for (int i = 0; i < 8; ++i)
      (void)ctxalloc::allocate(4000);  // 32 KB in a flow of a 16 KiB budget: some refused
    return f;
  });
  ASSERT_NE(flow, nullptr);
  const LcoreFigures f = lcore_figures(1);
  Telemetry t;
  const Json l1 = t.ask("/ctxalloc/lcore,1");
  const Json& heap = l1["heap"];
  EXPECT_EQ(heap["memory"].str, "normal_pages");
  EXPECT_EQ(heap["thread_allocator"].str, "tree");
  // 12 MiB thread_size + 13 segments of first chunks (a share of 50,000 of 1 KiB) + 16 MiB
  // of growth.
  EXPECT_EQ(heap["region_bytes"].u64(), 80u << 20);
  EXPECT_EQ(heap["contexts_live"].u64(), 1u);
  EXPECT_EQ(heap["bytes_in_use"].u64(), f.bytes_in_use);
  EXPECT_GE(heap["peak_bytes"].u64(), f.bytes_in_use);
  EXPECT_EQ(heap["flow_kind"].str, "growing");
  EXPECT_EQ(heap["flow_share"].u64(), 50'000u);
  EXPECT_EQ(heap["first_chunk_bytes"].u64(), 52u << 20);
  EXPECT_EQ(heap["growth_bytes"].u64(), 16u << 20);
  EXPECT_GT(heap["refused_budget"].u64(), 0u) << "beyond the 16 KiB budget";
  EXPECT_EQ(heap["refused_budget"].u64(), f.refused_budget);
  EXPECT_EQ(heap["chunk_bytes"].u64(), f.chunk_bytes);
  EXPECT_GT(f.chunk_bytes, 4000u);
  EXPECT_LE(f.chunk_bytes, 16u << 10);
  EXPECT_EQ(heap["spills_to_thread"].u64(), 0u) << "the growth memory served it";
  EXPECT_EQ(heap["spill_failures"].u64(), 0u);
  EXPECT_EQ(l1["fallback_to_thread"].u64(), f.spills_to_thread) << "the registry's counts";
  EXPECT_EQ(l1["context"]["allocations"].u64(), 1u) << "one flow made";
  const Json stats = t.ask("/ctxalloc/stats");
  EXPECT_EQ(stats["lcores"]["1"]["contexts_live"].u64(), 1u);
  EXPECT_EQ(stats["lcores"]["1"]["spills"].u64(), f.spills_to_thread + f.spills_to_global);
  const Json s0 = t.ask("/ctxalloc/socket,0");
  EXPECT_EQ(s0["heap"]["memory"].str, "normal_pages");
  EXPECT_EQ(s0["heap"]["region_bytes"].u64(), 32u << 20);
  EXPECT_EQ(s0["heap"]["lcores"].u64(), 2u);
  EXPECT_EQ(s0["ctxalloc_memory"]["normal_page_bytes"].u64(), (32u + 2 * 80u) << 20);
  ctxalloc::testing::on_lcore(1, [&] { EXPECT_EQ(release_flow_context(flow), 0); });
  EXPECT_EQ(t.ask("/ctxalloc/lcore,1")["heap"]["contexts_live"].u64(), 0u);
  EXPECT_EQ(teardown(), 0);
  EXPECT_FALSE(t.ask("/ctxalloc/lcore,1").has("heap"));
  EXPECT_FALSE(t.ask("/ctxalloc/socket,0").has("heap"));
}

}  // namespace
}  // namespace ctxalloc::dpdk
