// Telling the memory tools which parts of a pool are not handed out, so that a use after
// release inside a pool's memory is caught like one on the heap:
//
//  - AddressSanitizer builds poison and unpoison shadow memory (compiled in, always on);
//  - builds with CTXALLOC_VALGRIND (release and debug) issue memcheck client requests,
//    but only while the process runs under valgrind's memcheck (detected once at load
//    time). Outside memcheck each call costs a load and a not-taken branch; the fast
//    paths of the bump, bit-set and size-class allocators avoid even that by sending
//    every request to their slow paths under memcheck (see memcheck_active()).
//
// poison: the bytes may not be touched (memcheck: no access). unpoison: the bytes are
// the pool's or the caller's again and keep their contents (memcheck: defined), for
// metadata the pool reads back and data that must survive. unpoison_fresh: a block handed
// out anew, whose old contents mean nothing (memcheck: undefined, so reading it before
// writing is reported too).
#pragma once

#include <cstddef>

#include "ctxalloc/config.h"
#include "ctxalloc/core/sanitizers.h"

#if defined(CTXALLOC_ASAN_ACTIVE)
#include <sanitizer/asan_interface.h>
#endif

namespace ctxalloc::detail {

enum class ToolMark : unsigned char { noaccess, defined, undefined };

#if CTXALLOC_VALGRIND
/// True when the process runs under valgrind's memcheck; set before main() (poison.cc).
extern bool g_memcheck;
/// The client request itself, out of line so that no header needs valgrind's.
void memcheck_mark(const void* p, std::size_t n, ToolMark mark) noexcept;
/// Whether memcheck considers any byte of [p, p + n) not addressable (no error printed).
bool memcheck_noaccess(const void* p, std::size_t n) noexcept;
/// Sets g_memcheck, once (later calls return at once).
void detect_memcheck_once() noexcept;
#endif

/// Whether pools must tell memcheck about their memory (false in builds without
/// CTXALLOC_VALGRIND). Allocators read it once, at construction, to route requests
/// through their slow paths, which mark.
inline bool memcheck_active() noexcept {
#if CTXALLOC_VALGRIND
  return __builtin_expect(g_memcheck, 0);
#else
  return false;
#endif
}

/// Whether allocators built now send every request through their slow paths, which
/// tell the memory tools about each block: under memcheck, or while a test asks for it
/// (set_pool_slow_paths_for_testing), so that the routing is tested without valgrind.
bool pool_slow_paths() noexcept;
/// Test hook for pool_slow_paths(); affects allocators constructed afterwards.
void set_pool_slow_paths_for_testing(bool on) noexcept;

/// Whether poison() has any effect: an ASan build, or a run under memcheck.
inline bool poisoning_active() noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  return true;
#else
  return memcheck_active();
#endif
}

/// AddressSanitizer only: for fast paths that memcheck runs never take.
inline void asan_poison(const void* p, std::size_t n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

/// AddressSanitizer only, as asan_poison.
inline void asan_unpoison(const void* p, std::size_t n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

inline void poison(const void* p, std::size_t n) noexcept {
  asan_poison(p, n);
#if CTXALLOC_VALGRIND
  if (memcheck_active()) memcheck_mark(p, n, ToolMark::noaccess);
#endif
}

inline void unpoison(const void* p, std::size_t n) noexcept {
  asan_unpoison(p, n);
#if CTXALLOC_VALGRIND
  if (memcheck_active()) memcheck_mark(p, n, ToolMark::defined);
#endif
}

inline void unpoison_fresh(const void* p, std::size_t n) noexcept {
  asan_unpoison(p, n);
#if CTXALLOC_VALGRIND
  if (memcheck_active()) memcheck_mark(p, n, ToolMark::undefined);
#endif
}

/// Whether any of [p, p + n) is poisoned (always false without a tool): a pool may ask
/// before reading its own metadata in memory it handed back.
inline bool is_poisoned(const void* p, std::size_t n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  return __asan_region_is_poisoned(const_cast<void*>(p), n) != nullptr;
#elif CTXALLOC_VALGRIND
  return memcheck_active() && memcheck_noaccess(p, n);
#else
  (void)p;
  (void)n;
  return false;
#endif
}

/// The length of the longest prefix of [p, p + n) that is not poisoned (n without a
/// tool): how much of a span of handed-out memory a pool may copy without the tools
/// reporting the blocks freed inside it.
inline std::size_t addressable_prefix(const void* p, std::size_t n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  const void* bad = __asan_region_is_poisoned(const_cast<void*>(p), n);
  return bad == nullptr ? n
                        : static_cast<std::size_t>(static_cast<const char*>(bad) -
                                                   static_cast<const char*>(p));
#else
  std::size_t i = 0;
  if (memcheck_active()) {  // rare (reallocate of an old bump block): byte by byte
    while (i < n && !is_poisoned(static_cast<const char*>(p) + i, 1))
      ++i;
    return i;
  }
  (void)p;
  return n;
#endif
}

}  // namespace ctxalloc::detail
