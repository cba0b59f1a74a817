// Every reallocate path honours the alignment it is given (issue 19, item 1): grow,
// shrink, same size, in place or moving, in every mode and tier -- the global heap's tree
// and mappings, the thread heap's size classes, tree and large blocks, each context kind
// -- and for every alignment from 1 to 1 MiB, larger or smaller than the block's own. The
// bug: in global mode allocate(64 KiB) then reallocate(p, 100, 4096) kept the block where
// it was, aligned to whatever the tree had given it. The contents must survive too.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

unsigned char pattern(std::size_t i) {
  return static_cast<unsigned char>(i * 131 + 7);
}

bool aligned(const void* p, std::size_t a) {
  return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

// allocate(from, 16), fill it, reallocate(to, align): aligned, contents kept, freed.
// Returns "" or what went wrong.
std::string one(std::size_t from, std::size_t to, std::size_t align) {
  auto* p = static_cast<unsigned char*>(allocate(from, 16));
  if (p == nullptr) return "allocate failed";
  for (std::size_t i = 0; i < from; ++i)
    p[i] = pattern(i);
  auto* q = static_cast<unsigned char*>(reallocate(p, to, align));
  if (q == nullptr) {
    deallocate(p);
    return "reallocate failed";
  }
  std::string err;
  if (!aligned(q, align)) err = "not aligned";
  const std::size_t kept = from < to ? from : to;
  for (std::size_t i = 0; i < kept && err.empty(); ++i)
    if (q[i] != pattern(i)) err = "contents lost at " + std::to_string(i);
  if (err.empty() && usable_size(q) < to) err = "usable size below the size asked";
  deallocate(q);
  return err;
}

// Sizes on each side of every tier boundary (size classes, trees, mappings).
constexpr std::size_t kSizes[] = {24, 100, 4096, 64 << 10, 300 << 10, kMiB + 1, 3 * kMiB};

void run_matrix(const char* where, std::size_t max_size) {
  for (std::size_t from : kSizes) {
    if (from > max_size) continue;
    for (std::size_t to : kSizes) {
      if (to > max_size) continue;
      for (std::size_t align = 1; align <= kMiB; align <<= 1) {
        const std::string e = one(from, to, align);
        EXPECT_EQ(e, "") << where << ": reallocate(" << from << " -> " << to << ", align " << align
                         << ")";
      }
    }
  }
}

TEST(ReallocateAlignment, TheReportedCase) {
  ModeScope s(Mode::global);
  void* p = allocate(64 << 10);
  ASSERT_NE(p, nullptr);
  void* q = reallocate(p, 100, 4096);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(aligned(q, 4096)) << q;
  deallocate(q);
}

TEST(ReallocateAlignment, GlobalMode) {
  const std::uint64_t misuses = misuse_count();
  ModeScope s(Mode::global);
  run_matrix("global mode", SIZE_MAX);
  EXPECT_EQ(misuse_count(), misuses) << "a moved block is not a misuse";
  EXPECT_TRUE(current_global_heap().check_invariants());
}

TEST(ReallocateAlignment, ThreadMode) {
  const std::uint64_t misuses = misuse_count();
  ModeScope s(Mode::thread);
  run_matrix("thread mode", SIZE_MAX);
  EXPECT_EQ(misuse_count(), misuses);
  ASSERT_NE(current_thread_heap(), nullptr);
  EXPECT_TRUE(current_thread_heap()->check_invariants());
}

// A context serves what it holds and spills the rest to its thread heap, whose spill
// tree takes blocks up to 1 MiB with their header and alignment padding
// (docs/switchable.md): sizes and alignments that fit it, in each kind.
TEST(ReallocateAlignment, EachContextKind) {
  const std::uint64_t misuses = misuse_count();
  for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived}) {
    Context* c = Context::create(l, 256 << 10);
    ASSERT_NE(c, nullptr);
    {
      ContextScope s(*c);
      for (std::size_t from : kSizes) {
        for (std::size_t to : kSizes) {
          for (std::size_t align = 1; align <= 256 << 10; align <<= 1) {
            if (from + 2 * align + 64 > kMiB || to + 2 * align + 64 > kMiB) continue;
            EXPECT_EQ(one(from, to, align), "")
                << to_string(c->kind()) << " context: reallocate(" << from << " -> " << to
                << ", align " << align << ")";
          }
        }
      }
    }
    const ContextStats st = c->stats();
    EXPECT_EQ(st.local.bytes_in_use, 0u) << to_string(c->kind());
    EXPECT_EQ(st.spilled_live, 0u) << to_string(c->kind());
    EXPECT_TRUE(c->check_invariants());
    c->release();
  }
  EXPECT_EQ(misuse_count(), misuses);
}

// A growing (flow) context serves blocks below its large_block from its chunks and larger
// ones as large blocks of the spill tree (also at most 1 MiB with header and padding):
// the same matrix, in a root and in a child, with the thread's default pool options.
TEST(ReallocateAlignment, GrowingContextsRootAndChild) {
  const std::uint64_t misuses = misuse_count();
  FlowChunks& pool = current_thread_heap()->flow_chunks();
  const std::uint64_t chunk_bytes = pool.figures().chunk_bytes;
  Context* root = Context::create_growing();
  ASSERT_NE(root, nullptr);
  GrowingContext* child = root->as_growing().create_child();
  ASSERT_NE(child, nullptr);
  for (GrowingContext* g : {&root->as_growing(), child}) {
    const char* which = g == child ? "growing child" : "growing root";
    {
      ContextScope s(*g);
      for (std::size_t from : kSizes) {
        for (std::size_t to : kSizes) {
          for (std::size_t align = 1; align <= 256 << 10; align <<= 1) {
            if (from + 2 * align + 64 > kMiB || to + 2 * align + 64 > kMiB) continue;
            EXPECT_EQ(one(from, to, align), "")
                << which << ": reallocate(" << from << " -> " << to << ", align " << align << ")";
          }
        }
      }
    }
    EXPECT_EQ(g->live_blocks(), 0u) << which;
    EXPECT_TRUE(g->check_invariants()) << which;
  }
  root->release();
  EXPECT_EQ(pool.figures().contexts_live, 0u);
  EXPECT_EQ(pool.figures().chunk_bytes, chunk_bytes);
  EXPECT_TRUE(pool.check_invariants());
  EXPECT_EQ(misuse_count(), misuses);
}

}  // namespace
}  // namespace ctxalloc
