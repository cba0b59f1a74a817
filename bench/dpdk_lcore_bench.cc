// The per-lcore allocators (issue 8) against DPDK's own: per-packet allocate+free (the
// lcore's heap, a flow context, rte_malloc, rte_mempool get/put with its cache) and the
// per-flow lifecycle (make a context, 16 small allocations, release; against rte_malloc
// and rte_free of the same 16 objects). One lcore; bench/run.sh interleaves repetitions.
#include <benchmark/benchmark.h>

#include "dpdk_lcore_workloads.h"

namespace ctxalloc::bench {
namespace {

constexpr std::uint64_t kRounds = 1000;

void BM_Packet(benchmark::State& state, void (*fn)(std::uint64_t)) {
  for (auto _ : state)
    fn(kRounds);
  state.SetItemsProcessed(state.iterations() * kRounds);  // one item: allocate + free
}

void BM_PacketMempool(benchmark::State& state) {
  rte_mempool* mp = packet_pool();
  if (mp == nullptr) {
    state.SkipWithError("no mempool");
    return;
  }
  for (auto _ : state)
    packet_mempool_cache(mp, kRounds);
  state.SetItemsProcessed(state.iterations() * kRounds);
}

void BM_Flow(benchmark::State& state, void (*fn)(std::uint64_t)) {
  for (auto _ : state)
    fn(100);
  state.SetItemsProcessed(state.iterations() * 100);  // one item: a whole flow
}

BENCHMARK_CAPTURE(BM_Packet, lcore_heap, packet_lcore_heap);
BENCHMARK_CAPTURE(BM_Packet, flow_context, packet_flow_context);
BENCHMARK_CAPTURE(BM_Packet, rte_malloc, packet_rte_malloc);
BENCHMARK(BM_PacketMempool)->Name("BM_Packet/rte_mempool_cache");
BENCHMARK_CAPTURE(BM_Flow, ctxalloc, flow_ctxalloc);
BENCHMARK_CAPTURE(BM_Flow, rte_malloc, flow_rte_malloc);

}  // namespace
}  // namespace ctxalloc::bench

int main(int argc, char** argv) {
  if (!ctxalloc::bench::start_eal_and_heaps(argv[0])) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return ctxalloc::bench::stop_eal_and_heaps() ? 0 : 1;
}
