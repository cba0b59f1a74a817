// libFuzzer target: the global heap, op sequences against the reference model (alloc_ops.h).
// Built as a fuzzer in the asan variant (clang); replayed over fuzz/corpus/global_heap/ and
// fixed-seed inputs by the fuzz_replay_global_heap test in the other variants.
#include "alloc_ops.h"
#include "ctxalloc/switchable/global_heap.h"
#include "ctxalloc/switchable/segment_source.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ctxalloc;
  SegmentSource segs;
  GlobalHeap h(segs);
  fuzz::NoHooks hooks;
  fuzz::Limits lim;
  lim.max_size = 512 * 1024;  // past the tree's classes: large mappings too
  lim.max_align_log = 12;
  lim.max_live = 128;
  fuzz::run_ops("global_heap_fuzz", h, hooks, lim, data, size);
  return 0;
}
