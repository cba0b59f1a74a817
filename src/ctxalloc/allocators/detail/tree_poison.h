// Telling AddressSanitizer which parts of a TreeAllocator region the caller may touch:
// live blocks are addressable; free spans are poisoned except their tree node (first 32
// bytes) and their length footer (last 8 bytes), which the allocator itself reads. So a
// use after free inside the allocator's own memory is caught, not only in malloc's.
// Costs nothing outside ASan builds.
#pragma once

#include <cstddef>

#include "ctxalloc/core/sanitizers.h"

#if defined(CTXALLOC_ASAN_ACTIVE)
#include <sanitizer/asan_interface.h>
#endif

namespace ctxalloc::detail {

inline void poison(const void* p, std::size_t n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

inline void unpoison(const void* p, std::size_t n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

}  // namespace ctxalloc::detail
