// The ctxalloc mempool ops against DPDK's ring_mp_mc and stack: get/put of 1 and of 32
// objects, with and without the per-lcore cache, one lcore (bench/run.sh interleaves the
// repetitions). Starts its own EAL (one lcore, --no-huge).
#include <benchmark/benchmark.h>

#include "dpdk_mempool_workloads.h"

namespace ctxalloc::bench {
namespace {

void BM_GetPut(benchmark::State& state, const char* ops, unsigned cache, unsigned burst) {
  rte_mempool* mp = make_pool(ops, cache);
  if (mp == nullptr) {
    state.SkipWithError("mempool ops not available");
    return;
  }
  for (auto _ : state)
    get_put_loop(mp, 1000, burst);
  // One item: one object got and put back.
  state.SetItemsProcessed(state.iterations() * 1000 * burst);
}

void BM_Get32Put1(benchmark::State& state, const char* ops) {
  rte_mempool* mp = make_pool(ops, 0);
  if (mp == nullptr) {
    state.SkipWithError("mempool ops not available");
    return;
  }
  for (auto _ : state)
    get32_put1_loop(mp, 100);
  state.SetItemsProcessed(state.iterations() * 100 * 32);
}

#define CTXALLOC_MEMPOOL_BENCH(ops, id)                             \
  BENCHMARK_CAPTURE(BM_GetPut, id##_nocache_1, ops, 0, 1);          \
  BENCHMARK_CAPTURE(BM_GetPut, id##_nocache_32, ops, 0, 32);        \
  BENCHMARK_CAPTURE(BM_GetPut, id##_cache_1, ops, kCacheSize, 1);   \
  BENCHMARK_CAPTURE(BM_GetPut, id##_cache_32, ops, kCacheSize, 32); \
  BENCHMARK_CAPTURE(BM_Get32Put1, id##_nocache, ops)

CTXALLOC_MEMPOOL_BENCH("ctxalloc", ctxalloc);
CTXALLOC_MEMPOOL_BENCH("ring_mp_mc", ring_mp_mc);
CTXALLOC_MEMPOOL_BENCH("stack", stack);

}  // namespace
}  // namespace ctxalloc::bench

int main(int argc, char** argv) {
  if (!ctxalloc::bench::start_eal(argv[0])) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
