// A program outside the tree, built against the installed headers and library only.
#include <ctxalloc/allocators/bump_allocator.h>
#include <ctxalloc/core/dyn_allocator.h>

#include <cstdio>

int main() {
  alignas(64) static std::byte buf[4096];
  auto a = ctxalloc::make_dyn_allocator<ctxalloc::BumpAllocator>("bump",
                                                                 ctxalloc::Block{buf, sizeof buf});
  ctxalloc::Block b = a->allocate(ctxalloc::Layout{100, 16});
  a->deallocate(b, 16);
  const ctxalloc::Stats s = a->stats();
  std::printf("consumer: %s\n", ctxalloc::to_string(s).c_str());
  return (b.ptr != nullptr && s.allocations == 1 && s.bytes_in_use == 0) ? 0 : 1;
}
