// Telling AddressSanitizer which parts of a pool are not handed out, so that a use after
// release inside a source's memory is caught like one on the heap. No-ops without ASan.
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

/// Whether any of [p, p + n) is poisoned (always false without ASan): a pool may ask
/// before reading its own metadata in memory it handed back.
inline bool is_poisoned(const void* p, std::size_t n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  return __asan_region_is_poisoned(const_cast<void*>(p), n) != nullptr;
#else
  (void)p;
  (void)n;
  return false;
#endif
}

}  // namespace ctxalloc::detail
