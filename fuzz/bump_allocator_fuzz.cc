// libFuzzer target: the bump allocator, op sequences against the reference model (alloc_ops.h).
// Built as a fuzzer in the asan variant (clang); replayed over fuzz/corpus/bump_allocator/ and
// fixed-seed inputs by the fuzz_replay_bump_allocator test in the other variants.
#include "alloc_ops.h"
#include "ctxalloc/allocators/bump_allocator.h"

namespace {

struct BumpHooks : ctxalloc::fuzz::NoHooks {
  static bool can_reset() { return true; }
  void reset(ctxalloc::BumpAllocator& a) { a.reset(); }
};

alignas(4096) unsigned char g_region[256 * 1024];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ctxalloc;
  BumpAllocator a(Block{reinterpret_cast<std::byte*>(g_region), sizeof g_region});
  BumpHooks hooks;
  fuzz::Limits lim;
  lim.max_size = 8192;
  lim.max_align_log = 12;
  lim.empty_after_free = true;  // reset() at the end gives everything back
  fuzz::run_ops("bump_allocator_fuzz", a, hooks, lim, data, size);
  return 0;
}
