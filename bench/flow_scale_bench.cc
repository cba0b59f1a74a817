// The flow-scale benchmark (issue 16, item 5): F concurrent flows (10^3 .. 10^6) with a
// seeded mix, each flow's memory through one of five peers, in the same run, the peers
// alternating round by round (medians of the rounds):
//   growing     a ctxalloc GrowingContext per flow (the lcore's FlowChunks pool)
//   malloc      glibc malloc/free per block
//   rte_malloc  rte_malloc/rte_free per block (EAL: one lcore, --no-huge --no-shconf)
//   rte_mempool fixed 256-byte objects of one rte_mempool per block (blocks above 256 B,
//               the large flows' 16 KiB one, through rte_malloc)
//   pmr         a std::pmr::monotonic_buffer_resource per flow (first buffer 1 KiB, on
//               new/delete), its frees no-ops
// The mix (seeded; bench/flow_mix.h): 80% short flows, 18% long flows with a rolling
// window of 8 records, 2% large flows (a 16 KiB block). A flow that ends is replaced by a
// new one at once, so F flows are live throughout.
// Figures per peer and F:
//   open_close_ns  a flow opened (created, key and state asked) and closed, per flow: F
//                  opened, then F closed, on fresh memory (the round's first touch of
//                  its pages: open_close_faults counts them)
//   open_close_warm_ns  the same again at once, on the memory the first pass left (the
//                  growing peer's pool keeps its empty segments, set_spare_segments, as
//                  an lcore keeps its flow memory; malloc keeps its freed chunks)
//   packet_ns      one packet of a random live flow (its record asked, the window's
//                  oldest freed, the flow closed and a new one opened when it ends)
//   memory_ratio   bytes the peer holds for the live flows / bytes they asked, after the
//                  packets (growing: bytes in chunks and large blocks handed out; malloc:
//                  mallinfo2 uordblks + hblkhd; rte_malloc: heap_allocsz_bytes; rte_mempool:
//                  objects in use x their element size, plus rte_malloc's; pmr: bytes the
//                  resources took from new/delete plus the resources themselves);
//                  growing also says where its held bytes go: usable bytes of live
//                  blocks, their headers, the contexts, and held/asked per flow kind
// Also minor page faults per flow opened+closed and per packet (getrusage).
// Output: one JSON object on stdout. Environment: FLOWS (comma list, default
// 1000,10000,100000,1000000), ROUNDS (default 3), PACKETS_PER_FLOW (default 4),
// SEED (default 1), RTE_MALLOC_MAX_FLOWS (default 100000: rte_malloc is left out above it,
// its free-list search making a round at 10^6 flows take minutes; said in the JSON),
// PEERS (comma list, default every peer), GROWING_FIRST_CHUNK / GROWING_MAX_CHUNK.
#include <malloc.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/thread_heap.h"
#include "dpdk_mempool_workloads.h"
#include "flow_mix.h"

using namespace ctxalloc;
using namespace flowmix;

