// libFuzzer target: the context allocator (short, medium, long lifetimes), op sequences against the
// reference model (alloc_ops.h). Built as a fuzzer in the asan variant (clang); replayed over
// fuzz/corpus/context_allocator/ and fixed-seed inputs by the fuzz_replay_context_allocator test in
// the other variants.
#include "alloc_ops.h"
#include "ctxalloc/allocators/context_allocator.h"

namespace {

struct ContextHooks : ctxalloc::fuzz::NoHooks {
  static bool can_reset() { return true; }
  void reset(ctxalloc::ContextAllocator& a) { a.reset(); }
};

alignas(4096) unsigned char g_region[256 * 1024];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ctxalloc;
  // The first byte: the lifetime (the kind of allocator) and the region's size.
  const std::uint8_t first = size > 0 ? data[0] : 0;
  const Lifetime l = first % 3 == 0   ? Lifetime::short_lived
                     : first % 3 == 1 ? Lifetime::medium
                                      : Lifetime::long_lived;
  const std::size_t bytes = sizeof g_region >> ((first >> 2) % 4);
  ContextAllocator a(l, Block{reinterpret_cast<std::byte*>(g_region), bytes});
  ContextHooks hooks;
  fuzz::Limits lim;
  lim.max_size = 16 * 1024;
  lim.max_align_log = 10;
  fuzz::run_ops("context_allocator_fuzz", a, hooks, lim, size > 0 ? data + 1 : data,
                size > 0 ? size - 1 : 0);
  return 0;
}
