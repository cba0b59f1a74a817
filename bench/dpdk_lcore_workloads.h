// Workloads of the dpdk_lcore suite, shared by the Google Benchmark binary and the
// callgrind driver, on the main lcore of an EAL with the per-lcore allocators set up
// (embedded default configuration: growing flow contexts, 1 KiB first chunks):
//  - per packet: n rounds of "allocate kPacketBytes, free it" through the lcore's own
//    heap (thread mode), through a flow context, with rte_malloc/rte_free, and with
//    rte_mempool_get/put on a pool with DPDK's per-lcore cache (the ring_mp_mc default);
//  - per flow: n rounds of "make a flow context, 16 small allocations in it, release it
//    whole" against rte_malloc of the same 16 objects and rte_free of each.
#pragma once

#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_util.h"
#include "ctxalloc/dpdk/lcore.h"

namespace ctxalloc::bench {

inline constexpr std::size_t kPacketBytes = 64;
inline constexpr unsigned kPacketPoolObjects = 16384;
inline constexpr unsigned kPacketPoolCache = 256;
/// The 16 objects of a flow: what a flow's state, a few small buffers and parsed
/// headers might take (24 to 512 bytes, 3,104 in all: well inside a 16 KiB context).
inline constexpr std::size_t kFlowObjects[16] = {64,  128, 32,  256, 48, 96,  512, 24,
                                                 128, 64,  192, 40,  80, 320, 160, 960};

/// EAL (one lcore, no hugepages needed, no files, no telemetry) and the per-lcore
/// allocators on it, the main lcore bound to its heap.
inline bool start_eal_and_heaps(const char* prog) {
  std::vector<std::string> args = {
      prog,  "-l",          "0",        "--no-huge",      "-m",
      "512", "--no-shconf", "--no-pci", "--no-telemetry", "--log-level=*:warning"};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) return false;
  return dpdk::setup() == 0 && dpdk::bind_lcore() == 0;
}

/// Releases what start_eal_and_heaps made (the tear-down checks that nothing is in use).
inline bool stop_eal_and_heaps() {
  const bool ok = dpdk::teardown() == 0;
  rte_eal_cleanup();
  return ok;
}

/// The peer pool: kPacketBytes objects, DPDK's default ops, with the per-lcore cache.
inline rte_mempool* packet_pool() {
  static rte_mempool* mp = [] {
    rte_mempool* p =
        rte_mempool_create("bench_lcore_pkt", kPacketPoolObjects, kPacketBytes, kPacketPoolCache, 0,
                           nullptr, nullptr, nullptr, nullptr, 0, 0);
    if (p == nullptr) std::fprintf(stderr, "cannot make the peer mempool\n");
    return p;
  }();
  return mp;
}

// ------------------------------------------------------------------ per packet

inline void packet_lcore_heap(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p = ctxalloc::allocate(kPacketBytes);
    keep(p);
    ctxalloc::deallocate(p);
  }
}

inline void packet_flow_context(std::uint64_t n) {
  Context* flow = dpdk::make_flow_context();
  if (flow == nullptr) std::abort();
  {
    dpdk::FlowScope in(*flow);
    for (std::uint64_t i = 0; i < n; ++i) {
      void* p = ctxalloc::allocate(kPacketBytes);
      keep(p);
      ctxalloc::deallocate(p);
    }
  }
  dpdk::release_flow_context(flow);
}

inline void packet_rte_malloc(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p = rte_malloc(nullptr, kPacketBytes, 0);
    keep(p);
    rte_free(p);
  }
}

inline void packet_mempool_cache(rte_mempool* mp, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p = nullptr;
    if (rte_mempool_get(mp, &p) != 0) [[unlikely]]
      std::abort();
    keep(p);
    rte_mempool_put(mp, p);
  }
}

// ------------------------------------------------------------------ per flow

inline void flow_ctxalloc(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    Context* flow = dpdk::make_flow_context();
    if (flow == nullptr) [[unlikely]]
      std::abort();
    {
      dpdk::FlowScope in(*flow);
      for (std::size_t bytes : kFlowObjects)
        keep(ctxalloc::allocate(bytes));
    }
    dpdk::release_flow_context(flow);
  }
}

inline void flow_rte_malloc(std::uint64_t n) {
  void* objs[16];
  for (std::uint64_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < 16; ++k) {
      objs[k] = rte_malloc(nullptr, kFlowObjects[k], 0);
      keep(objs[k]);
    }
    for (void* o : objs)
      rte_free(o);
  }
}

}  // namespace ctxalloc::bench
