// Bump allocation against a bare inline pointer increment, glibc malloc/free and
// std::pmr::monotonic_buffer_resource, in one run (bench/run.sh alternates them).
#include <benchmark/benchmark.h>

#include <vector>

#include "bump_workloads.h"

namespace ctxalloc::bench {
namespace {

constexpr std::size_t kSize = 64;

void BM_BareIncrement(benchmark::State& state) {
  std::vector<std::byte> region(kBumpRegion);
  BarePointer bp{region.data(), region.data(), region.data() + region.size()};
  for (auto _ : state)
    bare_increment_loop(bp, 1000, kSize);
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_BareIncrement);

void BM_BumpAllocate(benchmark::State& state) {
  std::vector<std::byte> region(kBumpRegion);
  BumpAllocator a(Block{region.data(), region.size()});
  for (auto _ : state)
    bump_loop(a, 1000, kSize);
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_BumpAllocate);

void BM_GlibcMallocFree(benchmark::State& state) {
  for (auto _ : state)
    malloc_free_loop(1000, kSize);
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_GlibcMallocFree);

void BM_PmrMonotonic(benchmark::State& state) {
  std::vector<std::byte> region(kBumpRegion);
  for (auto _ : state)
    pmr_monotonic_loop(region.data(), region.size(), 1000, kSize);
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_PmrMonotonic);

}  // namespace
}  // namespace ctxalloc::bench

BENCHMARK_MAIN();
