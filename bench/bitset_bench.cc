// Bit-set allocate+free against glibc malloc/free and std::pmr::unsynchronized_pool_resource
// on the workloads of bitset_workloads.h, in one run (bench/run.sh interleaves them).
#include <benchmark/benchmark.h>

#include "bitset_workloads.h"

namespace ctxalloc::bench {
namespace {

constexpr std::uint64_t kOpsPerIteration = 1000;

template <class Heap>
void replace(benchmark::State& state, Shape shape) {
  Heap heap;
  ReplaceWorkload<Heap> w(heap, shape);
  for (auto _ : state)
    w.run(kOpsPerIteration);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kOpsPerIteration));
}

void BM_OneBlock_BitSet(benchmark::State& s) {
  replace<BitSetHeap>(s, kOneBlock);
}
void BM_OneBlock_GlibcMalloc(benchmark::State& s) {
  replace<MallocHeap>(s, kOneBlock);
}
void BM_OneBlock_PmrPool(benchmark::State& s) {
  replace<PoolHeap>(s, kOneBlock);
}
void BM_OneBlock_LoopFloor(benchmark::State& s) {
  replace<EchoHeap>(s, kOneBlock);
}
void BM_FourBlocks_BitSet(benchmark::State& s) {
  replace<BitSetHeap>(s, kFourBlocks);
}
void BM_FourBlocks_GlibcMalloc(benchmark::State& s) {
  replace<MallocHeap>(s, kFourBlocks);
}
void BM_FourBlocks_PmrPool(benchmark::State& s) {
  replace<PoolHeap>(s, kFourBlocks);
}

BENCHMARK(BM_OneBlock_BitSet);
BENCHMARK(BM_OneBlock_GlibcMalloc);
BENCHMARK(BM_OneBlock_PmrPool);
BENCHMARK(BM_OneBlock_LoopFloor);
BENCHMARK(BM_FourBlocks_BitSet);
BENCHMARK(BM_FourBlocks_GlibcMalloc);
BENCHMARK(BM_FourBlocks_PmrPool);

}  // namespace
}  // namespace ctxalloc::bench

BENCHMARK_MAIN();
