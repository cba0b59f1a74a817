// Workloads of the dpdk_mempool suite, shared by the Google Benchmark binary and the
// callgrind driver: n rounds of "get `burst` objects, put them back" on one lcore, on a
// mempool of the given ops with or without DPDK's per-lcore cache. The peers are DPDK's
// own drivers: ring_mp_mc (the default) and stack.
#pragma once

#include <rte_eal.h>
#include <rte_mempool.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"

namespace ctxalloc::bench {

inline constexpr unsigned kPoolObjects = 16384;
inline constexpr unsigned kObjectBytes = 64;
inline constexpr unsigned kCacheSize = 256;

/// EAL for benchmarks: one lcore, no hugepages needed, no files, no telemetry.
inline bool start_eal(const char* prog) {
  std::vector<std::string> args = {
      prog,  "-l",          "0",        "--no-huge",      "-m",
      "512", "--no-shconf", "--no-pci", "--no-telemetry", "--log-level=*:warning"};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  return rte_eal_init(static_cast<int>(argv.size()), argv.data()) >= 0;
}

/// A populated pool on `ops`; null (with a message) when the ops are not registered.
inline rte_mempool* make_pool(const char* ops, unsigned cache) {
  const std::string name = std::string("bench_") + ops + (cache ? "_c" : "_n");
  if (rte_mempool* mp = rte_mempool_lookup(name.c_str())) return mp;
  rte_mempool* mp =
      rte_mempool_create_empty(name.c_str(), kPoolObjects, kObjectBytes, cache, 0, 0, 0);
  if (mp == nullptr) return nullptr;
  if (rte_mempool_set_ops_byname(mp, ops, nullptr) != 0 || rte_mempool_populate_default(mp) < 0) {
    std::fprintf(stderr, "mempool ops %s unavailable\n", ops);
    rte_mempool_free(mp);
    return nullptr;
  }
  return mp;
}

/// n rounds of get `burst` then put them back (burst <= 64).
inline void get_put_loop(rte_mempool* mp, std::uint64_t n, unsigned burst) {
  void* objs[64];
  for (std::uint64_t i = 0; i < n; ++i) {
    if (rte_mempool_get_bulk(mp, objs, burst) != 0) [[unlikely]]
      std::abort();
    keep(objs[0]);
    rte_mempool_put_bulk(mp, objs, burst);
  }
}

/// n rounds of what an rx burst and per-packet frees do without a cache (testpmd with
/// --mbcache=0 on net_null): get 32 at once, put them back one by one.
inline void get32_put1_loop(rte_mempool* mp, std::uint64_t n) {
  void* objs[32];
  for (std::uint64_t i = 0; i < n; ++i) {
    if (rte_mempool_get_bulk(mp, objs, 32) != 0) [[unlikely]]
      std::abort();
    for (void* o : objs)
      rte_mempool_put(mp, o);
  }
}

}  // namespace ctxalloc::bench
