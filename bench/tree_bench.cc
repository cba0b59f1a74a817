// The tree suite: TreeAllocator against malloc-family peers, std::pmr and rte_malloc on
// the workloads of tree_workloads.h. Every malloc exports `malloc`, so this one source is
// built once per peer (bench/meson.build), each binary linking one malloc, and each
// binary first checks that `malloc` really is the one it was built for:
//   bench_tree           glibc malloc; also TreeAllocator, the GlobalHeap and std::pmr pools
//   bench_tree_mimalloc  mimalloc          bench_tree_jemalloc  jemalloc
//   bench_tree_tcmalloc  tcmalloc (gperftools)
//   bench_tree_rte       rte_malloc in DPDK's EAL (--no-huge -m 512 ...)
// bench/tree_peers.sh runs them alternately and prints medians and ratios.
//   bench_tree[_PEER] [google benchmark flags]
//   bench_tree[_PEER] --fragmentation=tree|global_heap|malloc|pmr   (one measurement, JSON)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "tree_workloads.h"

#include "malloc_peer.h"
#if CTXBENCH_PEER_RTE
#include <rte_eal.h>
#include <rte_malloc.h>
#endif

namespace ctxalloc::bench {
namespace {

constexpr std::uint64_t kBatch = 1000;  // operations per benchmark iteration

#if CTXBENCH_PEER_RTE
/// rte_malloc on the heap of the EAL's socket; alignment 0 = a cache line.
struct RteApi {
  void* alloc(std::size_t n) noexcept { return rte_malloc(nullptr, n, 0); }
  void free(void* p, std::size_t) noexcept { rte_free(p); }
};

bool start_eal() {
  const char* args[] = {"bench_tree_rte", "--no-huge",      "-m", "512", "--no-pci",
                        "--no-shconf",    "--no-telemetry", "-l", "0",   "--log-level=error"};
  return rte_eal_init(static_cast<int>(std::size(args)), const_cast<char**>(args)) >= 0;
}
#endif

template <class Api>
Api& make_api() {
  static Api api;  // one per process: the tree's region, the pool, ...
  return api;
}

template <class Api>
void BM_Pairs(benchmark::State& state) {
  Api& api = make_api<Api>();
  for (auto _ : state)
    pairs_loop(api, kBatch);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

template <class Api>
void BM_Random(benchmark::State& state) {
  Api& api = make_api<Api>();
  RandomWorkload<Api> w(api);
  w.fill();
  w.steady(kRandomLive);  // past the fill's pattern into a steady state
  for (auto _ : state)
    w.steady(kBatch);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

template <class Api>
void BM_Fragmented(benchmark::State& state) {
  Api& api = make_api<Api>();
  FragmentedWorkload<Api> w(api);
  for (auto _ : state)
    w.loop(kBatch);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

template <class Api>
void register_all(const std::string& peer) {
  benchmark::RegisterBenchmark(("pairs64/" + peer).c_str(), BM_Pairs<Api>);
  benchmark::RegisterBenchmark(("random/" + peer).c_str(), BM_Random<Api>);
  benchmark::RegisterBenchmark(("fragmented/" + peer).c_str(), BM_Fragmented<Api>);
}

template <class Api>
int fragmentation(const char* peer) {
  Api& api = make_api<Api>();
  const FragmentationResult r = measure_fragmentation(api, 1'000'000);
  std::printf("{\"peer\": \"%s\", \"peak_live\": %llu, \"peak_taken\": %llu, \"ratio\": %.4f", peer,
              static_cast<unsigned long long>(r.peak_live),
              static_cast<unsigned long long>(r.peak_taken),
              static_cast<double>(r.peak_taken) / static_cast<double>(r.peak_live));
  if constexpr (std::is_same_v<Api, TreeApi>) {
    const Stats s = api.tree.stats();
    std::printf(", \"tree_peak_bytes\": %llu, \"tree_metadata_per_byte\": %.4f",
                static_cast<unsigned long long>(s.peak_bytes),
                1.0 / static_cast<double>(api.tree.config().min_class()));
  }
#if CTXBENCH_PEER_MIMALLOC
  std::size_t elapsed, user, sys, rss, peak_rss, commit, peak_commit, faults;
  mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
  std::printf(", \"mi_peak_commit\": %zu, \"mi_peak_rss\": %zu", peak_commit, peak_rss);
#endif
  std::printf("}\n");
  return 0;
}

}  // namespace
}  // namespace ctxalloc::bench

int main(int argc, char** argv) {
  using namespace ctxalloc::bench;
  if (!malloc_is_the_peer()) {
    std::fprintf(stderr, "bench: malloc in this process is not %s: check the link order\n",
                 kMallocName);
    return 1;
  }
  std::fprintf(stderr, "bench: malloc is %s (checked)\n",
               CTXBENCH_PEER_RTE ? "glibc; the peer is rte_malloc" : kMallocName);
#if CTXBENCH_PEER_RTE
  if (!start_eal()) die("rte_eal_init failed");
  register_all<RteApi>("rte");
#else
  const std::string peer = kMallocName;
  if (argc == 2 && std::strncmp(argv[1], "--fragmentation=", 16) == 0) {
    const std::string api = argv[1] + 16;
#if CTXBENCH_WITH_TREE
    if (api == "tree") return fragmentation<TreeApi>("tree");
    if (api == "pmr") return fragmentation<PmrApi>("pmr");
    if (api == "global_heap") return fragmentation<GlobalHeapApi>("global_heap");
#endif
    if (api == "malloc") return fragmentation<MallocApi>(kMallocName);
    die("unknown --fragmentation= allocator");
  }
#if CTXBENCH_WITH_TREE
  register_all<TreeApi>("tree");
  register_all<GlobalHeapApi>("global_heap");
  register_all<PmrApi>("pmr");
#endif
  register_all<MallocApi>(peer);
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
