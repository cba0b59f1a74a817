// main() of a callgrind driver: `callgrind_<suite> WORKLOAD N` runs one workload N times
// inside its function `ctxbench_<WORKLOAD>` (extern "C", noinline), so that
// valgrind --tool=callgrind --toggle-collect=ctxbench_<WORKLOAD> counts exactly its
// instructions. Work a workload does on other threads goes in functions named
// `ctxbench_<WORKLOAD>_<part>`, which bench/callgrind.sh collects too (a toggle on the
// main thread does not cover another thread). bench/callgrind.sh runs every workload of
// every driver.
//
// With CTXBENCH_MEMORY=1 in the environment the driver measures memory instead (run it
// natively, not under valgrind): it resets the kernel's peak-RSS mark (/proc/self/clear_refs)
// before the workload and prints one JSON line after it: resident KiB before, the peak
// during the workload, and the peak bytes of the switchable runtime's segment sources
// (ctxalloc's own memory from the OS; 0 where the workload does not use it). Drivers skip
// their warm-up then, so the workload's own growth is what shows.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if __has_include("ctxalloc/switchable/switchable.h")  // drivers that link ctxalloc
#include "ctxalloc/switchable/switchable.h"
#define CTXBENCH_SOURCE_PEAK() ctxalloc::heap_census().source_peak_bytes
#else
#define CTXBENCH_SOURCE_PEAK() \
  std::size_t {                \
    0                          \
  }
#endif

namespace ctxalloc::bench {

struct CallgrindWorkload {
  const char* name;  // the function must be named ctxbench_<name>
  void (*fn)(std::uint64_t n);
};

/// Whether the driver runs in memory mode (CTXBENCH_MEMORY set).
inline bool memory_mode() {
  return std::getenv("CTXBENCH_MEMORY") != nullptr;
}

/// A "Vm...:" figure of /proc/self/status in KiB (0 when absent).
inline long status_kib(const char* key) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  long v = 0;
  const std::size_t len = std::strlen(key);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, key, len) == 0) v = std::strtol(line + len, nullptr, 10);
  }
  std::fclose(f);
  return v;
}

/// Runs fn(n) between a reset of the peak-RSS mark and a JSON line of the figures.
inline int run_measuring_memory(void (*fn)(std::uint64_t), std::uint64_t n) {
  const long before = status_kib("VmRSS:");
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);  // 5: reset the peak resident set size to the current one
    std::fclose(f);
  }
  fn(n);
  const long peak = status_kib("VmHWM:");
  std::printf("{\"rss_before_kib\": %ld, \"peak_rss_kib\": %ld, \"source_peak_bytes\": %zu}\n",
              before, peak, CTXBENCH_SOURCE_PEAK());
  return 0;
}

/// Call from main(); lists the workloads (one per line after "workloads:") when asked
/// for none.
inline int callgrind_main(int argc, char** argv, std::initializer_list<CallgrindWorkload> ws) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s WORKLOAD N\nworkloads:", argv[0]);
    for (const CallgrindWorkload& w : ws)
      std::fprintf(stderr, " %s", w.name);
    std::fprintf(stderr, "\n");
    return 2;
  }
  const std::uint64_t n = std::strtoull(argv[2], nullptr, 10);
  for (const CallgrindWorkload& w : ws) {
    if (std::strcmp(w.name, argv[1]) == 0) {
      if (memory_mode()) return run_measuring_memory(w.fn, n);
      w.fn(n);
      return 0;
    }
  }
  std::fprintf(stderr, "unknown workload %s\n", argv[1]);
  return 2;
}

}  // namespace ctxalloc::bench
