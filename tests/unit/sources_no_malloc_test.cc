// The sources and the MemoryMapAllocator will serve malloc (under LD_PRELOAD, later), so
// none of their paths may call malloc: this binary replaces malloc, calloc, realloc and
// the aligned forms with counting wrappers around glibc's, opens a counting window, runs
// every path (success, failure, misuse, growth of each metadata table, kernel reports),
// and requires the count to stay 0. Sanitizer builds bring their own malloc, which this
// cannot wrap: there the test skips.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <vector>

#include "ctxalloc/allocators/memory_map_allocator.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/sources/arena_source.h"
#include "ctxalloc/sources/mmap_source.h"
#include "ctxalloc/sources/region_source.h"
#include "ctxalloc/sources/shared_source.h"

#include "support/counting_malloc.h"

namespace ctxalloc {
namespace {

// Every path of every source, as it would run inside malloc. Returns a count of results
// that were not as expected (checked outside the window: gtest allocates).
int exercise_everything() {
  int wrong = 0;
  // MemoryMapSource: options, alignment, resize, errors, reports, index growth.
  MapOptions o;
  o.populate = true;
  o.dontdump = true;
  o.numa = NumaPolicy::bind_to(static_cast<unsigned>(numa_allowed_nodes().first()));
  MemoryMapSource s(o);
  Block b = s.obtain_aligned(1 << 20, 1 << 21);
  wrong += !b;
  b = s.resize(b, 3 << 20, 1 << 21, Move::allowed);
  b = s.resize(b, 4096, 1 << 21, Move::forbidden);
  wrong += !b;
  wrong += !s.report(b.ptr).found;
  wrong += read_numa_policy(b.ptr).mode != NumaMode::bind;
  wrong += s.obtain(0).ptr != nullptr;
  wrong += s.obtain(SIZE_MAX).ptr != nullptr;
  s.release(b);
  s.release(b);  // misuse, counted
  wrong += !s.check_invariants();
  MapOptions huge;
  huge.huge = HugePages::size_2m;
  huge.fallback = HugeFallback::fail;
  MemoryMapSource h(huge);
  const HugePageCounts c = hugepage_counts(2 << 20);
  wrong += h.obtain((c.total + c.surplus + 1000) * (2 << 20)).ptr != nullptr;  // error path
  huge.fallback = HugeFallback::transparent;
  MemoryMapSource t(huge);
  const Block fb = t.obtain((c.total + c.surplus + 1000) * (2 << 20));
  wrong += t.last_outcome() != MapOutcome::fell_back_to_transparent;
  t.release(fb);
  MapOptions badopt;
  badopt.numa = NumaPolicy::bind_to(kMaxNumaNodes - 1);
  MemoryMapSource bad(badopt);
  wrong += bad.obtain(4096).ptr != nullptr;
  // MemoryMapAllocator with enough live mappings to grow its index pool several times.
  MemoryMapAllocator a;
  static Block blocks[3000];
  for (Block& x : blocks)
    x = a.allocate(Layout{5000, 64});
  for (Block& x : blocks)
    x = a.grow(x, Layout{9000, 64}, Move::allowed);
  wrong += !a.check_invariants();
  for (Block& x : blocks)
    a.deallocate(x, 64);
  // RegionSource over memory from the MemoryMapSource.
  MemoryMapSource plain;
  const Block region = plain.obtain(8 << 20);
  {
    RegionSource r(region);
    Block p[64];
    for (Block& x : p)
      x = r.obtain_aligned(20'000, 1 << 16);
    for (Block& x : p)
      r.release(x);
    r.release(p[0]);  // misuse
    wrong += r.obtain(1 << 30).ptr != nullptr;
    wrong += !r.check_invariants();
  }
  // ArenaSource with many slabs (its slab table and chunk set grow), through a
  // SharedSource handle.
  {
    auto shared = SharedSource<MemoryMapSource>::make(MapOptions{});
    ArenaSource<SharedSource<MemoryMapSource>> arena(shared, ArenaOptions{4096, 16384});
    static Block got[5000];
    for (Block& x : got)
      x = arena.obtain();
    for (Block& x : got)
      arena.release(x);
    arena.release(got[0]);  // misuse
    wrong += !arena.check_invariants();
    SharedSource<MemoryMapSource> copy = shared;
    wrong += copy.use_count() != 3;
  }
  return wrong;
}

TEST(SourcesNoMalloc, NoPathOfAnySourceCallsMalloc) {
  const MisusePolicy saved = misuse_policy();
  set_misuse_policy(MisusePolicy::count);
#if defined(CTXALLOC_COUNT_MALLOC)
  (void)numa_supported();  // libnuma set itself up before main; this only caches a flag
  g_calls = 0;
  g_counting = true;
  void* volatile seen = std::malloc(8);  // the wrapper really is in place: this one counts
  const long wrapper_works = g_calls.load();
  std::free(seen);
  g_calls = 0;
  const int wrong = exercise_everything();
  g_counting = false;
  set_misuse_policy(saved);
  EXPECT_EQ(wrapper_works, 1) << "the counting malloc is not the one in use";
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(g_calls.load(), 0) << "a source path called malloc (or calloc, realloc, ...)";
#else
  EXPECT_EQ(exercise_everything(), 0);
  set_misuse_policy(saved);
  GTEST_SKIP() << "the paths ran, but sanitizer builds bring their own malloc, which this "
                  "test cannot count; the release and debug builds count it";
#endif
}

}  // namespace
}  // namespace ctxalloc
