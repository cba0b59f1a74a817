// Operation counts of randomized tests, scaled per build (CTXALLOC_TEST_SCALE is set by
// meson test from the `test_scale` option: 1 in release builds, less under sanitizers).
#pragma once

#include <cstdint>
#include <cstdlib>

namespace ctxalloc::testing {

inline double test_scale() {
  const char* s = std::getenv("CTXALLOC_TEST_SCALE");
  if (s == nullptr || *s == '\0') return 1.0;
  const double v = std::strtod(s, nullptr);
  return v > 0 ? v : 1.0;
}

/// n scaled by the build's test scale, at least `floor`.
inline std::uint64_t scaled(std::uint64_t n, std::uint64_t floor = 1000) {
  const auto v = static_cast<std::uint64_t>(static_cast<double>(n) * test_scale());
  return v < floor ? floor : v;
}

/// The seed of randomized tests: CTXALLOC_TEST_SEED, else the given default, so a
/// failure can be replayed exactly.
inline std::uint64_t test_seed(std::uint64_t fallback) {
  const char* s = std::getenv("CTXALLOC_TEST_SEED");
  if (s == nullptr || *s == '\0') return fallback;
  return std::strtoull(s, nullptr, 0);
}

}  // namespace ctxalloc::testing
