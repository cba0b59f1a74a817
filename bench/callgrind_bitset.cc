// Callgrind workloads of the bitset suite (see callgrind_main.h). Each registered function
// prepares its workload (residents, window, warm-up) and then calls ctxbench_<name>, the
// only function callgrind counts, so the figures are the measured loop alone.
#include "bitset_workloads.h"
#include "callgrind_main.h"

using namespace ctxalloc;
using namespace ctxalloc::bench;

extern "C" {

[[gnu::noinline]] void ctxbench_bitset_one(ReplaceWorkload<BitSetHeap>* w, std::uint64_t n) {
  w->run(n);
}
[[gnu::noinline]] void ctxbench_glibc_one(ReplaceWorkload<MallocHeap>* w, std::uint64_t n) {
  w->run(n);
}
[[gnu::noinline]] void ctxbench_pmr_pool_one(ReplaceWorkload<PoolHeap>* w, std::uint64_t n) {
  w->run(n);
}
[[gnu::noinline]] void ctxbench_loop_floor(ReplaceWorkload<EchoHeap>* w, std::uint64_t n) {
  w->run(n);
}
[[gnu::noinline]] void ctxbench_bitset_four(ReplaceWorkload<BitSetHeap>* w, std::uint64_t n) {
  w->run(n);
}
[[gnu::noinline]] void ctxbench_glibc_four(ReplaceWorkload<MallocHeap>* w, std::uint64_t n) {
  w->run(n);
}
[[gnu::noinline]] void ctxbench_pmr_pool_four(ReplaceWorkload<PoolHeap>* w, std::uint64_t n) {
  w->run(n);
}

}  // extern "C"

namespace {

template <class Heap>
void prepared(Shape shape, void (*measured)(ReplaceWorkload<Heap>*, std::uint64_t),
              std::uint64_t n) {
  Heap heap;
  ReplaceWorkload<Heap> w(heap, shape);
  measured(&w, n);
}

}  // namespace

int main(int argc, char** argv) {
  return callgrind_main(
      argc, argv,
      {
          {"bitset_one", [](std::uint64_t n) { prepared(kOneBlock, ctxbench_bitset_one, n); }},
          {"glibc_one", [](std::uint64_t n) { prepared(kOneBlock, ctxbench_glibc_one, n); }},
          {"pmr_pool_one", [](std::uint64_t n) { prepared(kOneBlock, ctxbench_pmr_pool_one, n); }},
          {"loop_floor", [](std::uint64_t n) { prepared(kOneBlock, ctxbench_loop_floor, n); }},
          {"bitset_four", [](std::uint64_t n) { prepared(kFourBlocks, ctxbench_bitset_four, n); }},
          {"glibc_four", [](std::uint64_t n) { prepared(kFourBlocks, ctxbench_glibc_four, n); }},
          {"pmr_pool_four",
           [](std::uint64_t n) { prepared(kFourBlocks, ctxbench_pmr_pool_four, n); }},
      });
}
