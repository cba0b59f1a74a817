// Shared by the Google Benchmark suites and the callgrind driver: the workloads are
// written once, as loops over n operations, so time and instruction counts measure the
// same code.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctxalloc::bench {

/// Keeps the compiler from discarding p (like benchmark::DoNotOptimize, without the
/// Google Benchmark dependency, so the callgrind driver stays free of it).
template <class T>
inline void keep(T const& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

}  // namespace ctxalloc::bench
