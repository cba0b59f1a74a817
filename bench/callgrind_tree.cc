// Callgrind workloads of the tree suite (see callgrind_main.h), over the same loops as
// tree_bench.cc. Set-up (the tree's region, the 100,000 live blocks, the 10,000 holes)
// happens outside the counted ctxbench_* function; one "op" is one allocate + free pair
// (pairs, fragmented) or one replacement (random: a free and an allocate).
// Built once per malloc peer like bench_tree (CTXBENCH_PEER_* macros); the glibc build
// also has the TreeAllocator and std::pmr workloads.
#include <memory>

#include "callgrind_main.h"
#include "malloc_peer.h"
#include "tree_workloads.h"

using namespace ctxalloc::bench;

namespace {

template <class Api>
Api& api() {
  static Api a;
  return a;
}

template <class Api>
std::unique_ptr<RandomWorkload<Api>> random_ready() {
  auto w = std::make_unique<RandomWorkload<Api>>(api<Api>());
  w->fill();
  w->steady(kRandomLive);
  return w;
}

}  // namespace

// For allocator NAME over API: ctxbench_NAME_{pairs,random,fragmented} are counted,
// run_NAME_* prepare their state and call them.
#define CTXBENCH_TREE_WORKLOADS(NAME, API)                                                       \
  extern "C" [[gnu::noinline]] void ctxbench_##NAME##_pairs(API* a, std::uint64_t n) {           \
    pairs_loop(*a, n);                                                                           \
  }                                                                                              \
  extern "C"                                                                                     \
      [[gnu::noinline]] void ctxbench_##NAME##_random(RandomWorkload<API>* w, std::uint64_t n) { \
    w->steady(n);                                                                                \
  }                                                                                              \
  extern "C" [[gnu::noinline]] void ctxbench_##NAME##_fragmented(FragmentedWorkload<API>* w,     \
                                                                 std::uint64_t n) {              \
    w->loop(n);                                                                                  \
  }                                                                                              \
  void run_##NAME##_pairs(std::uint64_t n) {                                                     \
    ctxbench_##NAME##_pairs(&api<API>(), n);                                                     \
  }                                                                                              \
  void run_##NAME##_random(std::uint64_t n) {                                                    \
    auto w = random_ready<API>();                                                                \
    ctxbench_##NAME##_random(w.get(), n);                                                        \
  }                                                                                              \
  void run_##NAME##_fragmented(std::uint64_t n) {                                                \
    FragmentedWorkload<API> w(api<API>());                                                       \
    ctxbench_##NAME##_fragmented(&w, n);                                                         \
  }

#define CTXBENCH_TREE_ENTRIES(NAME)                                               \
  {#NAME "_pairs", run_##NAME##_pairs}, {#NAME "_random", run_##NAME##_random}, { \
#NAME "_fragmented", run_##NAME##_fragmented                                  \
  }

#if CTXBENCH_PEER_MIMALLOC
CTXBENCH_TREE_WORKLOADS(mimalloc, MallocApi)
#define CTXBENCH_MALLOC_ENTRIES CTXBENCH_TREE_ENTRIES(mimalloc)
#elif CTXBENCH_PEER_JEMALLOC
CTXBENCH_TREE_WORKLOADS(jemalloc, MallocApi)
#define CTXBENCH_MALLOC_ENTRIES CTXBENCH_TREE_ENTRIES(jemalloc)
#elif CTXBENCH_PEER_TCMALLOC
CTXBENCH_TREE_WORKLOADS(tcmalloc, MallocApi)
#define CTXBENCH_MALLOC_ENTRIES CTXBENCH_TREE_ENTRIES(tcmalloc)
#else
CTXBENCH_TREE_WORKLOADS(glibc, MallocApi)
CTXBENCH_TREE_WORKLOADS(tree, TreeApi)
CTXBENCH_TREE_WORKLOADS(pmr, PmrApi)
#define CTXBENCH_MALLOC_ENTRIES \
  CTXBENCH_TREE_ENTRIES(tree), CTXBENCH_TREE_ENTRIES(pmr), CTXBENCH_TREE_ENTRIES(glibc)
#endif

int main(int argc, char** argv) {
  if (!malloc_is_the_peer()) {
    std::fprintf(stderr, "callgrind_tree: malloc is not %s: check the link order\n", kMallocName);
    return 1;
  }
  return callgrind_main(argc, argv, {CTXBENCH_MALLOC_ENTRIES});
}
