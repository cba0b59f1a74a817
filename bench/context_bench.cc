// The ContextAllocator's dispatch cost in time: each workload of context_workloads.h
// through the ContextAllocator and through the bare allocator of the same kind, in one
// run (bench/run.sh interleaves the repetitions, so the peers alternate).
#include <benchmark/benchmark.h>

#include "context_workloads.h"

namespace ctxalloc::bench {
namespace {

constexpr std::uint64_t kOpsPerIteration = 1000;

template <class A, class... Args>
void pairs(benchmark::State& state, Args&&... args) {
  BenchRegion r;
  A a(r.block(), std::forward<Args>(args)...);
  for (auto _ : state)
    pairs_loop(a, kOpsPerIteration);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kOpsPerIteration));
}

template <class A, class... Args>
void fill(benchmark::State& state, Args&&... args) {
  BenchRegion r;
  A a(r.block(), std::forward<Args>(args)...);
  for (auto _ : state)
    fill_loop(a, kOpsPerIteration);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kOpsPerIteration));
}

template <class A, class... Args>
void replace(benchmark::State& state, Args&&... args) {
  BenchRegion r;
  A a(r.block(), std::forward<Args>(args)...);
  ReplaceLoop<A> w(a);
  for (auto _ : state)
    w.run(kOpsPerIteration);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kOpsPerIteration));
}

// The ContextAllocator takes (lifetime, region, options): a wrapper puts the region first
// so the templates above build every peer the same way.
template <Lifetime L>
struct Context : ContextAllocator {
  explicit Context(Block region) : ContextAllocator(L, region, context_options()) {}
};

const TreeConfig kTreeClasses = ContextAllocator::tree_config_for(kContextRegion);

void BM_Pairs_Bump_Context(benchmark::State& s) {
  pairs<Context<Lifetime::short_lived>>(s);
}
void BM_Pairs_Bump_Bare(benchmark::State& s) {
  pairs<BumpAllocator>(s);
}
void BM_Pairs_BitSet_Context(benchmark::State& s) {
  pairs<Context<Lifetime::medium>>(s);
}
void BM_Pairs_BitSet_Bare(benchmark::State& s) {
  pairs<BitSetAllocator>(s, kContextBitSetBlock);
}
void BM_Pairs_Tree_Context(benchmark::State& s) {
  pairs<Context<Lifetime::long_lived>>(s);
}
void BM_Pairs_Tree_Bare(benchmark::State& s) {
  pairs<ContextTree>(s, kTreeClasses);
}
void BM_Fill_Bump_Context(benchmark::State& s) {
  fill<Context<Lifetime::short_lived>>(s);
}
void BM_Fill_Bump_Bare(benchmark::State& s) {
  fill<BumpAllocator>(s);
}
void BM_Replace_BitSet_Context(benchmark::State& s) {
  replace<Context<Lifetime::medium>>(s);
}
void BM_Replace_BitSet_Bare(benchmark::State& s) {
  replace<BitSetAllocator>(s, kContextBitSetBlock);
}
void BM_Replace_Tree_Context(benchmark::State& s) {
  replace<Context<Lifetime::long_lived>>(s);
}
void BM_Replace_Tree_Bare(benchmark::State& s) {
  replace<ContextTree>(s, kTreeClasses);
}

BENCHMARK(BM_Pairs_Bump_Context);
BENCHMARK(BM_Pairs_Bump_Bare);
BENCHMARK(BM_Pairs_BitSet_Context);
BENCHMARK(BM_Pairs_BitSet_Bare);
BENCHMARK(BM_Pairs_Tree_Context);
BENCHMARK(BM_Pairs_Tree_Bare);
BENCHMARK(BM_Fill_Bump_Context);
BENCHMARK(BM_Fill_Bump_Bare);
BENCHMARK(BM_Replace_BitSet_Context);
BENCHMARK(BM_Replace_BitSet_Bare);
BENCHMARK(BM_Replace_Tree_Context);
BENCHMARK(BM_Replace_Tree_Bare);

}  // namespace
}  // namespace ctxalloc::bench

BENCHMARK_MAIN();
