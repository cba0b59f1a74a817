// main() of a callgrind driver: `callgrind_<suite> WORKLOAD N` runs one workload N times
// inside its function `ctxbench_<WORKLOAD>` (extern "C", noinline), so that
// valgrind --tool=callgrind --toggle-collect=ctxbench_<WORKLOAD> counts exactly its
// instructions. Work a workload does on other threads goes in functions named
// `ctxbench_<WORKLOAD>_<part>`, which bench/callgrind.sh collects too (a toggle on the
// main thread does not cover another thread). bench/callgrind.sh runs every workload of
// every driver.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace ctxalloc::bench {

struct CallgrindWorkload {
  const char* name;  // the function must be named ctxbench_<name>
  void (*fn)(std::uint64_t n);
};

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
      w.fn(n);
      return 0;
    }
  }
  std::fprintf(stderr, "unknown workload %s\n", argv[1]);
  return 2;
}

}  // namespace ctxalloc::bench
