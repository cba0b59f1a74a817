// ctxfwd end to end: the real binary on ctxgen captures (net_pcap rx from a finite pcap,
// tx to a pcap), compared with the generator's own account of what it wrote (manifest
// and --packet-log), never with ctxfwd's parser. Each run is its own process with its own
// EAL: --no-huge, --no-shconf, --no-telemetry and a unique --file-prefix, so tests run in
// parallel without root or hugepages.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ctxfwd_harness.h"
#include "frame_bytes.h"

namespace ctxfwd::testing {
namespace {

using namespace std::chrono_literals;

// A generated capture and the generator's account of it.
struct Input {
  std::string pcap;
  std::vector<Frame> frames;
  std::vector<LogLine> log;
  Json manifest;
};

// One ctxfwd run and what it left behind.
struct AppRun {
  ProcessResult proc;
  Json stats;
  std::vector<Frame> out;  // the tx pcap of port 0 (when there is one)
};

std::string unique_prefix() {
  static std::atomic<int> n{0};
  return "ctxfwd_e2e_" + std::to_string(getpid()) + "_" + std::to_string(n++);
}

class Ctxfwd : public ::testing::Test {
 protected:
  Input generate(const std::string& name, std::vector<std::string> args) {
    Input in;
    in.pcap = dir_ / (name + ".pcap");
    args.insert(args.end(), {"--out", in.pcap, "--packet-log", dir_ / (name + ".log")});
    if (!run_ctxgen(args, dir_ / (name + ".ctxgen.txt"))) return in;
    in.frames = read_pcap(in.pcap);
    in.log = read_packet_log(dir_ / (name + ".log"));
    in.manifest = read_json(dir_ / (name + ".manifest.json"));
    EXPECT_EQ(in.frames.size(), in.log.size());
    return in;
  }

  // ctxfwd with `eal` (lcores and devices) plus the common test EAL arguments.
  AppRun run(std::vector<std::string> eal, const std::vector<std::string>& app,
             std::chrono::milliseconds signal_after = {}, int sig = 0) {
    const std::string name = "run" + std::to_string(runs_++);
    std::vector<std::string> argv{env_or_fail("CTXFWD_BIN")};
    argv.insert(argv.end(), eal.begin(), eal.end());
    const std::string prefix = unique_prefix();
    argv.insert(argv.end(), {"--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry",
                             "--file-prefix", prefix, "--"});
    argv.insert(argv.end(), app.begin(), app.end());
    argv.insert(argv.end(), {"--stats-json", dir_ / (name + ".json"), "--stats-period", "0"});
    AppRun r;
    r.proc = run_process(argv, dir_ / (name + ".txt"), 240s, signal_after, sig);
    remove_eal_runtime_dir(prefix);
    EXPECT_FALSE(r.proc.timed_out) << r.proc.output;
    if (r.proc.status == 0) r.stats = read_json(dir_ / (name + ".json"));
    return r;
  }

  // A single pcap port: rx from `in`, tx to a new pcap; stops after the whole input.
  AppRun forward_pcap(const Input& in, std::vector<std::string> app,
                      std::vector<std::string> lcores = {"-l", "0,1"}) {
    const std::string out = dir_ / ("out" + std::to_string(runs_) + ".pcap");
    lcores.push_back("--vdev=net_pcap0,rx_pcap=" + in.pcap + ",tx_pcap=" + out);
    app.insert(app.end(), {"--max-packets", std::to_string(in.frames.size())});
    AppRun r = run(lcores, app);
    if (r.proc.status == 0) r.out = read_pcap(out);
    return r;
  }

