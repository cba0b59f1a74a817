// ctxfwd's decisions that need no EAL: the command line, the EAL plan (hugepages or not,
// the embedded default), port pairs and lcore roles.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "eal_plan.h"
#include "lcore_plan.h"
#include "options.h"

namespace ctxfwd {
namespace {

std::string parse(std::vector<std::string> args, AppOptions& o) {
  return parse_app_args(args, o);
}

TEST(CtxfwdOptions, DefaultsAndEveryOption) {
  AppOptions d;
  ASSERT_EQ(parse({}, d), "");
  EXPECT_EQ(d.flow_alloc, FlowAllocKind::ctxalloc);
  EXPECT_TRUE(d.mac_updating);
  EXPECT_EQ(d.resolved_max_flows(), kDefaultMaxFlows);
  EXPECT_EQ(d.resolved_idle_timeout_ms(), kDefaultIdleTimeoutMs);
  EXPECT_EQ(d.close_linger_ms, kDefaultCloseLingerMs);
  EXPECT_EQ(d.mbuf_pool, "ring_mp_mc");
  EXPECT_EQ(d.resolved_flow_context_bytes(), kDefaultFlowContextBytes);

  AppOptions o;
  ASSERT_EQ(parse({"-p",
                   "0x5",
                   "--portmap",
                   "(0, 2)",
                   "--duration",
                   "2.5",
                   "--stats-period=0",
                   "--no-mac-updating",
                   "--stats-json",
                   "s.json",
                   "--flow-alloc",
                   "malloc",
                   "--pipeline",
                   "--max-flows",
                   "100",
                   "--idle-timeout-ms=0",
                   "--close-linger-ms",
                   "500",
                   "--flow-context-bytes",
                   "2048",
                   "--max-packets",
                   "77",
                   "--mbufs",
                   "4096",
                   "--mbuf-pool",
                   "ctxalloc",
                   "--ring-size",
                   "256",
                   "--rx-pcap",
                   "in.pcap",
                   "--tx-pcap",
                   "out.pcap",
                   "--gen-profile",
                   "churn"},
                  o),
            "");
  EXPECT_EQ(o.port_mask, 0x5u);
  ASSERT_EQ(o.port_map.size(), 1u);
  EXPECT_EQ(o.port_map[0], (PortPair{0, 2}));
  EXPECT_DOUBLE_EQ(o.duration_s, 2.5);
  EXPECT_DOUBLE_EQ(o.stats_period_s, 0);
  EXPECT_FALSE(o.mac_updating);
  EXPECT_EQ(o.stats_json, "s.json");
  EXPECT_EQ(o.flow_alloc, FlowAllocKind::malloc);
  EXPECT_TRUE(o.pipeline);
  EXPECT_EQ(o.resolved_max_flows(), 100u);
  EXPECT_EQ(o.resolved_idle_timeout_ms(), 0u);
  EXPECT_EQ(o.resolved_flow_context_bytes(), 2048u);
  EXPECT_EQ(o.max_packets, 77u);
  EXPECT_EQ(o.mbufs, 4096u);
  EXPECT_EQ(o.mbuf_pool, "ctxalloc");
  EXPECT_EQ(o.close_linger_ms, 500u);
  EXPECT_EQ(o.ring_size, 256u);
  EXPECT_EQ(o.rx_pcap, "in.pcap");
  EXPECT_EQ(o.tx_pcap, "out.pcap");
  EXPECT_EQ(o.gen_profile, "churn");
}

TEST(CtxfwdOptions, RefusesBadValuesWithTheOptionsName) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--duration", "-1"}, "--duration: '-1' is not a number of seconds >= 0"},
      {{"--duration", "nan"}, "--duration: 'nan'"},
      {{"--stats-period", "1s"}, "--stats-period: '1s'"},
      {{"-p", "0"}, "-p: '0' is not a non-zero hex port mask"},
      {{"--portmask", "xyz"}, "--portmask: 'xyz'"},
      {{"--flow-alloc", "tcmalloc"}, "one of ctxalloc, rte_malloc, malloc"},
      {{"--max-flows", "16777217"}, "--max-flows: '16777217'"},
      {{"--max-flows", "12x"}, "--max-flows: '12x'"},
      {{"--idle-timeout-ms", "-5"}, "--idle-timeout-ms: '-5'"},
      {{"--close-linger-ms", "600001"}, "--close-linger-ms: '600001'"},
      {{"--close-linger-ms", "1s"}, "--close-linger-ms: '1s'"},
      {{"--mbuf-pool", "stack"}, "--mbuf-pool: 'stack' is not ring_mp_mc or ctxalloc"},
      {{"--flow-context-bytes", "0"}, "--flow-context-bytes: '0'"},
      {{"--mbufs", "10"}, "--mbufs: '10'"},
      {{"--ring-size", "100"}, "a power of two"},
      {{"--max-packets"}, "--max-packets: missing value"},
      {{"--pipeline=yes"}, "--pipeline: takes no value"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--portmap", "(0,1"}, "--portmap: '(0,1' is not a list"},
      {{"--portmap", "(0,1),"}, "is not a list"},
      {{"--portmap", "(0,1)(2,3)"}, "is not a list"},
      {{"--portmap", "(0,1),(2,0)"}, "port 0 appears in two pairs"},
      {{"--portmap", "(0,70000)"}, "port id out of range"},
      {{"--config", "/nonexistent/x.ini"}, "--config: cannot read '/nonexistent/x.ini'"},
  };
  for (const auto& [args, message] : cases) {
    AppOptions o;
    const std::string e = parse(args, o);
    EXPECT_NE(e.find(message), std::string::npos) << "got: " << e << "; want: " << message;
  }
}

// --max-flows (and [flows] max_flows) count flows of the whole process: each flow lcore
// gets an even share, rounded up, never 0.
TEST(CtxfwdOptions, MaxFlowsIsSplitIntoPerLcoreShares) {
  EXPECT_EQ(per_lcore_share(1000, 1), 1000u);
  EXPECT_EQ(per_lcore_share(1000, 4), 250u);
  EXPECT_EQ(per_lcore_share(1001, 4), 251u);
  EXPECT_EQ(per_lcore_share(1048576, 8), 131072u);
  EXPECT_EQ(per_lcore_share(3, 8), 1u);
  EXPECT_EQ(per_lcore_share(1000, 0), 1000u);
  EXPECT_EQ(per_lcore_share(kMaxFlowsLimit, 3), (kMaxFlowsLimit + 2) / 3);
  AppOptions o;
  EXPECT_EQ(o.resolved_max_flows(), kDefaultMaxFlows);
}

TEST(CtxfwdOptions, SplitsAtTheFirstDoubleDash) {
  const char* argv[] = {"ctxfwd", "-l", "0,1", "--", "--pipeline", "--", "x"};
  const SplitArgs s = split_args(7, argv);
  EXPECT_EQ(s.eal, (std::vector<std::string>{"ctxfwd", "-l", "0,1"}));
  EXPECT_EQ(s.app, (std::vector<std::string>{"--pipeline", "--", "x"}));
  const char* only[] = {"ctxfwd", "--no-huge"};
  EXPECT_TRUE(split_args(2, only).app.empty());
}

TEST(CtxfwdEalPlan, ScansWhatTheUserGave) {
  const EalArgScan s = scan_eal_args(std::vector<std::string>{
      "ctxfwd", "--vdev=net_null0", "--no-huge", "-m", "256", "--file-prefix", "x", "--no-pci"});
  EXPECT_TRUE(s.devices && s.no_huge && s.memory && s.file_prefix && s.no_pci);
  EXPECT_FALSE(s.in_memory);
  EXPECT_TRUE(scan_eal_args(std::vector<std::string>{"ctxfwd", "-a", "0000:3b:00.0"}).devices);
  EXPECT_TRUE(scan_eal_args(std::vector<std::string>{"ctxfwd", "-a0000:3b:00.0"}).devices);
  EXPECT_TRUE(scan_eal_args(std::vector<std::string>{"ctxfwd", "--socket-mem=512"}).memory);
  const EalArgScan none = scan_eal_args(std::vector<std::string>{"ctxfwd", "-l", "0,1"});
  EXPECT_FALSE(none.devices || none.no_huge || none.memory || none.file_prefix);
}

TEST(CtxfwdEalPlan, HugepagesWhenEnoughAreFreeElseNoHuge) {
  const std::vector<std::string> eal{"ctxfwd", "-l", "0,1"};
  const EalArgScan scan = scan_eal_args(eal);
  HugepageInfo plenty{512u << 20, 2u << 20, true};
  EalPlan p;
  ASSERT_EQ(plan_eal(eal, scan, false, {}, plenty, 200, 42, p), "");
  EXPECT_TRUE(p.hugepages);
  EXPECT_FALSE(p.own_file_prefix);
  EXPECT_EQ(p.args, (std::vector<std::string>{"ctxfwd", "-l", "0,1", "-m", "200"}))
      << "reserved at start: memzones of the per-lcore heaps";

  HugepageInfo few{128u << 20, 2u << 20, true};
  ASSERT_EQ(plan_eal(eal, scan, false, {}, few, 200, 42, p), "");
  EXPECT_FALSE(p.hugepages);
  EXPECT_EQ(p.args, (std::vector<std::string>{"ctxfwd", "-l", "0,1", "--no-huge", "-m", "200"}));
  ASSERT_FALSE(p.notes.empty());
  EXPECT_NE(p.notes.back().find("128 MiB of hugepages free, about 200 MiB needed"),
            std::string::npos)
      << p.notes.back();

  HugepageInfo unmounted{512u << 20, 2u << 20, false};
  ASSERT_EQ(plan_eal(eal, scan, false, {}, unmounted, 200, 42, p), "");
  EXPECT_FALSE(p.hugepages);
  EXPECT_NE(p.notes.back().find("no writable hugetlbfs mount"), std::string::npos);

  // The user's own memory options are kept as they are.
  const std::vector<std::string> no_huge{"ctxfwd", "--no-huge", "-m", "300"};
  ASSERT_EQ(plan_eal(no_huge, scan_eal_args(no_huge), false, {}, plenty, 200, 42, p), "");
  EXPECT_FALSE(p.hugepages);
  EXPECT_EQ(p.args, no_huge);
  const std::vector<std::string> no_huge_only{"ctxfwd", "--no-huge"};
  ASSERT_EQ(plan_eal(no_huge_only, scan_eal_args(no_huge_only), false, {}, plenty, 200, 42, p), "");
  EXPECT_EQ(p.args, (std::vector<std::string>{"ctxfwd", "--no-huge", "-m", "200"}));
}

TEST(CtxfwdEalPlan, EmbeddedDefaultAddsItsDevices) {
  const std::vector<std::string> eal{"ctxfwd"};
  const HugepageInfo none{};
  EalPlan p;
  ASSERT_EQ(plan_eal(eal, scan_eal_args(eal), true, {"/t/in.pcap", ""}, none, 100, 7, p), "");
  EXPECT_TRUE(p.embedded);
  EXPECT_TRUE(p.own_file_prefix);
  EXPECT_EQ(p.args,
            (std::vector<std::string>{"ctxfwd", "--vdev=net_pcap0,rx_pcap=/t/in.pcap,infinite_rx=1",
                                      "--vdev=net_null0,no-rx=1", "--no-pci",
                                      "--file-prefix=ctxfwd-7", "--no-huge", "-m", "100"}));
  ASSERT_EQ(plan_eal(eal, scan_eal_args(eal), true, {"/t/in.pcap", "/t/out.pcap"},
                     HugepageInfo{1u << 30, 2u << 20, true}, 100, 7, p),
            "");
  EXPECT_TRUE(p.hugepages);
  EXPECT_EQ(p.args, (std::vector<std::string>{
                        "ctxfwd", "--vdev=net_pcap0,rx_pcap=/t/in.pcap,tx_pcap=/t/out.pcap",
                        "--no-pci", "--file-prefix=ctxfwd-7", "--huge-unlink", "-m", "100"}));
  EXPECT_NE(plan_eal(eal, scan_eal_args(eal), true, {"/t/a,b.pcap", ""}, none, 100, 7, p)
                .find("holds ',' or '='"),
            std::string::npos);
}

TEST(CtxfwdEalPlan, MemoryEstimateGrowsWithWhatTheRunHolds) {
  MemoryNeed n{8191, 1, 16384, 4096, false};
  const std::uint64_t base = estimate_memory_mb(n);
  EXPECT_GT(base, 8191u * 2048 >> 20);
  n.flow_memory_from_dpdk = true;
  EXPECT_EQ(estimate_memory_mb(n), base + 64);  // 16384 flows x 4 KiB in DPDK's heap
  n.workers = 2;
  EXPECT_GT(estimate_memory_mb(n), base + 128);
}

TEST(CtxfwdPorts, PairsFromTheMapThenInOrder) {
  std::vector<std::uint16_t> dst;
  const std::vector<std::uint16_t> four{0, 1, 2, 3};
  ASSERT_EQ(pair_ports(four, {}, dst), "");
  EXPECT_EQ(dst, (std::vector<std::uint16_t>{1, 0, 3, 2}));
  const std::vector<PortPair> map{{0, 3}};
  ASSERT_EQ(pair_ports(four, map, dst), "");
  EXPECT_EQ(dst, (std::vector<std::uint16_t>{3, 2, 1, 0}));
  const std::vector<std::uint16_t> odd{0, 2, 5};
  ASSERT_EQ(pair_ports(odd, {}, dst), "");
  EXPECT_EQ(dst[0], 2);
  EXPECT_EQ(dst[2], 0);
  EXPECT_EQ(dst[5], 5);  // the odd one forwards to itself
  EXPECT_EQ(dst[1], kNoPort);
  const std::vector<PortPair> self{{1, 1}};
  ASSERT_EQ(pair_ports(four, self, dst), "");
  EXPECT_EQ(dst, (std::vector<std::uint16_t>{2, 1, 0, 3}));
  const std::vector<PortPair> foreign{{0, 7}};
  EXPECT_NE(pair_ports(four, foreign, dst).find("port 7 is not an enabled port"),
            std::string::npos);
}

TEST(CtxfwdLcores, PortsGoToTheLeastLoadedLcorePreferringTheirSocket) {
  const std::vector<LcoreInfo> workers{{1, 0}, {2, 1}, {3, 1}};
  const std::vector<PortInfo> ports{{0, 1}, {1, 1}, {2, 0}, {3, -1}};
  std::vector<LcoreAssignment> plan;
  ASSERT_EQ(plan_lcores(workers, ports, false, plan), "");
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[1].rx_ports, (std::vector<std::uint16_t>{0}));
  EXPECT_EQ(plan[2].rx_ports, (std::vector<std::uint16_t>{1}));
  EXPECT_EQ(plan[0].rx_ports, (std::vector<std::uint16_t>{2, 3}));
  for (const LcoreAssignment& a : plan)
    EXPECT_EQ(a.role, Role::forward);
  // More lcores than ports: the rest idle.
  const std::vector<PortInfo> one{{0, -1}};
  ASSERT_EQ(plan_lcores(workers, one, false, plan), "");
  EXPECT_EQ(plan[0].role, Role::forward);
  EXPECT_EQ(plan[1].role, Role::idle);
  EXPECT_EQ(plan[2].role, Role::idle);
}

TEST(CtxfwdLcores, PipelinePairsWorkers) {
  const std::vector<LcoreInfo> workers{{1, 0}, {2, 0}, {3, 0}};
  const std::vector<PortInfo> ports{{0, 0}};
  std::vector<LcoreAssignment> plan;
  ASSERT_EQ(plan_lcores(workers, ports, true, plan), "");
  EXPECT_EQ(plan[0].role, Role::pipeline_rx);
  EXPECT_EQ(plan[0].peer, 1);
  EXPECT_EQ(plan[1].role, Role::pipeline_tx);
  EXPECT_EQ(plan[1].peer, 0);
  EXPECT_EQ(plan[2].role, Role::idle);  // an odd last worker
  EXPECT_EQ(plan[0].rx_ports, (std::vector<std::uint16_t>{0}));
  EXPECT_TRUE(plan[1].rx_ports.empty());
  const std::vector<LcoreInfo> one{{1, 0}};
  EXPECT_NE(plan_lcores(one, ports, true, plan).find("--pipeline needs two worker lcores"),
            std::string::npos);
  EXPECT_NE(plan_lcores({}, ports, false, plan).find("no worker lcore"), std::string::npos);
  EXPECT_NE(plan_lcores(workers, {}, false, plan).find("no port"), std::string::npos);
}

}  // namespace
}  // namespace ctxfwd
