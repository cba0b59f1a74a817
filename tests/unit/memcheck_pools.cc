// The pool-poisoning cases of pool_poisoning_test.cc, as a plain program for valgrind's
// memcheck (tests/unit/memcheck_pools.sh runs it): `memcheck_pools CASE` builds one
// allocator, frees a block and writes into it. Under memcheck the write must be reported
// as an invalid write (the pools mark free memory no-access through client requests);
// the `clean` case uses every allocator correctly and must report nothing.
#include <cstdio>
#include <cstring>
#include <string>

#include "ctxalloc/allocators/bitset_allocator.h"
#include "ctxalloc/allocators/bump_allocator.h"
#include "ctxalloc/allocators/context_allocator.h"
#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/allocators/tree_allocator.h"
#include "support/segment_provider.h"

namespace {

using namespace ctxalloc;

alignas(4096) unsigned char g_region[256 * 1024];

Block region() {
  return Block{reinterpret_cast<std::byte*>(g_region), sizeof g_region};
}

// A write the compiler cannot drop.
void touch(void* p) {
  *static_cast<volatile unsigned char*>(p) = 0x5A;
}

int bump(bool misuse) {
  BumpAllocator a(region());
  Block x = a.allocate(Layout{64, 8});
  Block y = a.allocate(Layout{64, 8});
  touch(y.ptr + 63);
  a.deallocate(y, 8);
  if (misuse) touch(y.ptr + 8);  // freed: back in the free part
  a.deallocate(x, 8);
  return 0;
}

int bitset(bool misuse) {
  BitSetAllocator a(region(), 64);
  Block x = a.allocate(Layout{200, 8});
  touch(x.ptr + 199);
  a.deallocate(x, 8);
  if (misuse) touch(x.ptr + 100);
  return 0;
}

int size_class(bool misuse) {
  testing::TestSegments segs;
  SizeClassAllocator a(segs.provider());
  Block x = a.allocate(Layout{64, 8});
  Block y = a.allocate(Layout{64, 8});
  touch(x.ptr + 63);
  a.deallocate(x, 8);
  if (misuse) touch(x.ptr + 40);
  a.deallocate(y, 8);
  a.trim();
  return 0;
}

int tree(bool misuse) {
  TreeAllocator a(region());
  Block x = a.allocate(Layout{256, 16});
  Block fence = a.allocate(Layout{32, 16});
  touch(x.ptr + 255);
  a.deallocate(x, 16);
  if (misuse) touch(x.ptr + 64);  // past the free span's node, before its footer
  a.deallocate(fence, 16);
  return 0;
}

int context(bool misuse) {
  ContextAllocator c(Lifetime::medium, region());
  Block x = c.allocate(Layout{200, 8});
  touch(x.ptr + 199);
  c.reset();
  if (misuse) touch(x.ptr + 100);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "clean")
    return bump(false) + bitset(false) + size_class(false) + tree(false) + context(false);
  if (what == "bump") return bump(true);
  if (what == "bitset") return bitset(true);
  if (what == "size_class") return size_class(true);
  if (what == "tree") return tree(true);
  if (what == "context") return context(true);
  std::fprintf(stderr, "usage: memcheck_pools clean|bump|bitset|size_class|tree|context\n");
  return 2;
}
