// Which malloc a tree-suite binary was built for (CTXBENCH_PEER_* macros set by
// bench/meson.build), and a check that `malloc` in the running process really is that
// one: every malloc-family library exports `malloc`, and the link order or --as-needed
// decides which wins.
#pragma once

#include <malloc.h>

#include <cstdint>
#include <cstdlib>

#include "bench_util.h"

#ifndef CTXBENCH_PEER_RTE
#define CTXBENCH_PEER_RTE 0
#endif

#if CTXBENCH_PEER_MIMALLOC
#include <mimalloc.h>
#elif CTXBENCH_PEER_JEMALLOC
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen);
#elif CTXBENCH_PEER_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

namespace ctxalloc::bench {

#if CTXBENCH_PEER_RTE
inline constexpr const char* kMallocName = "rte";
#elif CTXBENCH_PEER_MIMALLOC
inline constexpr const char* kMallocName = "mimalloc";
#elif CTXBENCH_PEER_JEMALLOC
inline constexpr const char* kMallocName = "jemalloc";
#elif CTXBENCH_PEER_TCMALLOC
inline constexpr const char* kMallocName = "tcmalloc";
#else
inline constexpr const char* kMallocName = "glibc";
#endif

/// Whether `malloc` is the peer's: the peer's own statistics must see a fresh block.
/// (The rte binary's malloc is glibc's: rte_malloc does not replace it.)
inline bool malloc_is_the_peer() {
  bool ok = false;
#if CTXBENCH_PEER_MIMALLOC
  void* p = std::malloc(100000);
  keep(p);
  ok = mi_is_in_heap_region(p);
#elif CTXBENCH_PEER_JEMALLOC
  std::uint64_t before = 0;
  std::uint64_t after = 0;
  std::size_t len = sizeof before;
  mallctl("thread.allocated", &before, &len, nullptr, 0);
  void* p = std::malloc(100000);
  keep(p);
  mallctl("thread.allocated", &after, &len, nullptr, 0);
  ok = after - before >= 100000;
#elif CTXBENCH_PEER_TCMALLOC
  std::size_t before = 0;
  std::size_t after = 0;
  MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &before);
  void* p = std::malloc(100000);
  keep(p);
  MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &after);
  ok = after - before >= 100000;
#else
  const struct mallinfo2 before = mallinfo2();
  void* p = std::malloc(1000);
  keep(p);
  const struct mallinfo2 after = mallinfo2();
  ok = after.uordblks - before.uordblks >= 1000;
#endif
  std::free(p);
  return ok;
}

}  // namespace ctxalloc::bench
