// Runs a function on a worker lcore and waits for it (the per-lcore tests: bindings are
// made on the lcore's own thread, so the test body sends work there).
#pragma once

#include <rte_launch.h>
#include <rte_lcore.h>

#include <functional>
#include <stdexcept>
#include <type_traits>

namespace ctxalloc::testing {

/// f() on `lcore` (a waiting worker), its result back here. gtest assertions inside f
/// are recorded as usual (gtest is thread-safe on Linux).
template <class F>
auto on_lcore(unsigned lcore, F&& f) -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  struct Call {
    F* f;
    std::conditional_t<std::is_void_v<R>, int, R> result{};
  } call{&f};
  auto tramp = [](void* arg) -> int {
    auto* c = static_cast<Call*>(arg);
    if constexpr (std::is_void_v<R>) {
      (*c->f)();
    } else {
      c->result = (*c->f)();
    }
    return 0;
  };
  if (rte_eal_remote_launch(tramp, &call, lcore) != 0)
    throw std::runtime_error("lcore not waiting");
  rte_eal_wait_lcore(lcore);
  if constexpr (!std::is_void_v<R>) return call.result;
}

}  // namespace ctxalloc::testing
