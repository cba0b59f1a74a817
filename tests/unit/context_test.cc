#include "ctxalloc/switchable/context.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory_resource>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ctxalloc/adaptors/current_resource.h"
#include "ctxalloc/switchable/coroutine.h"
#include "ctxalloc/switchable/owner.h"
#include "support/misuse_test_helpers.h"
#include "support/random_driver.h"

namespace ctxalloc {

template <>
struct TestPeer<FixedContext> {
  static void miscount_spills(Context& c) { c.as_fixed().spilled_live_.add(1); }
};

namespace {

OwnerKind kind_of(const void* p) {
  return SegmentMap::lookup(p)->kind;
}

struct ContextDeleter {
  void operator()(Context* c) const { c->release_all(); }
};
using ContextPtr = std::unique_ptr<Context, ContextDeleter>;

ContextPtr make(Lifetime l, std::size_t bytes = 64 << 10) {
  Context* c = Context::create(l, bytes);
  EXPECT_NE(c, nullptr);
  return ContextPtr(c);
}

TEST(Context, EachLifetimeGetsItsKindAndServesInsideItsBlock) {
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    ContextPtr c = make(l);
    EXPECT_EQ(c->kind(), kind_for(l));
    EXPECT_EQ(c->bytes(), 64u << 10);
    EXPECT_TRUE(is_aligned(c.get(), 64 << 10));
    ContextScope scope(*c);
    EXPECT_EQ(current_mode(), Mode::context);
    EXPECT_EQ(current_context(), c.get());
    void* p = allocate(200);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(kind_of(p), owner_kind::context_arena);
    EXPECT_EQ(Context::of(p, SegmentMap::lookup(p)), c.get());
    EXPECT_GE(usable_size(p), 200u);
    deallocate(p);
    EXPECT_TRUE(c->check_invariants());
  }
}

TEST(Context, ScopesNestAndRestoreTheCallersModeAndContext) {
  ContextPtr a = make(Lifetime::long_lived);
  ContextPtr b = make(Lifetime::medium);
  ModeScope thread_mode(Mode::thread);
  {
    ContextScope sa(*a);
    void* pa = allocate(64);
    {
      ContextScope sb(*b);
      void* pb = allocate(64);
      EXPECT_EQ(Context::of(pb, SegmentMap::lookup(pb)), b.get());
      deallocate(pb);
    }
    EXPECT_EQ(current_context(), a.get());
    void* pa2 = allocate(64);
    EXPECT_EQ(Context::of(pa2, SegmentMap::lookup(pa2)), a.get());
    deallocate(pa);
    deallocate(pa2);
  }
  EXPECT_EQ(current_mode(), Mode::thread);
  EXPECT_EQ(current_context(), nullptr);
  try {
    ContextScope s(*a);
    throw std::runtime_error("x");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(current_mode(), Mode::thread);
}

TEST(Context, BlocksAreFreedIntoTheirContextWhateverTheModeNow) {
  ContextPtr c = make(Lifetime::long_lived);
  void* p = nullptr;
  {
    ContextScope s(*c);
    p = allocate(1000);
  }
  EXPECT_EQ(c->live_blocks(), 1u);
  with_global_allocator([&] { deallocate(p); });
  EXPECT_EQ(c->live_blocks(), 0u);
}

TEST(Context, PmrContainersLiveInTheCurrentContext) {
  ContextPtr c = make(Lifetime::short_lived, 16 << 10);
  ContextScope s(*c);
  std::pmr::memory_resource* current = current_resource();
  std::pmr::vector<int> v(current);
  for (int i = 0; i < 100; ++i)
    v.push_back(i);
  EXPECT_EQ(kind_of(v.data()), owner_kind::context_arena);
  std::pmr::string str("a first payload, copied into the flow's context", current);
  EXPECT_EQ(kind_of(str.data()), owner_kind::context_arena);
}

TEST(Context, AnExhaustedContextSpillsIntoItsThreadHeapAndReleaseTakesTheSpillsToo) {
  ThreadHeap* heap = current_thread_heap();
  const std::uint64_t spill_before = heap->stats().spill.bytes_in_use;
  Context* c = Context::create(Lifetime::short_lived, 4096);
  ASSERT_NE(c, nullptr);
  std::vector<void*> blocks;
  {
    ContextScope s(*c);
    for (int i = 0; i < 100; ++i) {
      void* p = allocate(100);
      ASSERT_NE(p, nullptr);
      std::memset(p, i, 100);
      blocks.push_back(p);
    }
  }
  const ContextStats st = c->stats();
  EXPECT_GT(st.spills, 50u) << "4 KiB hold only a few dozen 100-byte blocks";
  EXPECT_EQ(st.spilled_live, st.spills);
  EXPECT_EQ(kind_of(blocks.back()), owner_kind::spill);
  EXPECT_EQ(static_cast<unsigned char*>(blocks.back())[99], 99u);
  // One spilled block freed alone is unlinked from its context.
  deallocate(blocks.back());
  EXPECT_EQ(c->stats().spilled_live, st.spills - 1);
  EXPECT_TRUE(c->check_invariants());
  EXPECT_GT(heap->stats().spill.bytes_in_use, spill_before);
  c->release_all();  // the flow ends: everything goes, spilled blocks included
  EXPECT_EQ(heap->stats().spill.bytes_in_use, spill_before);
  EXPECT_TRUE(heap->check_invariants());
}

TEST(Context, ReleasingTheWholeContextWithLiveBlocksIsTheNormalEndOfAFlow) {
  const std::size_t before = current_thread_heap()->live_contexts();
  Context* c = Context::create(Lifetime::medium, 8192);
  {
    ContextScope s(*c);
    for (int i = 0; i < 10; ++i)
      ASSERT_NE(allocate(64), nullptr);
  }
  const std::uint64_t misuses = misuse_count();
  c->release_all();
  EXPECT_EQ(misuse_count(), misuses);
  EXPECT_EQ(current_thread_heap()->live_contexts(), before);
}

TEST(Context, BlocksFreedOnAnotherThreadGoBackToTheOwningThread) {
  ContextPtr c = make(Lifetime::long_lived, 1 << 20);
  std::vector<void*> blocks;
  {
    ContextScope s(*c);
    for (int i = 0; i < 500; ++i)
      blocks.push_back(allocate(static_cast<std::size_t>(32 + i)));
  }
  std::thread other([&] {
    for (void* p : blocks)
      deallocate(p);  // routed to the owner's heap, batched
    flush();
  });
  other.join();
  EXPECT_EQ(c->live_blocks(), 500u) << "not applied until the owner drains";
  flush();  // the owner drains its heap's remote frees into the context
  EXPECT_EQ(c->live_blocks(), 0u);
  EXPECT_TRUE(c->check_invariants());
}

// ----------------------------------------------------------------- coroutines

ContextTask<int> worker(Context& ctx, int id, std::vector<void*>* seen) {
  int sum = 0;
  for (int step = 0; step < 3; ++step) {
    void* p = allocate(48);
    EXPECT_EQ(Context::of(p, SegmentMap::lookup(p)), &ctx) << "task " << id;
    seen->push_back(p);
    sum += id;
    co_await std::suspend_always{};
    EXPECT_EQ(current_context(), &ctx) << "back in its own context after resuming";
  }
  co_return sum;
}

TEST(ContextTask, InterleavedCoroutinesEachAllocateInTheirOwnContext) {
  ModeScope thread_mode(Mode::thread);
  ContextPtr c1 = make(Lifetime::medium), c2 = make(Lifetime::long_lived),
             c3 = make(Lifetime::short_lived);
  std::vector<void*> seen;
  {
    ContextTask<int> t1 = worker(*c1, 1, &seen);
    ContextTask<int> t2 = worker(*c2, 2, &seen);
    ContextTask<int> t3 = worker(*c3, 3, &seen);
    for (bool running = true; running;) {
      running = false;
      for (ContextTask<int>* t : {&t1, &t2, &t3}) {
        running |= t->resume();
        EXPECT_EQ(current_mode(), Mode::thread) << "the caller's mode while tasks are suspended";
        EXPECT_EQ(current_context(), nullptr);
      }
    }
    EXPECT_EQ(t1.result(), 3);
    EXPECT_EQ(t2.result(), 6);
    EXPECT_EQ(t3.result(), 9);
    EXPECT_EQ(c1->live_blocks(), 3u) << "its three blocks";
  }
  for (void* p : seen)
    deallocate(p);
  EXPECT_EQ(c1->live_blocks(), 0u);
  EXPECT_EQ(c2->live_blocks(), 0u);
}

ContextTask<void> thrower(Context&) {
  co_await std::suspend_always{};
  throw std::runtime_error("inside");
}

TEST(ContextTask, AnExceptionRestoresTheCallerAndReachesResult) {
  ContextPtr c = make(Lifetime::long_lived);
  ContextTask<void> t = thrower(*c);
  t.resume();
  t.resume();
  EXPECT_TRUE(t.done());
  EXPECT_EQ(current_context(), nullptr);
  EXPECT_THROW(t.result(), std::runtime_error);
}

// ----------------------------------------------------------------- randomized, misuse

/// A context seen as an Allocator: allocate through the context (spilling as it must),
/// free through the owner-routed deallocate, for the randomized driver.
class ContextAsAllocator {
 public:
  explicit ContextAsAllocator(Context& c) : c_(c) {}
  Block allocate(Layout l) noexcept { return c_.allocate(l); }
  Block allocate_zeroed(Layout l) noexcept {
    Block b = c_.allocate(l);
    if (b.ptr != nullptr && b.size != 0) std::memset(b.ptr, 0, b.size);
    return b;
  }
  void deallocate(Block b, std::size_t) noexcept { ctxalloc::deallocate(b.ptr); }
  Block grow(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }
  Block shrink(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }
  bool contains(const void* p) const noexcept { return SegmentMap::lookup(p) != nullptr; }
  CheckResult check_invariants() const { return c_.check_invariants(); }
  Stats stats() const noexcept {
    Stats s = c_.stats().local;
    s.allocations += c_.stats().spilled_live;
    s.peak_bytes = s.bytes_in_use;
    return s;
  }

 private:
  Block resize(Block b, Layout l, Move m) noexcept {
    if (m == Move::forbidden) return Block{};  // contexts resize through reallocate only
    void* p = ctxalloc::reallocate(b.ptr, l.size, l.align);
    return p == nullptr ? Block{} : Block{static_cast<std::byte*>(p), usable_size(p)};
  }
  Context& c_;
};

TEST(Context, RandomizedThroughSpillsAgainstTheReferenceModel) {
  for (Lifetime l : {Lifetime::medium, Lifetime::long_lived}) {
    ContextPtr c = make(l, 256 << 10);
    ContextAsAllocator a(*c);
    testing::DriverOptions opt;
    opt.ops = 200'000;
    opt.seed = testing::test_seed(0xC0 + static_cast<unsigned>(l));
    opt.max_size = 2048;
    opt.max_align = 256;
    opt.target_live = 400;  // more than 256 KiB at times: spills happen
    opt.exact_bytes = false;
    opt.exact_counts = false;
    testing::RandomDriver<ContextAsAllocator> driver(a, opt);
    ASSERT_TRUE(driver.run());
    EXPECT_GT(c->stats().spills, 0u);
    ASSERT_TRUE(driver.free_all());
    EXPECT_EQ(c->live_blocks(), 0u);
  }
}

TEST(Context, CheckInvariantsReportsACorruptedSpillList) {
  ContextPtr c = make(Lifetime::short_lived, 4096);
  ASSERT_TRUE(c->check_invariants());
  TestPeer<FixedContext>::miscount_spills(*c);
  EXPECT_FALSE(c->check_invariants());
  TestPeer<FixedContext>::miscount_spills(*c);  // 2: the list holds 0
  EXPECT_FALSE(c->check_invariants());
}

TEST(ContextMisuse, ReleaseWithLiveBlocksIsReported) {
  testing::expect_misuse(
      [] {
        Context* c = Context::create(Lifetime::long_lived, 8192);
        {
          ContextScope s(*c);
          (void)allocate(64);
        }
        c->release();
      },
      "context released with live blocks in context.release");
}

TEST(ContextMisuse, AFreeAfterReleaseIsReported) {
  testing::expect_misuse(
      [] {
        Context* c = Context::create(Lifetime::long_lived, 8192);
        void* p = nullptr;
        {
          ContextScope s(*c);
          p = allocate(64);
        }
        c->release_all();
        deallocate(p);
      },
      "use of a released context in context.deallocate");
}

TEST(ContextMisuse, BadSizesAreRefused) {
  testing::expect_misuse([] { EXPECT_EQ(Context::create(Lifetime::medium, 5000), nullptr); },
                         "bad argument in context.create");
  testing::expect_misuse(
      [] { EXPECT_EQ(Context::create(Lifetime::medium, std::size_t{8} << 20), nullptr); },
      "bad argument in context.create");
}

TEST(ContextMisuse, InstallingAContextOnAnotherThreadIsReportedInCheckedBuilds) {
  if (!CTXALLOC_CHECKS) GTEST_SKIP() << "checked builds only: release builds do not check";
  Context* c = Context::create(Lifetime::medium, 8192);
  testing::expect_misuse(
      [c] {
        std::thread t([c] { ContextScope s(*c); });
        t.join();
      },
      "use on the wrong thread in context.install");
  c->release_all();
}

}  // namespace
}  // namespace ctxalloc
