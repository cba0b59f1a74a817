// SharedSource: the handle's reference counting, forwarding, several allocators on one
// source, and two threads obtaining and releasing through it (this test is in the `mt`
// suite, so it also runs under ThreadSanitizer).
#include "ctxalloc/sources/shared_source.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "ctxalloc/allocators/bump_allocator.h"
#include "ctxalloc/sources/arena_source.h"
#include "ctxalloc/sources/mmap_source.h"
#include "ctxalloc/sources/region_source.h"
#include "support/test_scale.h"

namespace ctxalloc {
namespace {

// A source that counts its own construction and destruction.
struct CountedSource {
  static inline int alive = 0;
  explicit CountedSource(int tag_) noexcept : tag(tag_) { ++alive; }
  ~CountedSource() { --alive; }
  Block obtain(std::size_t size) noexcept {
    ++obtains;
    return size <= sizeof buf ? Block{buf, sizeof buf} : Block{};
  }
  void release(Block) noexcept { ++releases; }
  int tag;
  int obtains = 0, releases = 0;
  alignas(64) std::byte buf[256];
};

static_assert(MemorySource<SharedSource<CountedSource>>);
static_assert(!AlignedMemorySource<SharedSource<CountedSource>>);
static_assert(AlignedMemorySource<SharedSource<MemoryMapSource>>);
static_assert(ReportingMemorySource<SharedSource<MemoryMapSource>>);

TEST(SharedSource, TheLastHandleDestroysTheSource) {
  ASSERT_EQ(CountedSource::alive, 0);
  {
    auto a = SharedSource<CountedSource>::make(7);
    ASSERT_TRUE(a);
    EXPECT_EQ(CountedSource::alive, 1);
    EXPECT_EQ(a.use_count(), 1);
    {
      SharedSource<CountedSource> b = a;
      EXPECT_EQ(a.use_count(), 2);
      SharedSource<CountedSource> c = std::move(b);
      EXPECT_FALSE(b);
      EXPECT_EQ(b.use_count(), 0);
      EXPECT_EQ(c.use_count(), 2);
      SharedSource<CountedSource> d;
      d = c;
      EXPECT_EQ(a.use_count(), 3);
      d = SharedSource<CountedSource>{};  // drops one
      EXPECT_EQ(a.use_count(), 2);
      EXPECT_TRUE(c.obtain(10));
    }
    EXPECT_EQ(a.use_count(), 1);
    EXPECT_EQ(CountedSource::alive, 1);
    EXPECT_EQ(a.with_locked([](CountedSource& s) { return s.obtains; }), 1);
    EXPECT_EQ(a.with_locked([](CountedSource& s) { return s.tag; }), 7);
  }
  EXPECT_EQ(CountedSource::alive, 0);
}

TEST(SharedSource, AnEmptyHandleFailsCleanly) {
  SharedSource<MemoryMapSource> empty;
  EXPECT_FALSE(empty.obtain(4096));
  EXPECT_FALSE(empty.obtain_aligned(4096, 1 << 20));
  empty.release(Block{});
  EXPECT_EQ(empty.stats().obtains, 0u);
  EXPECT_EQ(empty.last_error().code(), SourceErrc::bad_option);
}

TEST(SharedSource, ForwardsObtainAlignedStatsAndErrors) {
  auto s = SharedSource<MemoryMapSource>::make(MapOptions{});
  const Block b = s.obtain_aligned(64 * 1024, 2 << 20);
  ASSERT_TRUE(b);
  EXPECT_TRUE(is_aligned(b.ptr, 2 << 20));
  EXPECT_EQ(s.stats().bytes_held, 64u * 1024);
  EXPECT_FALSE(s.obtain(0));
  EXPECT_EQ(s.last_error().code(), SourceErrc::bad_size);
  s.release(b);
  EXPECT_EQ(s.stats().live_blocks(), 0u);
  EXPECT_TRUE(s.with_locked([](MemoryMapSource& m) { return m.check_invariants(); }));
}

TEST(SharedSource, SeveralAllocatorsTakeTheirRegionsFromOneSource) {
  auto shared = SharedSource<MemoryMapSource>::make(MapOptions{});
  SharedSource<MemoryMapSource> for_a = shared, for_b = shared;
  const Block ra = for_a.obtain(64 * 1024), rb = for_b.obtain(64 * 1024);
  ASSERT_TRUE(ra && rb);
  {
    BumpAllocator a(ra), b(rb);
    const Block x = a.allocate(Layout{1000, 8});
    const Block y = b.allocate(Layout{1000, 8});
    ASSERT_TRUE(x && y);
    EXPECT_TRUE(a.contains(x.ptr) && !a.contains(y.ptr));
    EXPECT_EQ(shared.stats().bytes_held, 128u * 1024);
  }
  for_a.release(ra);
  for_b.release(rb);
  EXPECT_EQ(shared.stats().bytes_held, 0u);
  EXPECT_EQ(shared.use_count(), 3);
}

TEST(SharedSource, AnArenaCanTakeItsSlabsThroughAHandle) {
  auto shared = SharedSource<MemoryMapSource>::make(MapOptions{});
  {
    ArenaSource<SharedSource<MemoryMapSource>> arena(shared, ArenaOptions{4096});
    EXPECT_EQ(shared.use_count(), 2) << "the arena holds its own handle";
    const Block b = arena.obtain();
    ASSERT_TRUE(b);
    EXPECT_TRUE(is_aligned(b.ptr, 4096));
    arena.release(b);
  }
  EXPECT_EQ(shared.use_count(), 1);
  EXPECT_EQ(shared.stats().live_blocks(), 0u) << "the slab went back through the handle";
}

// Two threads, each with its own handle, obtain blocks, fill them with their own
// pattern, check it and release them, some through the other thread's handle. A lost
// update under a missing lock shows as a wrong count, a double hand-out as a pattern
// clash; ThreadSanitizer sees any unlocked access.
TEST(SharedSource, TwoThreadsShareAnArenaThroughTheLock) {
  MemoryMapSource parent;
  auto shared = SharedSource<ArenaSource<MemoryMapSource&>>::make(parent, ArenaOptions{256});
  ASSERT_TRUE(shared);
  const int rounds = static_cast<int>(testing::scaled(200'000, 2'000));
  std::atomic<int> clashes{0};
  std::atomic<bool> go{false};
  auto work = [&](SharedSource<ArenaSource<MemoryMapSource&>> h, unsigned char mark) {
    while (!go.load(std::memory_order_acquire)) {
    }
    std::vector<Block> held;
    for (int i = 0; i < rounds; ++i) {
      const Block b = h.obtain(256);
      if (!b) {
        clashes.fetch_add(1000);
        return;
      }
      std::memset(b.ptr, mark, b.size);
      held.push_back(b);
      if (held.size() == 8 || i + 1 == rounds) {
        for (const Block& x : held) {
          for (std::size_t k = 0; k < x.size; ++k)
            if (static_cast<unsigned char>(x.ptr[k]) != mark) {
              clashes.fetch_add(1);
              break;
            }
          h.release(x);
        }
        held.clear();
      }
      if (i % 1000 == 0) SharedSource<ArenaSource<MemoryMapSource&>> copy = h;  // refcount churn
    }
  };
  std::thread t1(work, shared, static_cast<unsigned char>(0x11));
  std::thread t2(work, shared, static_cast<unsigned char>(0x22));
  go.store(true, std::memory_order_release);
  t1.join();
  t2.join();
  EXPECT_EQ(clashes.load(), 0);
  const SourceStats st = shared.stats();
  EXPECT_EQ(st.obtains, 2u * static_cast<unsigned>(rounds));
  EXPECT_EQ(st.releases, st.obtains);
  EXPECT_EQ(st.misuses, 0u);
  EXPECT_EQ(shared.use_count(), 1);
  EXPECT_TRUE(shared.with_locked([](auto& a) { return a.check_invariants(); }));
}

}  // namespace
}  // namespace ctxalloc
