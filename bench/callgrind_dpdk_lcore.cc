// Callgrind workloads of the dpdk_lcore suite (see callgrind_main.h and
// dpdk_lcore_workloads.h): instructions per packet (allocate + free) and per flow (make,
// 16 allocations, release). EAL, the heaps and the peer pool are made before the
// workload runs; only the workload counts.
#include "callgrind_main.h"
#include "dpdk_lcore_workloads.h"

using namespace ctxalloc::bench;

extern "C" {
[[gnu::noinline]] void ctxbench_packet_lcore_heap(std::uint64_t n) {
  packet_lcore_heap(n);
}
[[gnu::noinline]] void ctxbench_packet_flow_context(std::uint64_t n) {
  packet_flow_context(n);
}
[[gnu::noinline]] void ctxbench_packet_rte_malloc(std::uint64_t n) {
  packet_rte_malloc(n);
}
[[gnu::noinline]] void ctxbench_packet_rte_mempool_cache(std::uint64_t n) {
  packet_mempool_cache(packet_pool(), n);
}
[[gnu::noinline]] void ctxbench_flow_ctxalloc(std::uint64_t n) {
  flow_ctxalloc(n);
}
[[gnu::noinline]] void ctxbench_flow_rte_malloc(std::uint64_t n) {
  flow_rte_malloc(n);
}
}

int main(int argc, char** argv) {
  if (argc == 3) {
    if (!start_eal_and_heaps(argv[0]) || packet_pool() == nullptr) return 1;
    // Warm each path once, so that first-touch set-up (a size class's first slab, the
    // pool cache's fill) is not counted.
    packet_lcore_heap(1);
    packet_mempool_cache(packet_pool(), 1);
    flow_ctxalloc(1);
  }
  const int rc = callgrind_main(argc, argv,
                                {
                                    {"packet_lcore_heap", ctxbench_packet_lcore_heap},
                                    {"packet_flow_context", ctxbench_packet_flow_context},
                                    {"packet_rte_malloc", ctxbench_packet_rte_malloc},
                                    {"packet_rte_mempool_cache", ctxbench_packet_rte_mempool_cache},
                                    {"flow_ctxalloc", ctxbench_flow_ctxalloc},
                                    {"flow_rte_malloc", ctxbench_flow_rte_malloc},
                                });
  if (argc == 3 && !stop_eal_and_heaps()) return 1;
  return rc;
}
