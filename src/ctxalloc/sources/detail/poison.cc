// Valgrind memcheck client requests for pool memory (poison.h). Compiled to nothing in
// builds without CTXALLOC_VALGRIND.
#include "ctxalloc/sources/detail/poison.h"

#include <atomic>

namespace ctxalloc::detail {
namespace {
std::atomic<bool> g_force_slow_paths{false};
}  // namespace

bool pool_slow_paths() noexcept {
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

// RUNNING_ON_VALGRIND is true under every valgrind tool, callgrind included, where
// marking would only add instructions to what the benchmarks count. GET_VBITS answers 1
// only from memcheck (other tools leave the default 0). It runs before other
// constructors (priority 101), so pools built during static initialisation see it.
[[gnu::constructor(101)]] void detect_memcheck() noexcept {
  char probe = 0;
  char vbits = 0;
  g_memcheck = VALGRIND_GET_VBITS(&probe, &vbits, 1) == 1;
}

}  // namespace

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
