// The switchable suite: small allocate+free in thread mode against the binary's malloc
// (glibc here; mimalloc, jemalloc, tcmalloc in their own binaries), single-threaded and
// producer/consumer. bench/switchable_peers.sh runs every binary, alternating.
#include <benchmark/benchmark.h>

#include <cstdio>

#include "malloc_peer.h"
#include "switchable_workloads.h"

namespace ctxalloc::bench {
namespace {

constexpr std::uint64_t kOps = 4096;

void nothing() {}

#if CTXBENCH_WITH_CTXALLOC
void thread_mode() {
  ctxalloc::set_mode(ctxalloc::Mode::thread);
}

void BM_pairs_ctxalloc(benchmark::State& state) {
  thread_mode();
  for (auto _ : state)
    pairs_loop<CtxallocApi>(kOps);
  state.SetItemsProcessed(state.iterations() * kOps);
}
BENCHMARK(BM_pairs_ctxalloc);

void BM_batch_ctxalloc(benchmark::State& state) {
  thread_mode();
  for (auto _ : state)
    batch_loop<CtxallocApi>(kOps);
  state.SetItemsProcessed(state.iterations() * kOps);
}
BENCHMARK(BM_batch_ctxalloc);

void BM_producer_consumer_ctxalloc(benchmark::State& state) {
  for (auto _ : state) {
    producer_consumer<CtxallocApi>(100000, thread_mode, produce<CtxallocApi>, consume<CtxallocApi>);
  }
  state.SetItemsProcessed(state.iterations() * 100000);
}
BENCHMARK(BM_producer_consumer_ctxalloc)->UseRealTime();

void BM_context_scope(benchmark::State& state) {
  thread_mode();
  ctxalloc::Context* c = ctxalloc::Context::create(ctxalloc::Lifetime::medium, 64 << 10);
  for (auto _ : state)
    context_scope_loop(*c, kOps);
  state.SetItemsProcessed(state.iterations() * kOps);
  c->release_all();
}
BENCHMARK(BM_context_scope);

void BM_context_pairs(benchmark::State& state) {
  thread_mode();
  ctxalloc::Context* c = ctxalloc::Context::create(ctxalloc::Lifetime::medium, 64 << 10);
  for (auto _ : state)
    context_pairs_loop(*c, kOps);
  state.SetItemsProcessed(state.iterations() * kOps);
  c->release_all();
}
BENCHMARK(BM_context_pairs);
#endif

void BM_pairs_malloc(benchmark::State& state) {
  for (auto _ : state)
    pairs_loop<MallocApi>(kOps);
  state.SetItemsProcessed(state.iterations() * kOps);
  state.SetLabel(kMallocName);
}
BENCHMARK(BM_pairs_malloc);

void BM_batch_malloc(benchmark::State& state) {
  for (auto _ : state)
    batch_loop<MallocApi>(kOps);
  state.SetItemsProcessed(state.iterations() * kOps);
  state.SetLabel(kMallocName);
}
BENCHMARK(BM_batch_malloc);

void BM_producer_consumer_malloc(benchmark::State& state) {
  for (auto _ : state) {
    producer_consumer<MallocApi>(100000, nothing, produce<MallocApi>, consume<MallocApi>);
  }
  state.SetItemsProcessed(state.iterations() * 100000);
  state.SetLabel(kMallocName);
}
BENCHMARK(BM_producer_consumer_malloc)->UseRealTime();

}  // namespace
}  // namespace ctxalloc::bench

int main(int argc, char** argv) {
  if (!ctxalloc::bench::malloc_is_the_peer()) {
    std::fprintf(stderr, "malloc is not %s: wrong link order\n", ctxalloc::bench::kMallocName);
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
