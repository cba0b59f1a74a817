// The mempool driver's foreign-pointer check: every object put must lie in the pool's
// address span. It catches pointers from other pools and from the heap, not a pointer
// into the middle of an object. One branch per call on the fast path; with SSE4.2
// (DPDK's baseline here) two objects per compare: x - lo >= len (unsigned) is
// (x - lo) ^ 2^63 > (len - 1) ^ 2^63 (signed).
#pragma once

#include <cstdint>

#include "detail/pool.h"

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace ctxalloc::dpdk::detail {

/// Whether every one of objs[0, n) is in [lo, lo + len) (false for an empty span).
inline bool all_in_span(std::uintptr_t lo, std::uintptr_t len, void* const* objs,
                        unsigned n) noexcept {
  unsigned i = 0;
  bool bad = false;
#if defined(__SSE4_2__)
  if (n >= 4) {  // fewer: not worth the vector set-up
    const __m128i vlo = _mm_set1_epi64x(static_cast<long long>(lo));
    const __m128i flip = _mm_set1_epi64x(INT64_MIN);
    const __m128i limit =
        _mm_set1_epi64x(static_cast<long long>((len - 1) ^ (std::uintptr_t{1} << 63)));
    auto outside2 = [&](unsigned j) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(objs + j));
      return _mm_cmpgt_epi64(_mm_xor_si128(_mm_sub_epi64(v, vlo), flip), limit);
    };
    __m128i out = _mm_setzero_si128();
    for (; i + 4 <= n; i += 4)
      out = _mm_or_si128(out, _mm_or_si128(outside2(i), outside2(i + 2)));
    bad = _mm_testz_si128(out, out) == 0;
  }
#endif
  for (; i < n; ++i)
    bad |= reinterpret_cast<std::uintptr_t>(objs[i]) - lo >= len;
  return !bad && len != 0;
}

/// Against the pool's own span (the lanes' copies may be 0 while populating).
inline bool all_in_pool(const PoolState& p, void* const* objs, unsigned n) noexcept {
  return p.span_hi > p.span_lo && all_in_span(p.span_lo, p.span_hi - p.span_lo, objs, n);
}

}  // namespace ctxalloc::dpdk::detail