namespace {

struct Figures {
  double open_close_ns = 0, packet_ns = 0, memory_ratio = 0;
  double open_close_faults = 0, packet_faults = 0;            // minor page faults per flow / packet
  double open_close_warm_ns = 0, open_close_warm_faults = 0;  // the same again, memory warm
  std::uint64_t held = 0, asked = 0;
  // growing only: where the held bytes go (usable bytes of live blocks, their 8-byte
  // headers, the contexts' 64 bytes in their first chunks; the rest is free blocks,
  // class rounding's excess is in the usable bytes, and chunk tails not yet used).
  std::uint64_t usable = 0, headers = 0, contexts = 0;
  std::uint64_t kind_held[3] = {}, kind_asked[3] = {}, kind_flows[3] = {};  // per Kind
};

// ---- the peers: open() a flow handle, allocate/free in it, close() it (every block it
// keeps given), held() the bytes held now.

// GROWING_FIRST_CHUNK / GROWING_MAX_CHUNK (bytes; default: GrowingOptions's) shape the
// growing peer's contexts, to try other shapes on the same mix.
GrowingOptions growing_options() {
  GrowingOptions o;
  if (const char* e = std::getenv("GROWING_FIRST_CHUNK"))
    o.first_chunk = std::strtoull(e, nullptr, 10);
  if (const char* e = std::getenv("GROWING_MAX_CHUNK")) o.max_chunk = std::strtoull(e, nullptr, 10);
  if (o.invalid() != nullptr) die(o.invalid());
  return o;
}

struct GrowingPeer : GrowingFlows {
  static constexpr const char* name = "growing";
  GrowingPeer() {
    if (!pool.set_options(growing_options())) die("set_options refused");
    pool.set_spare_segments(~0u);  // an lcore keeps its flow memory (finish() trims)
  }
  std::uint64_t held() const {
    const FlowChunks::Figures f = pool.figures();
    return f.chunk_bytes + f.large_bytes;
  }
  void finish() {
    pool.set_spare_segments(1);
    pool.trim();
  }
  void breakdown(const std::vector<Flow>& fs, Figures& out) const {
    for (const Flow& f : fs) {
      const ContextStats st = static_cast<GrowingContext*>(f.handle)->stats();
      out.usable += st.local.bytes_in_use;
      out.headers += (st.local.allocations - st.spilled_live) * GrowingContext::kBlockHeader;
      out.contexts += sizeof(ChunkHeader) + sizeof(GrowingContext);
      const auto k = static_cast<unsigned>(f.kind);
      out.kind_held[k] += static_cast<GrowingContext*>(f.handle)->held();
      out.kind_asked[k] += f.asked;
      ++out.kind_flows[k];
    }
  }
};

struct MallocPeer : MallocFlows {
  static constexpr const char* name = "malloc";
  std::uint64_t held() const {
    const struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
  }
  void finish() { malloc_trim(0); }
};

std::uint64_t rte_heap_alloc_bytes() {
  rte_malloc_socket_stats st{};
  if (rte_malloc_get_socket_stats(0, &st) != 0) die("rte_malloc_get_socket_stats failed");
  return st.heap_allocsz_bytes;
}

struct RteMallocPeer {
  static constexpr const char* name = "rte_malloc";
  std::uint64_t base = rte_heap_alloc_bytes();
  void* open() { return nullptr; }
  void* allocate(void*, std::size_t n) { return rte_malloc(nullptr, n, 8); }
  void free(void*, void* p, std::size_t) { rte_free(p); }
  void close(void*, const std::vector<std::pair<void*, std::uint32_t>>& blocks) {
    for (auto& b : blocks)
      rte_free(b.first);
  }
  std::uint64_t held() const { return rte_heap_alloc_bytes() - base; }
  void finish() {}
};

struct RteMempoolPeer {
  static constexpr const char* name = "rte_mempool";
  rte_mempool* mp = nullptr;
  std::uint64_t base = 0, in_use = 0;
  explicit RteMempoolPeer(unsigned objects) {
    static unsigned serial = 0;
    const std::string n = "flow_scale_" + std::to_string(serial++);
    mp = rte_mempool_create(n.c_str(), objects, kObject, 256, 0, nullptr, nullptr, nullptr, nullptr,
                            SOCKET_ID_ANY, 0);
    if (mp == nullptr) die("rte_mempool_create failed (EAL memory, -m)");
    base = rte_heap_alloc_bytes();
  }
  ~RteMempoolPeer() { rte_mempool_free(mp); }
  void* open() { return nullptr; }
  void* allocate(void*, std::size_t n) {
    if (n > kObject) return rte_malloc(nullptr, n, 8);
    void* p = nullptr;
    if (rte_mempool_get(mp, &p) != 0) return nullptr;
    ++in_use;
    return p;
  }
  void free(void*, void* p, std::size_t n) {
    if (n > kObject) return rte_free(p);
    rte_mempool_put(mp, p);
    --in_use;
  }
  void close(void* h, const std::vector<std::pair<void*, std::uint32_t>>& blocks) {
    for (auto& b : blocks)
      free(h, b.first, b.second);
  }
  std::uint64_t held() const {
    const std::uint64_t elt = mp->header_size + mp->elt_size + mp->trailer_size;
    return in_use * elt + (rte_heap_alloc_bytes() - base);
  }
  void finish() {}
};

struct CountingResource final : std::pmr::memory_resource {
  std::uint64_t bytes = 0;
  void* do_allocate(std::size_t n, std::size_t a) override {
    bytes += n;
    return ::operator new (n, std::align_val_t{a});
  }
  void do_deallocate(void* p, std::size_t n, std::size_t a) override {
    bytes -= n;
    ::operator delete (p, n, std::align_val_t{a});
  }
  bool do_is_equal(const memory_resource& o) const noexcept override { return this == &o; }
};

struct PmrPeer {
  static constexpr const char* name = "pmr";
  CountingResource upstream;
  std::uint64_t live = 0;
  void* open() {
    ++live;
    return new std::pmr::monotonic_buffer_resource(1024, &upstream);
  }
  void* allocate(void* h, std::size_t n) {
    return static_cast<std::pmr::monotonic_buffer_resource*>(h)->allocate(n, 8);
  }
  void free(void*, void*, std::size_t) {}
  void close(void* h, const std::vector<std::pair<void*, std::uint32_t>>&) {
    delete static_cast<std::pmr::monotonic_buffer_resource*>(h);
    --live;
  }
  std::uint64_t held() const {
    return upstream.bytes + live * sizeof(std::pmr::monotonic_buffer_resource);
  }
  void finish() {}
};

std::uint64_t minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<std::uint64_t>(u.ru_minflt);
}

