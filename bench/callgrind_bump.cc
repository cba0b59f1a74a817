// Callgrind workloads of the bump suite (see callgrind_main.h).
#include <vector>

#include "bump_workloads.h"
#include "callgrind_main.h"

using namespace ctxalloc;
using namespace ctxalloc::bench;

namespace {
constexpr std::size_t kSize = 64;
std::vector<std::byte> g_region(kBumpRegion);
}  // namespace

extern "C" {

[[gnu::noinline]] void ctxbench_bare_increment(std::uint64_t n) {
  BarePointer bp{g_region.data(), g_region.data(), g_region.data() + g_region.size()};
  bare_increment_loop(bp, n, kSize);
}

[[gnu::noinline]] void ctxbench_bump(std::uint64_t n) {
  BumpAllocator a(Block{g_region.data(), g_region.size()});
  bump_loop(a, n, kSize);
}

[[gnu::noinline]] void ctxbench_glibc_malloc_free(std::uint64_t n) {
  malloc_free_loop(n, kSize);
}

[[gnu::noinline]] void ctxbench_pmr_monotonic(std::uint64_t n) {
  pmr_monotonic_loop(g_region.data(), g_region.size(), n, kSize);
}

}  // extern "C"

int main(int argc, char** argv) {
  return callgrind_main(argc, argv,
                        {
                            {"bare_increment", ctxbench_bare_increment},
                            {"bump", ctxbench_bump},
                            {"glibc_malloc_free", ctxbench_glibc_malloc_free},
                            {"pmr_monotonic", ctxbench_pmr_monotonic},
                        });
}
