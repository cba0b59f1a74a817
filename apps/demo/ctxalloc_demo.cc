// A small tour of the library, printed as it goes: a per-flow bump region serving
// packet-sized allocations, the in-place paths, and the statistics. scripts/run.sh runs
// it after ctxfwd.
#include <sys/mman.h>

#include <cstdio>
#include <cstring>

#include "ctxalloc/allocators/bump_allocator.h"

namespace {

void print_stats(const char* when, const ctxalloc::BumpAllocator& a) {
  std::printf("  %-28s %s\n", when, ctxalloc::to_string(a.stats()).c_str());
}

}  // namespace

int main() {
  using ctxalloc::Block;
  using ctxalloc::Layout;
  using ctxalloc::Move;
  constexpr std::size_t kRegion = 64 * 1024;
  // The program's own memory, as a user of the installed headers gets it: the region is
  // the caller's, which is what the demo shows (the library's os_memory.h is internal).
  void* mem = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  std::printf("ctxalloc demo: a bump allocator over a %zu KiB mmap region at %p\n", kRegion / 1024,
              mem);
  ctxalloc::BumpAllocator flow(Block{static_cast<std::byte*>(mem), kRegion});

  // Per packet: a 64-byte-aligned record sized like the packet.
  const std::size_t packet_sizes[] = {64, 1500, 128, 576, 64, 9000};
  for (std::size_t size : packet_sizes) {
    Block b = flow.allocate(Layout{size, 64});
    std::memset(b.ptr, 0x42, b.size);
    std::printf("  packet record of %5zu B at offset %6td\n", size,
                b.ptr - static_cast<std::byte*>(mem));
  }
  print_stats("after 6 packet records:", flow);

  // The most recent block grows and shrinks in place; freeing it gives its bytes back.
  Block last = flow.allocate(Layout{256, 16});
  Block grown = flow.grow(last, Layout{4096, 16}, Move::forbidden);
  std::printf("  grew the most recent block from 256 B to %zu B %s\n", grown.size,
              grown.ptr == last.ptr ? "in place" : "by moving");
  flow.deallocate(grown, 16);
  print_stats("after freeing it in place:", flow);

  // Running out fails cleanly and leaves the state as it was.
  Block too_big = flow.allocate(Layout{kRegion, 8});
  std::printf("  a %zu KiB request %s\n", kRegion / 1024,
              too_big ? "succeeded (unexpected)" : "was refused, state unchanged");

  // The flow ends: its whole region is released at once.
  flow.reset();
  print_stats("after reset (flow ended):", flow);
  if (auto check = flow.check_invariants(); !check) {
    std::printf("invariant broken: %s\n", check.error().c_str());
    return 1;
  }
  munmap(mem, kRegion);
  std::printf("invariants hold; done.\n");
  return too_big ? 1 : 0;
}