  TempDir dir_;
  int runs_ = 0;
};

// The frames a run should forward: valid (flow and passthrough) ones, in order, and for
// flows only those whose id `admit` accepts.
template <class Admit>
std::vector<const Frame*> expected_frames(const Input& in, Admit admit) {
  std::vector<const Frame*> v;
  for (std::size_t i = 0; i < in.log.size() && i < in.frames.size(); ++i) {
    const LogLine& l = in.log[i];
    if (l.cls == "passthrough" || (l.cls == "flow" && admit(l.flow))) v.push_back(&in.frames[i]);
  }
  return v;
}
std::vector<const Frame*> valid_frames(const Input& in) {
  return expected_frames(in, [](long) { return true; });
}

// The MACs l2fwd writes: destination 02:00:00:00:00:<port>, source the tx port's.
std::vector<std::uint8_t> tx_port_mac(const AppRun& r, unsigned port) {
  const json_t* ports = json_object_get(r.stats.get(), "ports");
  for (std::size_t i = 0; ports != nullptr && i < json_array_size(ports); ++i) {
    const json_t* p = json_array_get(ports, i);
    if (json_u64(p, {"port"}) == port) return parse_mac(json_str(p, "mac"));
  }
  ADD_FAILURE() << "no port " << port << " in the summary";
  return {};
}

// `out` equals `want` frame by frame; with `rewrite`, apart from the MACs, which must be
// l2fwd's for tx port `port`.
void expect_forwarded(const AppRun& r, const std::vector<Frame>& out,
                      const std::vector<const Frame*>& want, bool rewrite, unsigned port = 0) {
  ASSERT_EQ(out.size(), want.size());
  const std::vector<std::uint8_t> src =
      rewrite ? tx_port_mac(r, port) : std::vector<std::uint8_t>{};
  const std::vector<std::uint8_t> dst{0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(port)};
  for (std::size_t i = 0; i < out.size(); ++i) {
    const Frame& o = out[i];
    const Frame& w = *want[i];
    ASSERT_EQ(o.size(), w.size()) << "frame " << i;
    if (!rewrite) {
      ASSERT_TRUE(o == w) << "frame " << i << " differs";
      continue;
    }
    ASSERT_TRUE(std::equal(dst.begin(), dst.end(), o.begin())) << "dst MAC of frame " << i;
    ASSERT_TRUE(std::equal(src.begin(), src.end(), o.begin() + 6)) << "src MAC of frame " << i;
    ASSERT_TRUE(std::equal(o.begin() + 12, o.end(), w.begin() + 12)) << "frame " << i << " differs";
  }
}

// The summary's counts against the generator's manifest, for a run over all of `in` with
// a long idle timeout (no flow expires).
void expect_counts_match_manifest(const AppRun& r, const Input& in) {
  const json_t* s = r.stats.get();
  const json_t* m = in.manifest.get();
  EXPECT_EQ(json_u64(s, {"rx_packets"}), json_u64(m, {"packets"}));
  EXPECT_EQ(json_u64(s, {"tx_packets"}), json_u64(m, {"valid_packets"}));
  EXPECT_EQ(json_u64(s, {"passthrough"}), json_u64(m, {"passthrough_packets"}));
  EXPECT_EQ(json_u64(s, {"malformed"}), json_u64(m, {"malformed_packets"}));
  EXPECT_EQ(json_u64(s, {"dropped"}), json_u64(m, {"malformed_packets"}));
  const json_t* kinds = json_object_get(m, "malformed_by_kind");
  const char* kind = nullptr;
  const json_t* n = nullptr;
  json_object_foreach(const_cast<json_t*>(kinds), kind, n) {
    EXPECT_EQ(json_u64(s, {"malformed_by_reason", kind}),
              static_cast<std::uint64_t>(json_integer_value(n)))
        << kind;
  }
  EXPECT_EQ(json_u64(s, {"flows_created"}), json_u64(m, {"flows"}));
  EXPECT_EQ(json_u64(s, {"flows_ended"}),
            json_u64(m, {"flow_stats", "ended_fin"}) + json_u64(m, {"flow_stats", "ended_rst"}));
  EXPECT_EQ(json_u64(s, {"flows_expired"}), 0u);
  EXPECT_EQ(json_u64(s, {"flows_live"}), json_u64(m, {"flow_stats", "open_at_end"}));
  EXPECT_EQ(json_u64(s, {"alloc_failures"}), 0u);
  // The generator sends nothing on an ended flow's 5-tuple but a new flow's SYN: no late
  // segments; a reuse while the closed flow lingers reopens it. Every closed flow is
  // released once: by its linger, by a SYN, for a new flow, or at stop.
  EXPECT_EQ(json_u64(s, {"flows_ended_fin"}), json_u64(m, {"flow_stats", "ended_fin"}));
  EXPECT_EQ(json_u64(s, {"flows_ended_rst"}), json_u64(m, {"flow_stats", "ended_rst"}));
  EXPECT_EQ(json_u64(s, {"late_segments"}), 0u);
  EXPECT_LE(json_u64(s, {"flows_reopened"}), json_u64(m, {"flow_stats", "reused_5tuple"}));
  EXPECT_EQ(json_u64(s, {"flows_reopened"}) + json_u64(s, {"linger_expired"}) +
                json_u64(s, {"closed_reclaimed"}) + json_u64(s, {"closed_released_at_stop"}),
            json_u64(s, {"flows_ended"}));
}

// Every flow context came back: bytes in use at the end equal those at the start, on
// every lcore, and something was allocated on the way.
void expect_memory_returned(const AppRun& r) {
  const json_t* s = r.stats.get();
  EXPECT_EQ(json_u64(s, {"bytes_in_use"}), json_u64(s, {"bytes_in_use_start"}));
  const json_t* lcores = json_object_get(s, "lcores");
  ASSERT_GT(json_array_size(lcores), 0u);
  std::uint64_t peak = 0;
  for (std::size_t i = 0; i < json_array_size(lcores); ++i) {
    const json_t* l = json_array_get(lcores, i);
    EXPECT_EQ(json_u64(l, {"bytes_in_use"}), json_u64(l, {"bytes_in_use_start"}));
    peak += json_u64(l, {"peak_bytes"});
  }
  EXPECT_GT(peak, 0u);
}

TEST_F(Ctxfwd, ForwardsValidPacketsWithRewrittenMacsForEachFlowAllocator) {
  const Input in = generate("mixed", {"--profile", "mixed", "--seed", "3"});
  ASSERT_FALSE(in.frames.empty());
  std::map<std::string, std::vector<Frame>> outputs;
  for (const char* kind : {"ctxalloc", "rte_malloc", "malloc"}) {
    SCOPED_TRACE(kind);
    const AppRun r = forward_pcap(in, {"--flow-alloc", kind});
    ASSERT_EQ(r.proc.status, 0) << r.proc.output;
    EXPECT_EQ(json_str(r.stats.get(), "flow_alloc"), kind);
    expect_forwarded(r, r.out, valid_frames(in), true);
    expect_counts_match_manifest(r, in);
    expect_memory_returned(r);
    EXPECT_EQ(json_u64(r.stats.get(), {"cross_lcore_frees"}), 0u);
    outputs[kind] = r.out;
  }
  EXPECT_TRUE(outputs["rte_malloc"] == outputs["malloc"]);
  EXPECT_TRUE(outputs["ctxalloc"] == outputs["malloc"]);
}

// One TCP connection as a real stack closes it, then the 5-tuple reused: SYN, SYN/ACK,
// ACK, data, FIN (ends the flow), then what is in flight after it: the peer's FIN/ACK,
// the last ACK, a RST answering it; a new SYN (a new flow on the closed one), its RST, a
// stray segment after that. With the linger (the default) the late ones are counted as
// such and forwarded; with --close-linger-ms 0 each one after an end starts a flow.
TEST_F(Ctxfwd, ClosedTcpFlowsLingerAndCountTheirLateSegments) {
  constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
  struct Seg {
    bool from_client;
    std::uint8_t flags;
  };
  const std::vector<Seg> segs = {
      {true, kSyn},        {false, kSyn | kAck}, {true, kAck},        {true, kPsh | kAck},
      {true, kFin | kAck}, {false, kFin | kAck}, {true, kAck},        {false, kRst},
      {true, kSyn},        {false, kRst | kAck}, {true, kPsh | kAck},
  };
  Input in;
  in.pcap = dir_ / "close.pcap";
  {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
    ASSERT_NE(dead, nullptr);
    pcap_dumper_t* d = pcap_dump_open(dead, in.pcap.c_str());
    ASSERT_NE(d, nullptr) << pcap_geterr(dead);
    long us = 0;
    for (const Seg& g : segs) {
      Bytes b;
      b.eth(0x0800);
      if (g.from_client) {
        b.ipv4(40, 6, {10, 0, 0, 1}, {10, 0, 0, 2}).tcp(40000, 80, g.flags);
      } else {
        b.ipv4(40, 6, {10, 0, 0, 2}, {10, 0, 0, 1}).tcp(80, 40000, g.flags);
      }
      b.zeros(60 - b.size());  // Ethernet's minimum frame
      std::vector<std::byte> bytes = b.frame();
      in.frames.emplace_back(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                             reinterpret_cast<const std::uint8_t*>(bytes.data()) + bytes.size());
      pcap_pkthdr h{};
      h.ts.tv_usec = us++;
      h.caplen = h.len = static_cast<bpf_u_int32>(bytes.size());
      pcap_dump(reinterpret_cast<u_char*>(d), &h, in.frames.back().data());
    }
    pcap_dump_close(d);
    pcap_close(dead);
  }
  for (const char* kind : {"ctxalloc", "malloc"}) {
    SCOPED_TRACE(kind);
    const AppRun r = forward_pcap(in, {"--flow-alloc", kind, "--no-mac-updating"});
    ASSERT_EQ(r.proc.status, 0) << r.proc.output;
    const json_t* s = r.stats.get();
    EXPECT_EQ(r.out, in.frames) << "every segment forwarded, unchanged";
    EXPECT_EQ(json_u64(s, {"close_linger_ms"}), 2000u);
    EXPECT_EQ(json_u64(s, {"flows_created"}), 2u) << "the connection, then the reuse";
    EXPECT_EQ(json_u64(s, {"flows_ended"}), 2u);
    EXPECT_EQ(json_u64(s, {"flows_ended_fin"}), 1u);
    EXPECT_EQ(json_u64(s, {"flows_ended_rst"}), 1u);
    EXPECT_EQ(json_u64(s, {"late_segments"}), 4u) << "FIN/ACK, ACK, RST; the stray segment";
    EXPECT_EQ(json_u64(s, {"flows_reopened"}), 1u);
    EXPECT_EQ(json_u64(s, {"flows_closing"}), 1u) << "the second, lingering at stop";
    EXPECT_EQ(json_u64(s, {"closed_released_at_stop"}), 1u);
    EXPECT_EQ(json_u64(s, {"flows_live"}), 0u);
    expect_memory_returned(r);
  }
  // No linger: the old rule, each packet after an end starts a flow.
  const AppRun r = forward_pcap(in, {"--close-linger-ms", "0", "--no-mac-updating"});
  ASSERT_EQ(r.proc.status, 0) << r.proc.output;
  const json_t* s = r.stats.get();
  EXPECT_EQ(r.out, in.frames);
  EXPECT_EQ(json_u64(s, {"flows_created"}), 5u);
  EXPECT_EQ(json_u64(s, {"flows_ended"}), 4u);
  EXPECT_EQ(json_u64(s, {"late_segments"}), 0u);
  EXPECT_EQ(json_u64(s, {"flows_live"}), 1u);
  expect_memory_returned(r);
}

TEST_F(Ctxfwd, NoMacUpdatingForwardsFramesUnchanged) {
  const Input in = generate("default", {"--profile", "default", "--seed", "5"});
  const AppRun r = forward_pcap(in, {"--no-mac-updating"});
  ASSERT_EQ(r.proc.status, 0) << r.proc.output;
  expect_forwarded(r, r.out, valid_frames(in), false);
  expect_counts_match_manifest(r, in);
}

TEST_F(Ctxfwd, PipelineGivesTheSameOutputWithCrossLcoreFrees) {
  const Input in = generate("mixed", {"--profile", "mixed", "--seed", "4"});
  const AppRun direct = forward_pcap(in, {});
  ASSERT_EQ(direct.proc.status, 0) << direct.proc.output;
  for (const char* kind : {"ctxalloc", "rte_malloc", "malloc"}) {
    SCOPED_TRACE(kind);
    // Main lcore and rx lcore share core 0, the tx lcore has core 1.
    const AppRun r =
        forward_pcap(in, {"--pipeline", "--flow-alloc", kind}, {"--lcores", "0@0,1@0,2@1"});
    ASSERT_EQ(r.proc.status, 0) << r.proc.output;
    EXPECT_TRUE(r.out == direct.out);
    expect_counts_match_manifest(r, in);
    expect_memory_returned(r);
    const json_t* s = r.stats.get();
    // One record per forwarded packet, each freed on the tx lcore.
    EXPECT_EQ(json_u64(s, {"pipeline_records"}), json_u64(s, {"tx_packets"}));
    EXPECT_EQ(json_u64(s, {"cross_lcore_frees"}), json_u64(s, {"tx_packets"}));
    EXPECT_TRUE(json_bool(s, "pipeline"));
  }
}

// --mbuf-pool ctxalloc: the mbufs come from the plugin's mempool driver; the output is
// the default pool's, run to completion and with --pipeline (where the tx lcore frees
// the mbufs the rx lcore's device allocated), for a ctxalloc and a malloc flow allocator.
TEST_F(Ctxfwd, MbufsFromTheCtxallocMempoolDriverGiveTheSameOutput) {
  const Input in = generate("mixed", {"--profile", "mixed", "--seed", "5"});
  const AppRun ring = forward_pcap(in, {});
  ASSERT_EQ(ring.proc.status, 0) << ring.proc.output;
  EXPECT_EQ(json_str(ring.stats.get(), "mbuf_pool"), "ring_mp_mc");
  EXPECT_NE(ring.proc.output.find("mempool driver ring_mp_mc"), std::string::npos)
      << ring.proc.output;
  for (const char* kind : {"ctxalloc", "malloc"}) {
    for (const bool pipeline : {false, true}) {
      SCOPED_TRACE(std::string(kind) + (pipeline ? " pipeline" : ""));
      std::vector<std::string> app{"--mbuf-pool", "ctxalloc", "--flow-alloc", kind};
      if (pipeline) app.push_back("--pipeline");
      const AppRun r =
          pipeline ? forward_pcap(in, app, {"--lcores", "0@0,1@0,2@1"}) : forward_pcap(in, app);
      ASSERT_EQ(r.proc.status, 0) << r.proc.output;
      EXPECT_EQ(json_str(r.stats.get(), "mbuf_pool"), "ctxalloc");
      EXPECT_NE(r.proc.output.find("mempool driver ctxalloc"), std::string::npos);
      // The plugin's own line: the pool is really the driver's.
      EXPECT_NE(r.proc.output.find("mempool ctxfwd_mbufs_0: "), std::string::npos);
      EXPECT_NE(r.proc.output.find("ops ctxalloc"), std::string::npos) << r.proc.output;
      EXPECT_TRUE(r.out == ring.out);
      expect_counts_match_manifest(r, in);
      expect_memory_returned(r);
    }
  }
}

TEST_F(Ctxfwd, IdleFlowsExpire) {
  const Input in = generate("default", {"--profile", "default", "--seed", "6"});
  const std::string out = dir_ / "idle-out.pcap";
  // Runs on after the input ends, so that every flow still open goes idle and expires.
  const AppRun r = run({"-l", "0,1", "--vdev=net_pcap0,rx_pcap=" + in.pcap + ",tx_pcap=" + out},
                       {"--idle-timeout-ms", "100", "--duration", "2"});
  ASSERT_EQ(r.proc.status, 0) << r.proc.output;
  const json_t* s = r.stats.get();
  const json_t* m = in.manifest.get();
  EXPECT_EQ(json_u64(s, {"rx_packets"}), json_u64(m, {"packets"}));
  EXPECT_EQ(json_u64(s, {"flows_live"}), 0u);
  // FIN/RST ends exactly the manifest's closing flows; every other flow expired. (A stall
  // of the loaded machine longer than 100 ms could split a flow in two: created may then
  // exceed the manifest's count, but the balance holds.)
  const std::uint64_t ended =
      json_u64(m, {"flow_stats", "ended_fin"}) + json_u64(m, {"flow_stats", "ended_rst"});
  EXPECT_EQ(json_u64(s, {"flows_ended"}), ended);
  EXPECT_GE(json_u64(s, {"flows_created"}), json_u64(m, {"flows"}));
  EXPECT_EQ(json_u64(s, {"flows_expired"}), json_u64(s, {"flows_created"}) - ended);
  EXPECT_GE(json_u64(s, {"flows_expired"}), json_u64(m, {"flow_stats", "open_at_end"}));
  expect_memory_returned(r);
}

TEST_F(Ctxfwd, FloodIsBoundedByMaxFlowsAndAdmittedFlowsKeepForwarding) {
  // 20,000 flows of 2-3 packets, 4,096 open at once, none ending.
  const Input in =
      generate("flood", {"--profile", "flood", "--flows", "20000", "--packets", "50000"});
  constexpr long kMaxFlows = 1000;
  // rte_malloc: a 4 KiB budget per flow; ctxalloc: the default configuration's 16 KiB
  // flow contexts.
  for (const auto& [kind, kBudget] : {std::pair<const char*, std::uint64_t>{"rte_malloc", 4096},
                                      std::pair<const char*, std::uint64_t>{"ctxalloc", 16384}}) {
    SCOPED_TRACE(kind);
    std::vector<std::string> args = {"--flow-alloc", kind, "--max-flows",
                                     std::to_string(kMaxFlows)};
    if (std::string(kind) == "rte_malloc") {
      args.push_back("--flow-context-bytes");
      args.push_back(std::to_string(kBudget));
    }
    const AppRun r = forward_pcap(in, args);
    ASSERT_EQ(r.proc.status, 0) << r.proc.output;
    // Flows are numbered by their first packet: the first 1,000 are admitted, all later
    // ones are dropped (drop, not evict), and the admitted ones forward every packet.
    const auto admitted = expected_frames(in, [](long flow) { return flow < kMaxFlows; });
    expect_forwarded(r, r.out, admitted, true);
    const json_t* s = r.stats.get();
    EXPECT_EQ(json_u64(s, {"flows_created"}), static_cast<std::uint64_t>(kMaxFlows));
    EXPECT_EQ(json_u64(s, {"flows_live"}), static_cast<std::uint64_t>(kMaxFlows));
    EXPECT_EQ(json_u64(s, {"dropped_by_reason", "flow_table_full"}),
              in.frames.size() - admitted.size());
    EXPECT_EQ(json_u64(s, {"tx_packets"}), admitted.size());
    EXPECT_EQ(json_u64(s, {"alloc_failures"}), 0u);
    // The bound: never more than max_flows x the per-flow budget, on the lcore.
    const json_t* lcore = json_array_get(json_object_get(s, "lcores"), 0);
    EXPECT_LE(json_u64(lcore, {"peak_bytes"}), kMaxFlows * kBudget);
    EXPECT_GT(json_u64(lcore, {"peak_bytes"}), 0u);
    EXPECT_EQ(json_u64(s, {"memory_bound_bytes"}), kMaxFlows * kBudget);
    expect_memory_returned(r);
  }
}

TEST_F(Ctxfwd, RefusedFlowMemoryIsCountedAndThePacketsDropped) {
  const Input in = generate("default", {"--profile", "default", "--seed", "8"});
  // 256 bytes cannot hold a deque's first node (512 B): every flow's memory is refused.
  const AppRun r = forward_pcap(in, {"--flow-alloc", "rte_malloc", "--flow-context-bytes", "256"});
  ASSERT_EQ(r.proc.status, 0) << r.proc.output;
  const json_t* s = r.stats.get();
  const json_t* m = in.manifest.get();
  EXPECT_EQ(json_u64(s, {"tx_packets"}), json_u64(m, {"passthrough_packets"}));
  EXPECT_EQ(json_u64(s, {"dropped_by_reason", "flow_alloc_failed"}), json_u64(m, {"flow_packets"}));
  EXPECT_EQ(json_u64(s, {"flows_failed"}), json_u64(m, {"flow_packets"}));
  EXPECT_EQ(json_u64(s, {"flows_created"}), 0u);
  EXPECT_GE(json_u64(s, {"alloc_failures"}), json_u64(m, {"flow_packets"}));
  EXPECT_EQ(json_u64(s, {"bytes_in_use"}), 0u);
}

TEST_F(Ctxfwd, TwoPortsOnTwoLcoresForwardToEachOther) {
  const Input a = generate("a", {"--profile", "default", "--seed", "11"});
  const Input b = generate("b", {"--profile", "default", "--seed", "12"});
  const std::string out_a = dir_ / "two-a.pcap";
  const std::string out_b = dir_ / "two-b.pcap";
  const std::string total = std::to_string(a.frames.size() + b.frames.size());
  const AppRun r =
      run({"--lcores", "0@0,1@0,2@1", "--vdev=net_pcap0,rx_pcap=" + a.pcap + ",tx_pcap=" + out_a,
           "--vdev=net_pcap1,rx_pcap=" + b.pcap + ",tx_pcap=" + out_b},
          {"--max-packets", total, "--portmap", "(0,1)"});
  ASSERT_EQ(r.proc.status, 0) << r.proc.output;
  // Port 0's packets leave by port 1 and the other way round.
  expect_forwarded(r, read_pcap(out_b), valid_frames(a), true, 1);
  expect_forwarded(r, read_pcap(out_a), valid_frames(b), true, 0);
  const json_t* lcores = json_object_get(r.stats.get(), "lcores");
  ASSERT_EQ(json_array_size(lcores), 2u);
  for (std::size_t i = 0; i < 2; ++i)
    EXPECT_GT(json_u64(json_array_get(lcores, i), {"rx_packets"}), 0u) << "lcore " << i;
  EXPECT_EQ(json_u64(r.stats.get(), {"flows_created"}),
            json_u64(a.manifest.get(), {"flows"}) + json_u64(b.manifest.get(), {"flows"}));
  expect_memory_returned(r);
}

TEST_F(Ctxfwd, EmbeddedDefaultWithGivenCaptures) {
  const Input in = generate("default", {"--profile", "default", "--seed", "9"});
  const std::string out = dir_ / "embedded-out.pcap";
  // No device for EAL: ctxfwd adds its own (net_pcap rx -> tx once) and stops at the end.
  const AppRun r = run({"-l", "0,1"}, {"--rx-pcap", in.pcap, "--tx-pcap", out});
  ASSERT_EQ(r.proc.status, 0) << r.proc.output;
  EXPECT_TRUE(json_bool(r.stats.get(), "embedded_default"));
  EXPECT_FALSE(json_bool(r.stats.get(), "hugepages"));
  EXPECT_EQ(json_str(r.stats.get(), "stop_reason"), "max-packets");
  expect_forwarded(r, read_pcap(out), valid_frames(in), true);
  expect_counts_match_manifest(r, in);
}

TEST_F(Ctxfwd, EmbeddedDefaultGeneratesAndReplaysUntilSigterm) {
  // Nothing but lcores: ctxgen traffic, replayed forever to net_null, until SIGTERM.
  const AppRun r = run({"-l", "0,1"}, {}, 2500ms, SIGTERM);
  ASSERT_EQ(r.proc.status, 0) << r.proc.output;
  const json_t* s = r.stats.get();
  EXPECT_TRUE(json_bool(s, "embedded_default"));
  EXPECT_EQ(json_str(s, "stop_reason"), "SIGTERM");
  // The default profile is 2,000 packets; replayed, far more go through.
  EXPECT_GT(json_u64(s, {"rx_packets"}), 2000u);
  EXPECT_EQ(json_u64(s, {"rx_packets"}), json_u64(s, {"tx_packets"}) + json_u64(s, {"dropped"}));
  EXPECT_GT(json_u64(s, {"flows_ended"}), 0u);
  EXPECT_GT(json_u64(s, {"malformed"}), 0u);
  expect_memory_returned(r);
  EXPECT_NE(r.proc.output.find("embedded default input: ctxgen profile default"), std::string::npos)
      << r.proc.output;
}

TEST_F(Ctxfwd, CtxallocSetsUpPerLcoreHeapsAndTearsThemDownWithNothingInUse) {
  const Input in = generate(
      "ctxalloc", {"--profile", "churn", "--flows", "2000", "--packets", "20000", "--seed", "21"});
  const AppRun r = forward_pcap(in, {"--flow-alloc", "ctxalloc"});
  ASSERT_EQ(r.proc.status, 0) << r.proc.output;
  expect_counts_match_manifest(r, in);
  expect_memory_returned(r);
  EXPECT_NE(r.proc.output.find("configuration: embedded:config/default.ini"), std::string::npos)
      << r.proc.output;
  EXPECT_NE(r.proc.output.find(": ctxalloc heap of "), std::string::npos) << r.proc.output;
  EXPECT_NE(r.proc.output.find("torn down"), std::string::npos) << r.proc.output;
  EXPECT_NE(r.proc.output.find("nothing in use"), std::string::npos) << r.proc.output;
}

TEST_F(Ctxfwd, CtxallocRefusesAFlowSizeTheConfigurationDoesNotHave) {
  const AppRun r = run({"-l", "0,1"}, {"--flow-alloc", "ctxalloc", "--flow-context-bytes", "4096"});
  EXPECT_EQ(r.proc.status, 1) << r.proc.output;
  EXPECT_NE(r.proc.output.find("[flows] budget (16384 in embedded:config/default.ini); set it "
                               "there"),
            std::string::npos)
      << r.proc.output;
  // Refused before EAL starts: no device was probed.
  EXPECT_EQ(r.proc.output.find("EAL:"), std::string::npos) << r.proc.output;
}

// Sizing at start-up: max_flows is a process-wide count, and a file whose lcores cannot
// hold their shares of flow blocks is refused with the file, line, bytes needed and had.
TEST_F(Ctxfwd, MaxFlowsBeyondTheLcoresMemoryRefusesToStart) {
  const std::string cfg = dir_ / "too-many-flows.ini";
  std::ofstream(cfg) << "[ctxalloc]\nhugepages = prefer\nfallback = context -> thread -> global\n"
                        "[socket.0]\nlcores = 0-1\nhugepage_size = 2M\nhugepages = 64\n"
                        "global_heap = 32M\n[lcore.default]\nthread_allocator = tree\n"
                        "thread_size = 8M\n[flows]\nkind = bump\nblock_size = 16K\n"
                        "ready_blocks = 256\nmax_flows = 4096\nidle_timeout = 10s\n";
  const AppRun r = run({"-l", "0,1"}, {"--flow-alloc", "ctxalloc", "--config", cfg});
  EXPECT_EQ(r.proc.status, 1) << r.proc.output;
  EXPECT_NE(r.proc.output.find(cfg + ":16: [flows] max_flows: max_flows = 4096 over 2 lcores"),
            std::string::npos)
      << r.proc.output;
  EXPECT_NE(r.proc.output.find("= 32 MiB needed, but its ready blocks (4 MiB) and thread_size "
                               "(8 MiB) give 12 MiB"),
            std::string::npos)
      << r.proc.output;
}

// --max-flows beyond what the (embedded default) configuration holds: its growing flows'
// first-chunk memory is sized from [flows] max_flows at set-up.
TEST_F(Ctxfwd, MaxFlowsOptionBeyondCapacityRefusesToStart) {
  const AppRun r = run({"-l", "0,1"}, {"--flow-alloc", "ctxalloc", "--max-flows", "200000"});
  EXPECT_EQ(r.proc.status, 1) << r.proc.output;
  EXPECT_NE(r.proc.output.find("--max-flows 200000 with embedded:config/default.ini: max_flows = "
                               "200000 needs 200000 x 1 KiB first chunks = 195.31 MiB of flow "
                               "memory, but the flow memory is sized at set-up from [flows] "
                               "max_flows = 100000 (embedded:config/default.ini:46) and holds "
                               "100000 first chunks (97.66 MiB)"),
            std::string::npos)
      << r.proc.output;
}

// A flow's budget refuses a packet's work (10 UDP flows of 200 packets; a 1 KiB budget holds
// the record's first deque node of 32 samples, not a second): with --on-flow-refusal end
// (the default) the flow ends, the packet drops and the next packet starts the flow
// again; with keep the flow stays as it was, every packet is forwarded and the refusals
// are counted.
TEST_F(Ctxfwd, OnFlowRefusalEndsOrKeepsTheFlowAsConfigured) {
  const Input in =
      generate("long", {"--profile", "default", "--flows", "10", "--packets", "2000", "--tcp-share",
                        "0", "--malformed-share", "0", "--passthrough-share", "0", "--concurrency",
                        "10", "--seed", "3"});
  ASSERT_EQ(in.frames.size(), 2000u);
  const std::string cfg = dir_ / "small-budget.ini";
  std::ofstream(cfg) << "[ctxalloc]\nhugepages = prefer\nfallback = context -> thread -> global\n"
                        "[socket.0]\nlcores = 0-1\nhugepage_size = 2M\nhugepages = 112\n"
                        "global_heap = 32M\n[lcore.default]\nthread_allocator = tree\n"
                        "thread_size = 12M\n[flows]\nkind = growing\nfirst_chunk = 1K\n"
                        "max_chunk = 16K\nlarge_block = 4K\nbudget = 1K\nspill = global\n"
                        "growth_size = 16M\nmax_flows = 1000\nidle_timeout = 10s\n";
  const AppRun end = forward_pcap(in, {"--config", cfg, "--flow-alloc", "ctxalloc"});
  ASSERT_EQ(end.proc.status, 0) << end.proc.output;
  const json_t* e = end.stats.get();
  EXPECT_GT(json_u64(e, {"flows_failed"}), 0u);
  EXPECT_EQ(json_u64(e, {"flows_created"}), 10 + json_u64(e, {"flows_failed"}));
  EXPECT_EQ(json_u64(e, {"dropped_by_reason", "flow_alloc_failed"}), json_u64(e, {"flows_failed"}));
  EXPECT_EQ(json_u64(e, {"tx_packets"}), 2000 - json_u64(e, {"flows_failed"}));
  EXPECT_EQ(json_u64(e, {"refusals_kept"}), 0u);
  expect_memory_returned(end);

  const AppRun keep =
      forward_pcap(in, {"--config", cfg, "--flow-alloc", "ctxalloc", "--on-flow-refusal", "keep"});
  ASSERT_EQ(keep.proc.status, 0) << keep.proc.output;
  const json_t* k = keep.stats.get();
  expect_forwarded(keep, keep.out, valid_frames(in), true);
  EXPECT_EQ(json_u64(k, {"tx_packets"}), 2000u);
  EXPECT_EQ(json_u64(k, {"flows_created"}), 10u) << "each flow once";
  EXPECT_EQ(json_u64(k, {"flows_failed"}), 0u);
  EXPECT_EQ(json_u64(k, {"dropped_by_reason", "flow_alloc_failed"}), 0u);
  // A flow's first packets fit its first node (up to 32 samples); the rest are refused by
  // the budget (never the first packet's, which would end the flow).
  EXPECT_GT(json_u64(k, {"refusals_kept"}), 10u * 100);
  EXPECT_LE(json_u64(k, {"refusals_kept"}), 10u * 199);
  expect_memory_returned(keep);

  const AppRun bad = run({"-l", "0,1"}, {"--on-flow-refusal", "drop"});
  EXPECT_EQ(bad.proc.status, 2) << bad.proc.output;
  EXPECT_NE(bad.proc.output.find("--on-flow-refusal"), std::string::npos) << bad.proc.output;
}

// Issue 16's done-when: 50,000 interleaved flows of 4 packets (all live at once at the
// peak), the default configuration: --flow-alloc ctxalloc forwards every valid packet
// with no allocation failure, and its flow memory (the first-chunk and growth segments
// its flows took) is at most twice the peak the malloc run reports for its flows.
TEST_F(Ctxfwd, FiftyThousandConcurrentFlowsOnTheDefaultConfiguration) {
  const Input in = generate("many", {"--profile", "default", "--flows", "50000", "--packets",
                                     "200000", "--concurrency", "50000", "--seed", "16"});
  ASSERT_EQ(in.frames.size(), 200000u);
  std::map<std::string, std::uint64_t> peak;
  for (const char* kind : {"ctxalloc", "malloc"}) {
    SCOPED_TRACE(kind);
    const AppRun r = forward_pcap(in, {"--flow-alloc", kind});
    ASSERT_EQ(r.proc.status, 0) << r.proc.output;
    const json_t* s = r.stats.get();
    const json_t* m = in.manifest.get();
    EXPECT_EQ(json_u64(s, {"max_flows"}), 100000u) << "the default holds 100,000 flows";
    EXPECT_EQ(json_u64(s, {"tx_packets"}), json_u64(m, {"valid_packets"}));
    EXPECT_EQ(r.out.size(), valid_frames(in).size());
    EXPECT_EQ(json_u64(s, {"dropped"}), json_u64(m, {"malformed_packets"}));
    EXPECT_EQ(json_u64(s, {"flows_created"}), json_u64(m, {"flows"}));
    EXPECT_EQ(json_u64(s, {"alloc_failures"}), 0u);
    EXPECT_EQ(json_u64(s, {"dropped_by_reason", "flow_alloc_failed"}), 0u);
    const json_t* lcore = json_array_get(json_object_get(s, "lcores"), 0);
    if (std::string(kind) == "ctxalloc") {
      peak[kind] = json_u64(lcore, {"flow_memory_peak_bytes"});
      EXPECT_EQ(json_u64(lcore, {"flow_refused_budget"}), 0u);
      EXPECT_EQ(json_u64(lcore, {"flow_refused_memory"}), 0u);
      EXPECT_EQ(json_u64(lcore, {"flow_limit_hits"}), 0u);
    } else {
      peak[kind] = json_u64(lcore, {"peak_bytes"});
    }
    EXPECT_GT(peak[kind], 0u);
    expect_memory_returned(r);
  }
  EXPECT_LE(peak["ctxalloc"], 2 * peak["malloc"])
      << "ctxalloc's flow memory " << peak["ctxalloc"] << " B, malloc's peak " << peak["malloc"];
}

TEST_F(Ctxfwd, HelpLeavesNoGeneratedInputBehind) {
  // The embedded default writes its capture and manifest to $TMPDIR; EAL's --help exits
  // inside rte_eal_init, so ctxfwd must not generate them for it (issue 17).
  const std::string tmp = dir_ / "tmpdir";
  ASSERT_TRUE(std::filesystem::create_directory(tmp));
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  setenv("TMPDIR", tmp.c_str(), 1);
  const std::string bin = env_or_fail("CTXFWD_BIN");
  const std::vector<std::vector<std::string>> cases = {
      {bin, "--help"}, {bin, "-l", "0,1", "-h"}, {bin, "--", "--help"}};
  std::vector<ProcessResult> results;
  for (std::size_t i = 0; i < cases.size(); ++i)
    results.push_back(run_process(cases[i], dir_ / ("help" + std::to_string(i) + ".txt"), 60s));
  if (old != nullptr)
    setenv("TMPDIR", saved.c_str(), 1);
  else
    unsetenv("TMPDIR");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const ProcessResult& r = results[i];
    EXPECT_EQ(r.status, 0) << r.output;
    const bool eal = i < 2;
    EXPECT_EQ(r.output.find("EAL common options") != std::string::npos, eal) << r.output;
    EXPECT_EQ(r.output.find("ctxfwd's own: ctxfwd -- --help") != std::string::npos, eal)
        << r.output;
    if (!eal) {
      EXPECT_NE(r.output.find("usage: ctxfwd"), std::string::npos) << r.output;
    }
  }
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(tmp))
    left.push_back(e.path().filename());
  EXPECT_TRUE(left.empty()) << "left in $TMPDIR: " << (left.empty() ? "" : left.front());
}

