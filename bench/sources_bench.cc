// Obtain/release costs of each memory source against its peer in the same run
// (bench/run.sh interleaves the repetitions): the arena and the shared (locked) arena
// against glibc malloc/free of the same size, the region source's 4 KiB pieces, and
// the mmap source and MemoryMapAllocator against bare mmap/munmap.
#include <benchmark/benchmark.h>

#include "sources_workloads.h"

namespace ctxalloc::bench {
namespace {

constexpr std::uint64_t kBatch = 1000;
constexpr std::uint64_t kMapBatch = 100;

void BM_ArenaRing(benchmark::State& state) {
  MemoryMapSource parent;
  ArenaSource<MemoryMapSource&> a(parent, ArenaOptions{kArenaBlock});
  for (auto _ : state)
    ring_loop(a, kBatch, kArenaBlock);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ArenaRing);

void BM_SharedArenaRing(benchmark::State& state) {
  MemoryMapSource parent;
  auto s = SharedSource<ArenaSource<MemoryMapSource&>>::make(parent, ArenaOptions{kArenaBlock});
  for (auto _ : state)
    ring_loop(s, kBatch, kArenaBlock);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_SharedArenaRing);

void BM_GlibcMallocRing(benchmark::State& state) {
  for (auto _ : state)
    malloc_ring_loop(kBatch, kArenaBlock);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_GlibcMallocRing);

void BM_RegionRing(benchmark::State& state) {
  MemoryMapSource parent;
  const Block r = parent.obtain(4 << 20);
  RegionSource s(r);
  for (auto _ : state)
    ring_loop(s, kBatch, kPiece);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_RegionRing);

void BM_MmapSource(benchmark::State& state) {
  MemoryMapSource s;
  for (auto _ : state)
    mmap_source_loop(s, kMapBatch, kMapping);
  state.SetItemsProcessed(state.iterations() * kMapBatch);
}
BENCHMARK(BM_MmapSource);

void BM_MmapAllocator(benchmark::State& state) {
  MemoryMapAllocator a;
  for (auto _ : state)
    mmap_allocator_loop(a, kMapBatch, kMapping);
  state.SetItemsProcessed(state.iterations() * kMapBatch);
}
BENCHMARK(BM_MmapAllocator);

void BM_RawMmap(benchmark::State& state) {
  for (auto _ : state)
    raw_mmap_loop(kMapBatch, kMapping);
  state.SetItemsProcessed(state.iterations() * kMapBatch);
}
BENCHMARK(BM_RawMmap);

}  // namespace
}  // namespace ctxalloc::bench

BENCHMARK_MAIN();