double ns_since(std::chrono::steady_clock::time_point t0, std::uint64_t ops) {
  const auto d = std::chrono::steady_clock::now() - t0;
  return std::chrono::duration<double, std::nano>(d).count() / static_cast<double>(ops);
}

template <class Peer>
Figures run(Peer& peer, std::size_t flows, std::uint64_t packets, std::uint64_t seed) {
  Driver<Peer> d{peer};
  std::vector<Flow> fs(flows);
  Figures out;
  // Open and close: F opened, then F closed; twice, the second time on the memory the
  // first one left (warm: no first-touch page faults, as on a busy lcore).
  for (int pass = 0; pass < 2; ++pass) {
    Mix mix(seed);
    const std::uint64_t f0 = minor_faults();
    const auto t0 = std::chrono::steady_clock::now();
    for (Flow& f : fs)
      d.open(f, mix);
    for (Flow& f : fs)
      d.close(f);
    const double ns = ns_since(t0, flows);
    const double faults = static_cast<double>(minor_faults() - f0) / static_cast<double>(flows);
    (pass == 0 ? out.open_close_ns : out.open_close_warm_ns) = ns;
    (pass == 0 ? out.open_close_faults : out.open_close_warm_faults) = faults;
  }
  Mix mix(seed + 1);
  for (Flow& f : fs)
    d.open(f, mix);
  std::vector<std::uint32_t> order(packets);
  for (auto& o : order)
    o = static_cast<std::uint32_t>(mix.below(static_cast<unsigned>(flows)));
  const std::uint64_t f0 = minor_faults();
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint32_t i : order)
    d.packet(fs[i], mix);
  out.packet_ns = ns_since(t0, packets);
  out.packet_faults = static_cast<double>(minor_faults() - f0) / static_cast<double>(packets);
  out.held = peer.held();
  out.asked = d.asked;
  out.memory_ratio = static_cast<double>(out.held) / static_cast<double>(out.asked);
  if constexpr (requires { peer.breakdown(fs, out); }) peer.breakdown(fs, out);
  for (Flow& f : fs)
    d.close(f);
  peer.finish();
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

const char* kPeers[] = {"growing", "malloc", "rte_malloc", "rte_mempool", "pmr"};

// PEERS (comma list of kPeers' names, default all): the peers run.
bool peer_wanted(const char* name) {
  const char* e = std::getenv("PEERS");
  if (e == nullptr || *e == 0) return true;
  const std::string list = std::string(",") + e + ",";
  return list.find(std::string(",") + name + ",") != std::string::npos;
}

Figures run_peer(unsigned which, std::size_t flows, std::uint64_t packets, std::uint64_t seed) {
  switch (which) {
    case 0: {
      GrowingPeer p;
      return run(p, flows, packets, seed);
    }
    case 1: {
      MallocPeer p;
      return run(p, flows, packets, seed);
    }
    case 2: {
      RteMallocPeer p;
      return run(p, flows, packets, seed);
    }
    case 3: {  // a flow keeps at most 10 blocks of 256 B or less
      RteMempoolPeer p(static_cast<unsigned>(flows * 10 + 4096));
      return run(p, flows, packets, seed);
    }
    default: {
      PmrPeer p;
      return run(p, flows, packets, seed);
    }
  }
}

std::vector<std::size_t> flow_counts() {
  const char* e = std::getenv("FLOWS");
  std::string s = e ? e : "1000,10000,100000,1000000";
  std::vector<std::size_t> out;
  std::size_t at = 0;
  while (at < s.size()) {
    std::size_t comma = s.find(',', at);
    if (comma == std::string::npos) comma = s.size();
    const long long v = std::atoll(s.substr(at, comma - at).c_str());
    if (v <= 0 || v > 4000000) die("FLOWS: counts from 1 to 4000000, comma-separated");
    out.push_back(static_cast<std::size_t>(v));
    at = comma + 1;
  }
  return out;
}

unsigned env_unsigned(const char* name, unsigned dflt) {
  const char* e = std::getenv(name);
  if (e == nullptr || *e == 0) return dflt;
  const long v = std::atol(e);
  if (v <= 0) die("ROUNDS, PACKETS_PER_FLOW and SEED are positive integers");
  return static_cast<unsigned>(v);
}

std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  char buf[64] = {};
  if (f == nullptr) return "?";
  if (std::fgets(buf, sizeof buf, f) == nullptr) buf[0] = 0;
  std::fclose(f);
  std::string s(buf);
  std::size_t n = 0;
  for (int spaces = 0; n < s.size() && spaces < 3; ++n)
    spaces += s[n] == ' ';
  s.resize(n > 0 ? n - 1 : 0);
  return s;
}

}  // namespace