TEST_F(Ctxfwd, AfPacketPortsPrintTheirL2PitfallsAndFixes) {
  // net_af_packet on the loopback of a new network namespace (nothing else reaches it).
  if (geteuid() != 0) GTEST_SKIP() << "net_af_packet needs root (CAP_NET_RAW)";
  const std::string unshare = "/usr/bin/unshare";  // util-linux
  if (std::system((unshare + " -n true >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "unshare -n fails here: no network namespaces";
  for (const bool mac_updating : {true, false}) {
    const std::string prefix = unique_prefix();
    std::vector<std::string> argv{unshare,
                                  "-n",
                                  env_or_fail("CTXFWD_BIN"),
                                  "-l",
                                  "0,1",
                                  "--no-huge",
                                  "-m",
                                  "256",
                                  "--no-pci",
                                  "--no-shconf",
                                  "--no-telemetry",
                                  "--file-prefix",
                                  prefix,
                                  "--vdev=net_af_packet0,iface=lo",
                                  "--",
                                  "--duration",
                                  "1",
                                  "--stats-period",
                                  "0"};
    if (!mac_updating) argv.push_back("--no-mac-updating");
    const ProcessResult r = run_process(argv, dir_ / (prefix + ".txt"), 60s);
    remove_eal_runtime_dir(prefix);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output.find("port 0 is net_af_packet on lo: the MAC rewrite") != std::string::npos,
              mac_updating)
        << r.output;
    EXPECT_EQ(r.output.find("run with --no-mac-updating") != std::string::npos, mac_updating)
        << r.output;
    EXPECT_NE(r.output.find("port 0 is net_af_packet on lo: senders that offload checksums"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("ethtool -K IFACE tx off"), std::string::npos) << r.output;
  }
}

TEST_F(Ctxfwd, BadCommandLinesAreRefusedBeforeEal) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--duration", "soon"}, "--duration: 'soon' is not a number of seconds"},
      {{"--flow-alloc", "jemalloc"}, "--flow-alloc: 'jemalloc' is not one of"},
      {{"--portmap", "(0,1),(1,2)"}, "appears in two pairs"},
      {{"--max-flows", "0"}, "--max-flows: '0' is not a whole number in [1,"},
      {{"--ring-size", "1000"}, "not a power of two"},
      {{"--config", "/nonexistent/ctxalloc.ini"}, "cannot read"},
      {{"--frobnicate"}, "unknown option '--frobnicate'"},
  };
  for (const auto& [args, message] : cases) {
    const AppRun r = run({"-l", "0,1"}, args);
    EXPECT_EQ(r.proc.status, 2) << r.proc.output;
    EXPECT_NE(r.proc.output.find(message), std::string::npos) << r.proc.output;
    EXPECT_EQ(r.proc.output.find("EAL:"), std::string::npos) << r.proc.output;
  }
}

}  // namespace
}  // namespace ctxfwd::testing
