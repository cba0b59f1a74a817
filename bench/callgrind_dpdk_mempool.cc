// Callgrind workloads of the dpdk_mempool suite (see callgrind_main.h): instructions per
// round of get+put of 1 or 32 objects, on ctxalloc, ring_mp_mc and stack, without and
// with the per-lcore cache. EAL starts before the workload; only the workload counts.
#include "callgrind_main.h"
#include "dpdk_mempool_workloads.h"

using namespace ctxalloc::bench;

namespace {
// Pools are made before the measured function runs (make_pool finds them again by name),
// so that only the get/put rounds count.
void run(const char* ops, unsigned cache, std::uint64_t n, unsigned burst) {
  rte_mempool* mp = make_pool(ops, cache);
  if (mp == nullptr) std::exit(1);
  get_put_loop(mp, n, burst);
}

void make_pools() {
  for (const char* ops : {"ctxalloc", "ring_mp_mc", "stack"})
    for (unsigned cache : {0u, kCacheSize})
      if (make_pool(ops, cache) == nullptr) std::exit(1);
}
}  // namespace

#define CTXALLOC_CALLGRIND_WORKLOAD(id, ops, cache, burst) \
  [[gnu::noinline]] void ctxbench_##id(std::uint64_t n) {  \
    run(ops, cache, n, burst);                             \
  }

extern "C" {
CTXALLOC_CALLGRIND_WORKLOAD(ctxalloc_nocache_1, "ctxalloc", 0, 1)
CTXALLOC_CALLGRIND_WORKLOAD(ctxalloc_nocache_32, "ctxalloc", 0, 32)
CTXALLOC_CALLGRIND_WORKLOAD(ctxalloc_cache_32, "ctxalloc", kCacheSize, 32)
CTXALLOC_CALLGRIND_WORKLOAD(ring_mp_mc_nocache_1, "ring_mp_mc", 0, 1)
CTXALLOC_CALLGRIND_WORKLOAD(ring_mp_mc_nocache_32, "ring_mp_mc", 0, 32)
CTXALLOC_CALLGRIND_WORKLOAD(ring_mp_mc_cache_32, "ring_mp_mc", kCacheSize, 32)
CTXALLOC_CALLGRIND_WORKLOAD(stack_nocache_1, "stack", 0, 1)
CTXALLOC_CALLGRIND_WORKLOAD(stack_nocache_32, "stack", 0, 32)
[[gnu::noinline]] void ctxbench_ctxalloc_get32_put1(std::uint64_t n) {
  get32_put1_loop(make_pool("ctxalloc", 0), n);
}
[[gnu::noinline]] void ctxbench_ring_mp_mc_get32_put1(std::uint64_t n) {
  get32_put1_loop(make_pool("ring_mp_mc", 0), n);
}
}

int main(int argc, char** argv) {
  if (argc == 3) {
    if (!start_eal(argv[0])) return 1;
    make_pools();
  }
  return callgrind_main(argc, argv,
                        {
                            {"ctxalloc_nocache_1", ctxbench_ctxalloc_nocache_1},
                            {"ctxalloc_nocache_32", ctxbench_ctxalloc_nocache_32},
                            {"ctxalloc_cache_32", ctxbench_ctxalloc_cache_32},
                            {"ring_mp_mc_nocache_1", ctxbench_ring_mp_mc_nocache_1},
                            {"ring_mp_mc_nocache_32", ctxbench_ring_mp_mc_nocache_32},
                            {"ring_mp_mc_cache_32", ctxbench_ring_mp_mc_cache_32},
                            {"stack_nocache_1", ctxbench_stack_nocache_1},
                            {"stack_nocache_32", ctxbench_stack_nocache_32},
                            {"ctxalloc_get32_put1", ctxbench_ctxalloc_get32_put1},
                            {"ring_mp_mc_get32_put1", ctxbench_ring_mp_mc_get32_put1},
                        });
}
