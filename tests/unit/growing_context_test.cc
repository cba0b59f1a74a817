// Growing (flow) contexts: chunks, free lists, large blocks, budget, children, reset and
// release, checked against the reference model; frees by address from any thread.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/owner.h"
#include "ctxalloc/switchable/segment_source.h"
#include "support/misuse_test_helpers.h"
#include "support/reference_model.h"
#include "support/test_scale.h"

namespace ctxalloc {
namespace {

FlowChunks& pool() {
  return current_thread_heap()->flow_chunks();
}

// Sets the calling thread's pool options for one test and puts the defaults back.
class Options {
 public:
  explicit Options(const GrowingOptions& o) { EXPECT_TRUE(pool().set_options(o)); }
  ~Options() {
    EXPECT_EQ(pool().figures().contexts_live, 0u);
    pool().set_options(GrowingOptions{});
    pool().set_context_limit(0);
  }
};

GrowingContext* make() {
  Context* c = Context::create_growing();
  EXPECT_NE(c, nullptr);
  EXPECT_TRUE(c->growing());
  return &c->as_growing();
}

std::uint64_t refusals(Refusal r) {
  return pool().figures().refusals[static_cast<unsigned>(r)];
}

TEST(GrowingContext, StartsInOneSmallChunkAndServesInsideIt) {
  Options opt(GrowingOptions{.first_chunk = 512});
  const std::uint64_t before = pool().figures().chunk_bytes;
  GrowingContext* g = make();
  EXPECT_EQ(g->held(), 512u);
  EXPECT_EQ(g->chunk_count(), 1u);
  EXPECT_EQ(pool().figures().chunk_bytes, before + 512);
  void* p = g->allocate(Layout{100, 8}).ptr;
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(SegmentMap::lookup(p)->kind, owner_kind::flow_chunk);
  EXPECT_EQ(Context::of(p, SegmentMap::lookup(p)), g);
  EXPECT_EQ(usable_size(p), 104u);
  EXPECT_EQ(g->live_blocks(), 1u);
  EXPECT_EQ(g->live_bytes(), 104u);
  EXPECT_TRUE(g->check_invariants());
  deallocate(p);  // free(p): the owner from the address alone
  EXPECT_EQ(g->live_blocks(), 0u);
  EXPECT_TRUE(g->check_invariants());
  g->release();
  EXPECT_EQ(pool().figures().chunk_bytes, before);
  EXPECT_TRUE(pool().check_invariants());
}

TEST(GrowingContext, GrowsByChainedChunksUpToTheMaximumAndReleaseReturnsThemAll) {
  Options opt(GrowingOptions{.first_chunk = 256, .max_chunk = 4096, .large_block = 2048});
  const std::uint64_t before = pool().figures().chunk_bytes;
  GrowingContext* g = make();
  std::vector<void*> blocks;
  for (int i = 0; i < 400; ++i) {
    void* p = g->allocate(Layout{200, 8}).ptr;
    ASSERT_NE(p, nullptr) << i;
    std::memset(p, i & 0xff, 200);
    blocks.push_back(p);
  }
  EXPECT_GT(g->chunk_count(), 10u);
  // Geometric: no chunk above max_chunk, and what it holds stays near what it uses.
  EXPECT_LE(g->held(), 2 * 400u * 208u);
  EXPECT_TRUE(g->check_invariants());
  for (std::size_t i = 0; i < blocks.size(); ++i)
    EXPECT_EQ(static_cast<unsigned char*>(blocks[i])[199], i & 0xff);
  g->release();  // no per-block frees
  EXPECT_EQ(pool().figures().chunk_bytes, before);
  EXPECT_TRUE(pool().check_invariants());
}

TEST(GrowingContext, LargeRequestsAreSeparateBlocksFreedWithTheContext) {
  Options opt(GrowingOptions{.large_block = 1024});
  const std::uint64_t large_before = pool().figures().large_bytes;
  GrowingContext* g = make();
  void* big = g->allocate(Layout{5000, 8}).ptr;
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(SegmentMap::lookup(big)->kind, owner_kind::spill);
  EXPECT_GE(usable_size(big), 5000u);
  EXPECT_GT(pool().figures().large_bytes, large_before);
  void* big2 = g->allocate(Layout{3000, 64}).ptr;
  ASSERT_NE(big2, nullptr);
  EXPECT_TRUE(is_aligned(big2, 64));
  deallocate(big2);
  EXPECT_EQ(g->live_blocks(), 1u);
  EXPECT_TRUE(g->check_invariants());
  g->release();  // takes big with it
  EXPECT_EQ(pool().figures().large_bytes, large_before);
}

TEST(GrowingContext, LargeBlocksDoNotMakeTheNextChunksLarger) {
  Options opt(GrowingOptions{});  // 1 KiB first chunk, large blocks from 4 KiB
  GrowingContext* g = make();
  const Block big = g->allocate(Layout{16384, 8});
  ASSERT_NE(big.ptr, nullptr);
  const std::size_t with_large = g->held();
  EXPECT_GE(with_large, 1024u + 16384u);
  // Records until a second chunk is chained: it is sized from the 1 KiB of chunks held
  // (about half of it), not from the 17 KiB the context holds with its large block.
  while (g->chunk_count() == 1)
    ASSERT_NE(g->allocate(Layout{300, 8}).ptr, nullptr);
  EXPECT_LE(g->held() - with_large, 1024u);
  EXPECT_TRUE(g->check_invariants()) << g->check_invariants().error();
  deallocate(big.ptr);
  EXPECT_TRUE(g->check_invariants()) << g->check_invariants().error();
  g->release();
}

TEST(GrowingContext, FreedBlocksAreReusedSoARollingWindowRunsInConstantMemory) {
  Options opt(GrowingOptions{.first_chunk = 1024, .max_chunk = 16384});
  GrowingContext* g = make();
  std::mt19937_64 rng(7);
  std::vector<void*> window;
  std::size_t held_after_warmup = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::size_t n = 16 + rng() % 600;  // deque nodes, segments, headers
    void* p = g->allocate(Layout{n, 8}).ptr;
    ASSERT_NE(p, nullptr);
    window.push_back(p);
    if (window.size() > 32) {
      deallocate(window.front());
      window.erase(window.begin());
    }
    if (i == 2000) held_after_warmup = g->held();
  }
  EXPECT_TRUE(g->check_invariants());
  // Splitting and the class rounding settle: nothing grows once the window is warm.
  EXPECT_LE(g->held(), held_after_warmup + 16384) << "grew from " << held_after_warmup;
  EXPECT_LE(g->held(), 64u << 10);
  for (void* p : window)
    deallocate(p);
  g->release();
}

TEST(GrowingContext, DefaultAlignmentRequestsAreAlignedAndReuseFreedBlocks) {
  // allocate()'s default alignment (16) through the current context, sizes on both
  // sides of 128 B: every block 16-aligned, a rolling window in constant memory.
  Options opt(GrowingOptions{.first_chunk = 1024, .max_chunk = 16384});
  Context* c = Context::create_growing();
  ASSERT_NE(c, nullptr);
  GrowingContext* g = &c->as_growing();
  std::mt19937_64 rng(11);
  std::vector<void*> window;
  std::size_t held_after_warmup = 0;
  {
    ContextScope s(*c);
    for (int i = 0; i < 20000; ++i) {
      const std::size_t n = 1 + rng() % 1000;
      void* p = allocate(n);
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(is_aligned(p, kDefaultAlign)) << p << " for " << n;
      ASSERT_GE(usable_size(p), n);
      std::memset(p, 0x3c, n);
      window.push_back(p);
      if (window.size() > 24) {
        const std::size_t k = rng() % window.size();  // not only the oldest
        deallocate(window[k]);
        window.erase(window.begin() + static_cast<std::ptrdiff_t>(k));
      }
      if (i == 2000) held_after_warmup = g->held();
      if (i % 997 == 0) {
        ASSERT_TRUE(g->check_invariants());
      }
    }
  }
  EXPECT_TRUE(g->check_invariants());
  EXPECT_LE(g->held(), held_after_warmup + 16384) << "grew from " << held_after_warmup;
  EXPECT_LE(g->held(), 64u << 10);
  for (void* p : window)
    deallocate(p);
  EXPECT_EQ(g->live_blocks(), 0u);
  // Size 0 at either alignment: a small block (the slow path), not a wrapped class.
  for (std::size_t align : {std::size_t{8}, std::size_t{16}}) {
    const Block z = g->allocate(Layout{0, align});
    ASSERT_NE(z.ptr, nullptr);
    EXPECT_LE(z.size, 16u);
    EXPECT_TRUE(is_aligned(z.ptr, align));
    g->free(z.ptr, 0);
  }
  EXPECT_TRUE(g->check_invariants());
  c->release_all();
}

TEST(GrowingContext, TheMostRecentBlockIsFreedInPlaceAndGrowsInPlace) {
  Options opt(GrowingOptions{});
  GrowingContext* g = make();
  Block a = g->allocate(Layout{64, 8});
  void* b = g->allocate(Layout{64, 8}).ptr;
  g->free(b, 64);
  void* c = g->allocate(Layout{64, 8}).ptr;
  EXPECT_EQ(b, c) << "LIFO: the bump pointer went back";
  // Growing the newest block stays in place; growing an older one moves it.
  std::memset(c, 0x5a, 64);
  Block c2 = g->resize(c, Layout{200, 8}, Move::forbidden);
  EXPECT_EQ(c2.ptr, c);
  EXPECT_EQ(static_cast<unsigned char*>(c)[63], 0x5a);
  EXPECT_FALSE(g->resize(a.ptr, Layout{500, 8}, Move::forbidden));
  void* moved = reallocate(a.ptr, 500);
  ASSERT_NE(moved, nullptr);
  EXPECT_NE(moved, a.ptr);
  EXPECT_EQ(Context::of(moved, SegmentMap::lookup(moved)), g);
  EXPECT_TRUE(g->check_invariants());
  g->release_all();
}

TEST(GrowingContext, ResetKeepsTheFirstChunkOnly) {
  Options opt(GrowingOptions{.first_chunk = 512, .large_block = 1024});
  GrowingContext* g = make();
  for (int i = 0; i < 100; ++i)
    ASSERT_NE(g->allocate(Layout{100, 8}).ptr, nullptr);
  ASSERT_NE(g->allocate(Layout{4000, 8}).ptr, nullptr);
  GrowingContext* child = g->create_child();
  ASSERT_NE(child, nullptr);
  ASSERT_NE(child->allocate(Layout{50, 8}).ptr, nullptr);
  EXPECT_GT(g->chunk_count(), 1u);
  g->reset();
  EXPECT_EQ(g->chunk_count(), 1u);
  EXPECT_EQ(g->held(), 512u);
  EXPECT_EQ(g->live_blocks(), 0u);
  EXPECT_TRUE(g->check_invariants());
  void* p = g->allocate(Layout{100, 8}).ptr;
  ASSERT_NE(p, nullptr);
  EXPECT_LT(static_cast<std::byte*>(p), reinterpret_cast<std::byte*>(g) + 512);
  g->release();
}

TEST(GrowingContext, ChildrenNestCountAgainstTheRootBudgetAndGoWithTheirParent) {
  Options opt(GrowingOptions{.first_chunk = 512, .child_chunk = 256, .budget = 8192});
  const std::uint64_t before = pool().figures().chunk_bytes;
  GrowingContext* g = make();
  GrowingContext* a = g->create_child();
  ASSERT_NE(a, nullptr);
  GrowingContext* aa = a->create_child();  // a grandchild
  ASSERT_NE(aa, nullptr);
  EXPECT_EQ(aa->parent(), a);
  void* p = aa->allocate(Layout{1000, 8}).ptr;
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(Context::of(p, SegmentMap::lookup(p)), aa);
  EXPECT_TRUE(g->check_invariants());
  // The budget is the root's: a child may not take what the flow may not.
  const std::uint64_t refused = refusals(Refusal::budget);
  int served = 0;
  while (a->allocate(Layout{300, 8}).ptr != nullptr)
    ++served;
  EXPECT_GT(served, 0);
  EXPECT_GT(refusals(Refusal::budget), refused);
  EXPECT_TRUE(g->check_invariants());
  a->release();  // aa with it
  EXPECT_TRUE(g->check_invariants());
  GrowingContext* b = g->create_child();
  ASSERT_NE(b, nullptr);
  g->release();  // b with it
  EXPECT_EQ(pool().figures().chunk_bytes, before);
  EXPECT_TRUE(pool().check_invariants());
}

TEST(GrowingContext, ABudgetRefusesAndTakesNothingFromOthers) {
  Options opt(GrowingOptions{.first_chunk = 1024, .large_block = 2048, .budget = 4096});
  GrowingContext* g = make();
  GrowingContext* other = make();
  const std::uint64_t refused = refusals(Refusal::budget);
  std::size_t asked = 0;
  while (g->allocate(Layout{100, 8}).ptr != nullptr)
    asked += 100;
  EXPECT_GT(asked, 2000u);
  EXPECT_LE(g->held(), 4096u);
  EXPECT_FALSE(g->allocate(Layout{3000, 8})) << "a large block past the budget";
  EXPECT_GE(refusals(Refusal::budget), refused + 2);
  EXPECT_NE(other->allocate(Layout{100, 8}).ptr, nullptr);
  EXPECT_TRUE(g->check_invariants());
  g->release_all();
  other->release_all();
}

TEST(GrowingContext, ThePoolsContextLimitRefusesCounted) {
  Options opt(GrowingOptions{});
  pool().set_context_limit(2);
  const std::uint64_t refused = refusals(Refusal::limit);
  GrowingContext* a = make();
  GrowingContext* b = make();
  EXPECT_EQ(Context::create_growing(), nullptr);
  EXPECT_EQ(refusals(Refusal::limit), refused + 1);
  a->release();
  GrowingContext* c = make();
  c->release();
  b->release();
}

// The inline create checks the limit and the peak with one compare (create_is_plain);
// the counts stay exact across it and the slow path, also when the memory tools send
// every create and release through the slow paths.
void expect_exact_limit_and_peak() {
  const std::uint64_t peak0 = pool().figures().peak_contexts;
  const std::uint64_t made0 = pool().figures().contexts_made;
  std::vector<GrowingContext*> gs;
  for (std::uint64_t i = 0; i < peak0 + 5; ++i)
    gs.push_back(make());
  EXPECT_EQ(pool().figures().peak_contexts, peak0 + 5);
  for (int i = 0; i < 3; ++i) {
    gs.back()->release();
    gs.pop_back();
  }
  for (int i = 0; i < 3; ++i)
    gs.push_back(make());  // up to the peak: the inline path
  EXPECT_EQ(pool().figures().peak_contexts, peak0 + 5);
  gs.push_back(make());  // a new peak: the slow path
  EXPECT_EQ(pool().figures().peak_contexts, peak0 + 6);
  pool().set_context_limit(gs.size());
  const std::uint64_t refused = refusals(Refusal::limit);
  EXPECT_EQ(Context::create_growing(), nullptr);
  EXPECT_EQ(refusals(Refusal::limit), refused + 1);
  gs.back()->release();
  gs.pop_back();
  gs.push_back(make());  // at the limit again, below the peak
  EXPECT_EQ(Context::create_growing(), nullptr);
  EXPECT_EQ(refusals(Refusal::limit), refused + 2);
  pool().set_context_limit(0);
  EXPECT_EQ(pool().figures().contexts_live, gs.size());
  EXPECT_EQ(pool().figures().contexts_made, made0 + peak0 + 5 + 3 + 1 + 1);
  EXPECT_EQ(pool().figures().peak_contexts, peak0 + 6);
  for (GrowingContext* g : gs) {
    EXPECT_TRUE(g->check_invariants());
    g->release();
  }
  EXPECT_TRUE(pool().check_invariants());
}

TEST(GrowingContext, LimitAndPeakAreExactOnTheInlineAndSlowCreate) {
  Options opt(GrowingOptions{});
  expect_exact_limit_and_peak();
}

TEST(GrowingContext, UnderTheMemoryToolsEveryCreateAndReleaseTakesTheSlowPath) {
  detail::set_pool_slow_paths_for_testing(true);
  {
    Options opt(GrowingOptions{});  // the options are set (tools() read) with it on
    EXPECT_TRUE(pool().tools());
    GrowingContext* g = make();
    void* p = g->allocate(Layout{32, 8}).ptr;
    ASSERT_NE(p, nullptr);
    deallocate(p);
    g->release();
    expect_exact_limit_and_peak();
  }
  detail::set_pool_slow_paths_for_testing(false);
  EXPECT_TRUE(pool().set_options(GrowingOptions{}));
  EXPECT_FALSE(pool().tools());
}

TEST(FlowChunks, EmptySegmentsAreKeptAsSparesUpToTheSetCountAndTrimGivesThemBack) {
  Options opt(GrowingOptions{.first_chunk = 4096});
  pool().trim();
  // 4 KiB first chunks: a 4 MiB segment holds 1023 of them (page 0 keeps its record).
  constexpr int kFlows = 3 * 1023;
  const auto run = [](std::vector<GrowingContext*>& gs) {
    for (auto*& g : gs)
      g = make();
    EXPECT_EQ(pool().figures().segments[0], 3u);
    for (auto* g : gs)
      g->release();
  };
  std::vector<GrowingContext*> gs(kFlows);
  run(gs);
  // The default: one spare kept, and the segment of the one empty page the size keeps.
  EXPECT_LE(pool().figures().segments[0], 2u);
  pool().set_spare_segments(8);
  run(gs);
  EXPECT_EQ(pool().figures().segments[0], 3u);  // all three kept, warm
  EXPECT_TRUE(pool().check_invariants());
  // Served from the spares: nothing more taken from the source.
  const std::size_t out = pool().source(FlowChunks::Use::first)->bytes_out();
  for (auto*& g : gs)
    g = make();
  EXPECT_EQ(pool().source(FlowChunks::Use::first)->bytes_out(), out);
  for (auto* g : gs)
    g->release();
  pool().trim();
  EXPECT_EQ(pool().figures().segments[0], 0u);
  pool().set_spare_segments(1);
  EXPECT_TRUE(pool().check_invariants());
}

TEST(GrowingContext, BlocksFreedOnAnotherThreadGoBackToTheOwner) {
  Options opt(GrowingOptions{.large_block = 2048});
  GrowingContext* g = make();
  std::vector<void*> blocks;
  for (int i = 0; i < 300; ++i)
    blocks.push_back(g->allocate(Layout{static_cast<std::size_t>(8 + i * 13), 8}).ptr);
  for (void* p : blocks)
    ASSERT_NE(p, nullptr);
  std::thread other([&] {
    for (void* p : blocks) {
      EXPECT_GE(usable_size(p), 8u);  // from any thread
      deallocate(p);
    }
    flush();
  });
  other.join();
  EXPECT_EQ(g->live_blocks(), 300u) << "not applied until the owner drains";
  flush();
  EXPECT_EQ(g->live_blocks(), 0u);
  EXPECT_TRUE(g->check_invariants());
  g->release();
}

TEST(GrowingContext, ACurrentGrowingContextServesTheSwitchableAllocator) {
  Options opt(GrowingOptions{});
  Context* c = Context::create_growing();
  ASSERT_NE(c, nullptr);
  {
    ContextScope s(*c);
    void* p = allocate(40);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(Context::of(p, SegmentMap::lookup(p)), c);
    EXPECT_EQ(c->live_blocks(), 1u);
  }
  EXPECT_EQ(c->kind(), ContextKind::growing);
  c->release_all();
}

TEST(GrowingContextMisuse, DoubleFreeAndFreeAfterReleaseAreReported) {
  Options opt(GrowingOptions{});
  testing::expect_misuse(
      [] {
        GrowingContext* g = make();
        void* p = g->allocate(Layout{32, 8}).ptr;
        (void)g->allocate(Layout{32, 8});  // p is not the newest: it goes to a free list
        deallocate(p);
        deallocate(p);
        g->release_all();
      },
      "double free in growing_context.deallocate");
  // The newest block, freed in place (back to the bump), then again: by address and
  // through the context.
  testing::expect_misuse(
      [] {
        GrowingContext* g = make();
        (void)g->allocate(Layout{32, 8});
        void* p = g->allocate(Layout{200, 16}).ptr;
        deallocate(p);
        deallocate(p);
        EXPECT_TRUE(g->check_invariants());
        g->release_all();
      },
      "double free in growing_context.deallocate");
  testing::expect_misuse(
      [] {
        GrowingContext* g = make();
        void* p = g->allocate(Layout{48, 8}).ptr;
        g->free(p, 48);
        g->free(p, 48);
        EXPECT_TRUE(g->check_invariants());
        g->release_all();
      },
      "double free in growing_context.deallocate");
  testing::expect_misuse(
      [] {
        GrowingContext* g = make();
        void* p = g->allocate(Layout{32, 8}).ptr;
        g->release_all();
        deallocate(p);
      },
      "use of a released context in context.deallocate");
}

TEST(GrowingOptions, InvalidShapesAreRefused) {
  EXPECT_EQ(GrowingOptions{}.invalid(), nullptr);
  EXPECT_NE(GrowingOptions{.first_chunk = 300}.invalid(), nullptr);
  EXPECT_NE((GrowingOptions{.first_chunk = 1024, .max_chunk = 512}).invalid(), nullptr);
  EXPECT_NE(GrowingOptions{.large_block = 16384}.invalid(), nullptr);
  EXPECT_FALSE(pool().set_options(GrowingOptions{.first_chunk = 100}));
}

// ------------------------------------------------------------------ randomized

// Random allocate / free / resize / child / reset / release sequences over a few root
// contexts and their children, every block in the reference model (payload checked on
// free and resize), check_invariants of each context and of the pool as it goes.
TEST(GrowingContextRandom, AgreesWithTheReferenceModel) {
  Options opt(GrowingOptions{.first_chunk = 512,
                             .max_chunk = 8192,
                             .child_chunk = 256,
                             .large_block = 2048,
                             .budget = 256 << 10});
  struct Ctx {
    GrowingContext* g;
    int parent;  // index, -1 for a root
    testing::ReferenceModel model;
    bool live;
  };
  std::vector<Ctx> cs;
  std::mt19937_64 rng(20261207);
  const auto pick_live = [&]() -> int {
    std::vector<int> live;
    for (int i = 0; i < static_cast<int>(cs.size()); ++i)
      if (cs[i].live) live.push_back(i);
    return live.empty() ? -1 : live[rng() % live.size()];
  };
  // Everything of context i and its descendants is gone (release) or cleared (reset).
  std::function<void(int, bool)> forget = [&](int i, bool self_too) {
    for (int j = 0; j < static_cast<int>(cs.size()); ++j)
      if (cs[j].live && cs[j].parent == i) forget(j, true);
    cs[i].model = testing::ReferenceModel{};
    if (self_too) cs[i].live = false;
  };
  const std::uint64_t ops = testing::scaled(60000);
  for (std::uint64_t step = 0; step < ops; ++step) {
    int i = pick_live();
    const unsigned op = static_cast<unsigned>(rng() % 100);
    if (i < 0 || (op < 2 && cs.size() < 64)) {  // a new root
      Context* c = Context::create_growing();
      ASSERT_NE(c, nullptr);
      cs.push_back(Ctx{&c->as_growing(), -1, {}, true});
      continue;
    }
    Ctx& c = cs[i];
    if (op < 60) {  // allocate: mostly small, some medium, a few large
      const unsigned r = static_cast<unsigned>(rng() % 100);
      const std::size_t n = r < 80   ? 1 + rng() % 128
                            : r < 97 ? 129 + rng() % 1500
                                     : 2048 + rng() % 6000;
      const std::size_t align = rng() % 10 == 0 ? std::size_t{16} << (rng() % 4) : 8;
      const Block b = c.g->allocate(Layout{n, align});
      if (b.ptr == nullptr) {
        ASSERT_GT(refusals(Refusal::budget), 0u) << "only the budget refuses here";
        continue;
      }
      ASSERT_EQ(c.model.add(b.ptr, n, b.size, align), "");
      ASSERT_EQ(usable_size(b.ptr), b.size);
    } else if (op < 85) {  // free, by address (switchable) or through the context
      if (c.model.empty()) continue;
      const testing::LiveBlock lb = c.model.nth(rng() % c.model.count());
      ASSERT_EQ(c.model.remove(lb.ptr), "");
      if (rng() & 1) {
        deallocate(lb.ptr);
      } else {
        c.g->free(lb.ptr, lb.requested);
      }
    } else if (op < 93) {  // resize
      if (c.model.empty()) continue;
      const testing::LiveBlock lb = c.model.nth(rng() % c.model.count());
      const std::size_t n = 1 + rng() % (rng() % 4 == 0 ? 4000 : 300);
      const Block b = c.g->resize(lb.ptr, Layout{n, lb.align}, Move::allowed);
      if (b.ptr == nullptr) continue;  // refused by the budget: intact
      ASSERT_EQ(c.model.resize(lb.ptr, b.ptr, n, b.size), "");
    } else if (op < 96) {  // a child
      GrowingContext* ch = c.g->create_child();
      if (ch != nullptr) cs.push_back(Ctx{ch, i, {}, true});
    } else if (op < 98) {  // reset (children go)
      ASSERT_EQ(c.model.verify_all(), "");
      forget(i, false);
      c.g->reset();
    } else {  // release (children go)
      ASSERT_EQ(c.model.verify_all(), "");
      GrowingContext* g = c.g;
      forget(i, true);
      g->release();
    }
    if (step % 997 == 0) {
      for (Ctx& x : cs) {
        if (!x.live) continue;
        ASSERT_TRUE(x.g->check_invariants()) << x.g->check_invariants().error();
        ASSERT_EQ(x.model.verify_all(), "");
        // live_blocks() counts its children's too.
        if (x.g->live_blocks() < x.model.count()) FAIL() << "live blocks undercounted";
      }
      ASSERT_TRUE(pool().check_invariants()) << pool().check_invariants().error();
    }
  }
  for (Ctx& x : cs) {
    if (x.live && x.parent < 0) {
      ASSERT_EQ(x.model.verify_all(), "");
      x.g->release_all();
      forget(static_cast<int>(&x - cs.data()), true);
    }
  }
  EXPECT_EQ(pool().figures().contexts_live, 0u);
  EXPECT_TRUE(pool().check_invariants());
  pool().trim();
}

}  // namespace
}  // namespace ctxalloc
