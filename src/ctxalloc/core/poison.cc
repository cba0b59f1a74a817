// Valgrind memcheck client requests for pool memory (poison.h). Compiled to nothing in
// builds without CTXALLOC_VALGRIND.
#include "ctxalloc/core/poison.h"

#include <atomic>

namespace ctxalloc::detail {
namespace {
std::atomic<bool> g_force_slow_paths{false};
}  // namespace

bool pool_slow_paths() noexcept {
#if CTXALLOC_VALGRIND
  detect_memcheck_once();
#endif
  return memcheck_active() || g_force_slow_paths.load(std::memory_order_relaxed);
}

void set_pool_slow_paths_for_testing(bool on) noexcept {
  g_force_slow_paths.store(on, std::memory_order_relaxed);
}

}  // namespace ctxalloc::detail

#if CTXALLOC_VALGRIND
#include <valgrind/memcheck.h>

namespace ctxalloc::detail {

bool g_memcheck = false;

namespace {

// Also a constructor (priority 101): pools built during static initialisation see it.
[[gnu::constructor(101)]] void detect_at_load() noexcept {
  detect_memcheck_once();
}

}  // namespace

// RUNNING_ON_VALGRIND is true under every valgrind tool, callgrind included, where
// marking would only add instructions to what the benchmarks count. GET_VBITS answers 1
// only from memcheck (other tools leave the default 0). Run by the first allocator built
// (pool_slow_paths), which may come before any constructor: malloc served by
// libctxalloc_preload.so is called while the loader is still starting the process. An
// allocator that chose its fast paths while the flag still said "no memcheck" would
// then hand out blocks its slow paths had marked no-access (found by the preload
// library's memcheck test).
void detect_memcheck_once() noexcept {
  // The answer never changes, so two threads racing here only ask twice. g_memcheck is
  // written only where it becomes true, under memcheck, which runs one thread at a time.
  static std::atomic<bool> done{false};
  if (done.load(std::memory_order_acquire)) return;
  char probe = 0;
  char vbits = 0;
  if (VALGRIND_GET_VBITS(&probe, &vbits, 1) == 1) g_memcheck = true;
  done.store(true, std::memory_order_release);
}

void memcheck_mark(const void* p, std::size_t n, ToolMark mark) noexcept {
  switch (mark) {
    case ToolMark::noaccess:
      (void)VALGRIND_MAKE_MEM_NOACCESS(p, n);
      break;
    case ToolMark::defined:
      (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
      break;
    case ToolMark::undefined:
      (void)VALGRIND_MAKE_MEM_UNDEFINED(p, n);
      break;
  }
}

bool memcheck_noaccess(const void* p, std::size_t n) noexcept {
  // GET_VBITS answers 3, silently, when a byte of the range is not addressable. The
  // callers ask about a few bytes of metadata: a small buffer on the stack.
  char vbits[64];
  while (n > 0) {
    const std::size_t k = n < sizeof vbits ? n : sizeof vbits;
    if (VALGRIND_GET_VBITS(p, vbits, k) == 3) return true;
    p = static_cast<const char*>(p) + k;
    n -= k;
  }
  return false;
}

}  // namespace ctxalloc::detail
#endif
