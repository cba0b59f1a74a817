// Callgrind workloads of the sources suite (see callgrind_main.h). Callgrind counts
// user-space instructions only: for mmap-based workloads the figure is the library's
// own overhead around the system calls, which run in the kernel uncounted.
#include "callgrind_main.h"
#include "sources_workloads.h"

using namespace ctxalloc;
using namespace ctxalloc::bench;

extern "C" {

[[gnu::noinline]] void ctxbench_arena_ring(std::uint64_t n) {
  MemoryMapSource parent;
  ArenaSource<MemoryMapSource&> a(parent, ArenaOptions{kArenaBlock});
  ring_loop(a, n, kArenaBlock);
}

[[gnu::noinline]] void ctxbench_shared_arena_ring(std::uint64_t n) {
  MemoryMapSource parent;
  auto s = SharedSource<ArenaSource<MemoryMapSource&>>::make(parent, ArenaOptions{kArenaBlock});
  ring_loop(s, n, kArenaBlock);
}

[[gnu::noinline]] void ctxbench_glibc_malloc_ring(std::uint64_t n) {
  malloc_ring_loop(n, kArenaBlock);
}

[[gnu::noinline]] void ctxbench_region_ring(std::uint64_t n) {
  MemoryMapSource parent;
  const Block r = parent.obtain(4 << 20);
  RegionSource s(r);
  ring_loop(s, n, kPiece);
}

[[gnu::noinline]] void ctxbench_mmap_source(std::uint64_t n) {
  MemoryMapSource s;
  mmap_source_loop(s, n, kMapping);
}

[[gnu::noinline]] void ctxbench_mmap_allocator(std::uint64_t n) {
  MemoryMapAllocator a;
  mmap_allocator_loop(a, n, kMapping);
}

[[gnu::noinline]] void ctxbench_raw_mmap(std::uint64_t n) {
  raw_mmap_loop(n, kMapping);
}

}  // extern "C"

int main(int argc, char** argv) {
  return callgrind_main(argc, argv,
                        {
                            {"arena_ring", ctxbench_arena_ring},
                            {"shared_arena_ring", ctxbench_shared_arena_ring},
                            {"glibc_malloc_ring", ctxbench_glibc_malloc_ring},
                            {"region_ring", ctxbench_region_ring},
                            {"mmap_source", ctxbench_mmap_source},
                            {"mmap_allocator", ctxbench_mmap_allocator},
                            {"raw_mmap", ctxbench_raw_mmap},
                        });
}