int main(int, char** argv) {
  const std::vector<std::size_t> counts = flow_counts();
  const unsigned rounds = env_unsigned("ROUNDS", 3);
  const unsigned per_flow = env_unsigned("PACKETS_PER_FLOW", 4);
  const unsigned seed = env_unsigned("SEED", 1);
  // rte_malloc searches its free lists: at 10^6 flows a round takes minutes.
  const unsigned rte_malloc_max = env_unsigned("RTE_MALLOC_MAX_FLOWS", 100000);
  std::vector<std::string> args = {argv[0],       "-l",
                                   "0",           "--no-huge",
                                   "-m",          "4608",
                                   "--no-pci",    "--no-telemetry",
                                   "--no-shconf", "--log-level=*:warning"};
  std::vector<char*> eal;
  for (std::string& a : args)
    eal.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal.size()), eal.data()) < 0) die("rte_eal_init failed");
  std::printf(
      "{\"suite\": \"flow_scale\", \"rounds\": %u, \"packets_per_flow\": %u, "
      "\"seed\": %u, \"load_average_start\": \"%s\", \"results\": [",
      rounds, per_flow, seed, load_average().c_str());
  bool first = true;
  constexpr unsigned kCount = std::size(kPeers);
  for (std::size_t flows : counts) {
    const std::uint64_t packets = std::max<std::uint64_t>(flows * per_flow, 20000);
    std::vector<Figures> all[kCount];
    for (unsigned r = 0; r < rounds; ++r)
      for (unsigned k = 0; k < kCount; ++k) {  // alternating: each round starts one later
        const unsigned which = (k + r) % kCount;
        if (which == 2 && flows > rte_malloc_max) continue;
        if (!peer_wanted(kPeers[which])) continue;
        all[which].push_back(run_peer(which, flows, packets, seed + r));
      }
    for (unsigned w = 0; w < kCount; ++w) {
      if (!peer_wanted(kPeers[w])) continue;
      if (all[w].empty()) {
        std::printf(
            "%s\n  {\"flows\": %zu, \"peer\": \"%s\", \"skipped\": \"more flows than "
            "RTE_MALLOC_MAX_FLOWS (%u)\"}",
            first ? "" : ",", flows, kPeers[w], rte_malloc_max);
        first = false;
        continue;
      }
      std::vector<double> oc, pk, mem, ocf, pkf, ocw, ocwf;
      for (const Figures& f : all[w]) {
        ocw.push_back(f.open_close_warm_ns);
        ocwf.push_back(f.open_close_warm_faults);
        oc.push_back(f.open_close_ns);
        pk.push_back(f.packet_ns);
        mem.push_back(f.memory_ratio);
        ocf.push_back(f.open_close_faults);
        pkf.push_back(f.packet_faults);
      }
      std::printf(
          "%s\n  {\"flows\": %zu, \"peer\": \"%s\", \"packets\": %llu, "
          "\"open_close_ns\": %.2f, \"packet_ns\": %.2f, \"memory_ratio\": %.4f, "
          "\"open_close_faults\": %.4f, \"packet_faults\": %.4f, "
          "\"open_close_warm_ns\": %.2f, \"open_close_warm_faults\": %.4f, "
          "\"held_bytes\": %llu, \"asked_bytes\": %llu",
          first ? "" : ",", flows, kPeers[w], static_cast<unsigned long long>(packets), median(oc),
          median(pk), median(mem), median(ocf), median(pkf), median(ocw), median(ocwf),
          static_cast<unsigned long long>(all[w].back().held),
          static_cast<unsigned long long>(all[w].back().asked));
      const Figures& last = all[w].back();
      if (last.usable != 0) {
        std::printf(
            ", \"held_usable_bytes\": %llu, \"held_header_bytes\": %llu, "
            "\"held_context_bytes\": %llu",
            static_cast<unsigned long long>(last.usable),
            static_cast<unsigned long long>(last.headers),
            static_cast<unsigned long long>(last.contexts));
        const char* kinds[] = {"short", "long", "large"};
        for (unsigned k = 0; k < 3; ++k)
          std::printf(", \"%s_flows\": %llu, \"%s_held_bytes\": %llu, \"%s_asked_bytes\": %llu",
                      kinds[k], static_cast<unsigned long long>(last.kind_flows[k]), kinds[k],
                      static_cast<unsigned long long>(last.kind_held[k]), kinds[k],
                      static_cast<unsigned long long>(last.kind_asked[k]));
      }
      std::printf("}");
      first = false;
    }
  }
  std::printf("\n], \"load_average_end\": \"%s\"}\n", load_average().c_str());
  rte_eal_cleanup();
  return 0;
}
