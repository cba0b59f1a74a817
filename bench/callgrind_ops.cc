// The callgrind driver: `callgrind_ops WORKLOAD N` runs one workload N times inside a
// function named ctxbench_<WORKLOAD>, so that valgrind --tool=callgrind
// --toggle-collect=ctxbench_<WORKLOAD> counts exactly its instructions
// (bench/callgrind.sh divides by N).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bump_workloads.h"

using namespace ctxalloc;
using namespace ctxalloc::bench;

namespace {
constexpr std::size_t kSize = 64;
std::vector<std::byte>* g_region;
}  // namespace

extern "C" {

[[gnu::noinline]] void ctxbench_bare_increment(std::uint64_t n) {
  BarePointer bp{g_region->data(), g_region->data(), g_region->data() + g_region->size()};
  bare_increment_loop(bp, n, kSize);
}

[[gnu::noinline]] void ctxbench_bump(std::uint64_t n) {
  BumpAllocator a(Block{g_region->data(), g_region->size()});
  bump_loop(a, n, kSize);
}

[[gnu::noinline]] void ctxbench_glibc_malloc_free(std::uint64_t n) {
  malloc_free_loop(n, kSize);
}

[[gnu::noinline]] void ctxbench_pmr_monotonic(std::uint64_t n) {
  pmr_monotonic_loop(g_region->data(), g_region->size(), n, kSize);
}

}  // extern "C"

int main(int argc, char** argv) {
  struct Entry {
    const char* name;
    void (*fn)(std::uint64_t);
  };
  const Entry entries[] = {
      {"bare_increment", ctxbench_bare_increment},
      {"bump", ctxbench_bump},
      {"glibc_malloc_free", ctxbench_glibc_malloc_free},
      {"pmr_monotonic", ctxbench_pmr_monotonic},
  };
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s WORKLOAD N\nworkloads:", argv[0]);
    for (const Entry& e : entries)
      std::fprintf(stderr, " %s", e.name);
    std::fprintf(stderr, "\n");
    return 2;
  }
  std::vector<std::byte> region(kBumpRegion);
  g_region = &region;
  const std::uint64_t n = std::strtoull(argv[2], nullptr, 10);
  for (const Entry& e : entries) {
    if (std::strcmp(e.name, argv[1]) == 0) {
      e.fn(n);
      return 0;
    }
  }
  std::fprintf(stderr, "unknown workload %s\n", argv[1]);
  return 2;
}
