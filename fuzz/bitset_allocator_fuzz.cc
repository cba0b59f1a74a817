// libFuzzer target: the bit-set allocator, op sequences against the reference model (alloc_ops.h).
// Built as a fuzzer in the asan variant (clang); replayed over fuzz/corpus/bitset_allocator/ and
// fixed-seed inputs by the fuzz_replay_bitset_allocator test in the other variants.
#include "alloc_ops.h"
#include "ctxalloc/allocators/bitset_allocator.h"

namespace {
alignas(4096) unsigned char g_region[512 * 1024];
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ctxalloc;
  // The first byte picks the block size (16 B to 2 KiB): each size is its own geometry.
  const std::size_t block = std::size_t{16} << (size > 0 ? data[0] % 8 : 0);
  BitSetAllocator a(Block{reinterpret_cast<std::byte*>(g_region), sizeof g_region}, block);
  fuzz::NoHooks hooks;
  fuzz::Limits lim;
  lim.max_size = 16 * 1024;
  lim.max_align_log = 12;
  fuzz::run_ops("bitset_allocator_fuzz", a, hooks, lim, size > 0 ? data + 1 : data,
                size > 0 ? size - 1 : 0);
  if (a.free_block_count() != a.block_count())
    fuzz::violated("bitset_allocator_fuzz", "blocks still taken after every free");
  return 0;
}
