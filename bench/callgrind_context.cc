// Callgrind workloads of the context suite (see context_workloads.h and
// callgrind_main.h): each workload through the ContextAllocator and through the bare
// allocator of the same kind.
#include "callgrind_main.h"
#include "context_workloads.h"

using namespace ctxalloc;
using namespace ctxalloc::bench;

namespace {

BenchRegion g_region;

}  // namespace

extern "C" {

[[gnu::noinline]] void ctxbench_pairs_bump_context(std::uint64_t n) {
  ContextAllocator a(Lifetime::short_lived, g_region.block(), context_options());
  pairs_loop(a, n);
}
[[gnu::noinline]] void ctxbench_pairs_bump_bare(std::uint64_t n) {
  BumpAllocator a(g_region.block());
  pairs_loop(a, n);
}
[[gnu::noinline]] void ctxbench_pairs_bitset_context(std::uint64_t n) {
  ContextAllocator a(Lifetime::medium, g_region.block(), context_options());
  pairs_loop(a, n);
}
[[gnu::noinline]] void ctxbench_pairs_bitset_bare(std::uint64_t n) {
  BitSetAllocator a(g_region.block(), kContextBitSetBlock);
  pairs_loop(a, n);
}
[[gnu::noinline]] void ctxbench_pairs_tree_context(std::uint64_t n) {
  ContextAllocator a(Lifetime::long_lived, g_region.block(), context_options());
  pairs_loop(a, n);
}
[[gnu::noinline]] void ctxbench_pairs_tree_bare(std::uint64_t n) {
  ContextTree a(g_region.block(), ContextAllocator::tree_config_for(kContextRegion));
  pairs_loop(a, n);
}
[[gnu::noinline]] void ctxbench_fill_bump_context(std::uint64_t n) {
  ContextAllocator a(Lifetime::short_lived, g_region.block(), context_options());
  fill_loop(a, n);
}
[[gnu::noinline]] void ctxbench_fill_bump_bare(std::uint64_t n) {
  BumpAllocator a(g_region.block());
  fill_loop(a, n);
}
[[gnu::noinline]] void ctxbench_replace_bitset_context(std::uint64_t n) {
  ContextAllocator a(Lifetime::medium, g_region.block(), context_options());
  ReplaceLoop<ContextAllocator> w(a);
  w.run(n);
}
[[gnu::noinline]] void ctxbench_replace_bitset_bare(std::uint64_t n) {
  BitSetAllocator a(g_region.block(), kContextBitSetBlock);
  ReplaceLoop<BitSetAllocator> w(a);
  w.run(n);
}
[[gnu::noinline]] void ctxbench_replace_tree_context(std::uint64_t n) {
  ContextAllocator a(Lifetime::long_lived, g_region.block(), context_options());
  ReplaceLoop<ContextAllocator> w(a);
  w.run(n);
}
[[gnu::noinline]] void ctxbench_replace_tree_bare(std::uint64_t n) {
  ContextTree a(g_region.block(), ContextAllocator::tree_config_for(kContextRegion));
  ReplaceLoop<ContextTree> w(a);
  w.run(n);
}

}  // extern "C"

int main(int argc, char** argv) {
  return callgrind_main(argc, argv,
                        {
                            {"pairs_bump_context", ctxbench_pairs_bump_context},
                            {"pairs_bump_bare", ctxbench_pairs_bump_bare},
                            {"pairs_bitset_context", ctxbench_pairs_bitset_context},
                            {"pairs_bitset_bare", ctxbench_pairs_bitset_bare},
                            {"pairs_tree_context", ctxbench_pairs_tree_context},
                            {"pairs_tree_bare", ctxbench_pairs_tree_bare},
                            {"fill_bump_context", ctxbench_fill_bump_context},
                            {"fill_bump_bare", ctxbench_fill_bump_bare},
                            {"replace_bitset_context", ctxbench_replace_bitset_context},
                            {"replace_bitset_bare", ctxbench_replace_bitset_bare},
                            {"replace_tree_context", ctxbench_replace_tree_context},
                            {"replace_tree_bare", ctxbench_replace_tree_bare},
                        });
}
