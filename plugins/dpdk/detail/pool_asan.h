// AddressSanitizer marking of mempool objects: under ASan an object put back into the
// driver is poisoned, so that a use after rte_mempool_put (one that reached the driver,
// not DPDK's per-lcore cache) is reported, and unpoisoned as it is handed out again.
// Objects that were never handed out are not poisoned (DPDK initialises them in place).
// Compiled to nothing in other builds.
#pragma once

#include "ctxalloc/core/sanitizers.h"
#include "detail/pool.h"

#if defined(CTXALLOC_ASAN_ACTIVE)
#include <sanitizer/asan_interface.h>
#endif

namespace ctxalloc::dpdk::detail {

inline void poison(const PoolState& p, void* const* objs, unsigned n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  for (unsigned i = 0; i < n; ++i)
    ASAN_POISON_MEMORY_REGION(objs[i], p.mp->elt_size);
#else
  (void)p, (void)objs, (void)n;
#endif
}

inline void unpoison(const PoolState& p, void* const* objs, unsigned n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  for (unsigned i = 0; i < n; ++i)
    ASAN_UNPOISON_MEMORY_REGION(objs[i], p.mp->elt_size);
#else
  (void)p, (void)objs, (void)n;
#endif
}

}  // namespace ctxalloc::dpdk::detail
