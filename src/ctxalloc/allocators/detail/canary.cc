// The canary switch (canary.h).
#include "ctxalloc/allocators/detail/canary.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "ctxalloc/config.h"

namespace ctxalloc::detail {
namespace {
std::atomic<bool> g_canaries_for_testing{false};
}  // namespace

bool canaries_requested() noexcept {
  if (!CTXALLOC_CHECKS) return false;  // release builds never check them
  if (g_canaries_for_testing.load(std::memory_order_relaxed)) return true;
  const char* v = std::getenv("CTXALLOC_CANARY");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

void set_canaries_for_testing(bool on) noexcept {
  g_canaries_for_testing.store(on, std::memory_order_relaxed);
}

}  // namespace ctxalloc::detail
