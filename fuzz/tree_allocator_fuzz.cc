// libFuzzer target: the tree allocator, op sequences against the reference model (alloc_ops.h).
// Built as a fuzzer in the asan variant (clang); replayed over fuzz/corpus/tree_allocator/ and
// fixed-seed inputs by the fuzz_replay_tree_allocator test in the other variants.
#include "alloc_ops.h"
#include "ctxalloc/allocators/detail/canary.h"
#include "ctxalloc/allocators/tree_allocator.h"

namespace {
alignas(4096) unsigned char g_region[1024 * 1024];
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ctxalloc;
  // The first byte: canaries on or off (checked builds), so both layouts are fuzzed.
  detail::set_canaries_for_testing(size > 0 && (data[0] & 1) != 0);
  TreeAllocator a(Block{reinterpret_cast<std::byte*>(g_region), sizeof g_region});
  detail::set_canaries_for_testing(false);
  fuzz::NoHooks hooks;
  fuzz::Limits lim;
  lim.max_size = 64 * 1024;
  lim.max_align_log = 12;
  fuzz::run_ops("tree_allocator_fuzz", a, hooks, lim, size > 0 ? data + 1 : data,
                size > 0 ? size - 1 : 0);
  if (a.free_bytes() != a.capacity())
    fuzz::violated("tree_allocator_fuzz", "free bytes short of the capacity after every free");
  return 0;
}
