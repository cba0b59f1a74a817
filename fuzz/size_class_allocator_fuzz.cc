// libFuzzer target: the size-class allocator, op sequences against the reference model
// (alloc_ops.h). Built as a fuzzer in the asan variant (clang); replayed over
// fuzz/corpus/size_class_allocator/ and fixed-seed inputs by the fuzz_replay_size_class_allocator
// test in the other variants.
#include "alloc_ops.h"
#include "ctxalloc/allocators/size_class_allocator.h"
#include "support/segment_provider.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ctxalloc;
  testing::TestSegments segs;
  {
    // At most 2 segments: the fuzzer also reaches exhaustion.
    SizeClassAllocator a(segs.provider(), 2);
    fuzz::NoHooks hooks;
    fuzz::Limits lim;
    lim.max_size = SizeClassAllocator::kMaxSize;
    lim.max_align_log = 10;
    fuzz::run_ops("size_class_allocator_fuzz", a, hooks, lim, data, size);
    a.trim();
    if (a.segments() != 0)
      fuzz::violated("size_class_allocator_fuzz", "segments kept after every free and trim()");
  }
  if (segs.outstanding() != 0)
    fuzz::violated("size_class_allocator_fuzz", "segments not given back");
  return 0;
}
