// Deterministic multi-threaded stress (docs/hardening.md): seeded op sequences per
// thread (CTXALLOC_TEST_SEED varies them; the interleaving is the scheduler's), with
// cross-thread frees through a shared hand-off and, for the switchable allocator, thread
// churn: every round starts fresh threads, so heaps are abandoned with blocks still out
// and adopted by later threads. Every block carries a payload derived from its address,
// size and seed, checked before it is freed; check_invariants() runs at the end. Also in
// the tsan variant (suite mt), scaled down.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/global_heap.h"
#include "ctxalloc/switchable/segment_source.h"
#include "ctxalloc/switchable/switchable.h"
#include "ctxalloc/switchable/thread_heap.h"
#include "support/test_scale.h"

namespace ctxalloc {
namespace {

struct Item {
  unsigned char* ptr;
  std::size_t size;
  std::uint64_t tag;
};

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 31;
  x *= 0x9E3779B97F4A7C15ULL;
  return x ^ (x >> 29);
}

// The payload: every 8th byte (and the last) from the tag and the offset, so that
// megabytes are written and checked cheaply but any overlap or stale reuse shows.
void fill(const Item& it) {
  for (std::size_t i = 0; i + 1 < it.size; i += 8)
    it.ptr[i] = static_cast<unsigned char>(mix(it.tag + i));
  it.ptr[it.size - 1] = static_cast<unsigned char>(it.tag);
}

bool intact(const Item& it) {
  for (std::size_t i = 0; i + 1 < it.size; i += 8) {
    if (it.ptr[i] != static_cast<unsigned char>(mix(it.tag + i))) return false;
  }
  return it.ptr[it.size - 1] == static_cast<unsigned char>(it.tag);
}

// Blocks handed from one thread to another, freed by whoever takes them.
class Handoff {
 public:
  void put(const Item& it) {
    std::lock_guard<std::mutex> g(m_);
    items_.push_back(it);
  }
  bool take(Item* out) {
    std::lock_guard<std::mutex> g(m_);
    if (items_.empty()) return false;
    *out = items_.back();
    items_.pop_back();
    return true;
  }

 private:
  std::mutex m_;
  std::vector<Item> items_;
};

// Log-uniform sizes to max, so small and large blocks both get exercised.
std::size_t random_size(std::mt19937_64& rng, std::size_t max) {
  const unsigned bits = 63U - static_cast<unsigned>(__builtin_clzll(max));
  const std::size_t hi = std::size_t{1} << (1 + rng() % bits);
  return 1 + rng() % (hi < max ? hi : max);
}

TEST(Stress, GlobalHeapWithCrossThreadFrees) {
  SegmentSource segs;
  GlobalHeap h(segs);
  Handoff handoff;
  std::atomic<std::uint64_t> corrupt{0}, failed{0};
  const std::uint64_t seed = testing::test_seed(0x57E55);
  const auto ops = static_cast<int>(testing::scaled(40'000, 2'000));
  auto worker = [&](unsigned id) {
    std::mt19937_64 rng(seed + id);
    std::vector<Item> mine;
    for (int i = 0; i < ops; ++i) {
      const unsigned op = rng() % 8;
      if (op < 4 || mine.empty()) {
        const std::size_t size = random_size(rng, op == 0 ? 300'000 : 4096);
        const std::size_t align = std::size_t{1} << (rng() % 8);
        Block b = h.allocate(Layout{size, align});
        if (b.ptr == nullptr) {
          ++failed;
          continue;
        }
        const Item it{reinterpret_cast<unsigned char*>(b.ptr), size, rng()};
        fill(it);
        (rng() % 3 == 0 ? handoff.put(it) : mine.push_back(it));
      } else {
        Item it;
        if (op < 6) {
          const std::size_t k = rng() % mine.size();
          it = mine[k];
          mine[k] = mine.back();
          mine.pop_back();
        } else if (!handoff.take(&it)) {
          continue;
        }
        if (!intact(it)) ++corrupt;
        h.deallocate(Block{reinterpret_cast<std::byte*>(it.ptr), rng() % 2 ? it.size : 0}, 1);
      }
    }
    for (const Item& it : mine) {
      if (!intact(it)) ++corrupt;
      h.deallocate(Block{reinterpret_cast<std::byte*>(it.ptr), 0}, 1);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t)
    threads.emplace_back(worker, t);
  for (auto& t : threads)
    t.join();
  Item it;
  while (handoff.take(&it)) {
    if (!intact(it)) ++corrupt;
    h.deallocate(Block{reinterpret_cast<std::byte*>(it.ptr), 0}, 1);
  }
  EXPECT_EQ(corrupt.load(), 0u) << "payloads changed while live";
  EXPECT_EQ(failed.load(), 0u) << "the heap grows from segments: no request may fail";
  EXPECT_EQ(h.stats().bytes_in_use, 0u);
  EXPECT_TRUE(h.check_invariants());
}

// Rounds of fresh threads in thread, global or context mode; blocks handed between
// threads outlive the thread that allocated them (its heap is abandoned, then adopted).
TEST(Stress, SwitchableWithThreadChurnAndCrossThreadFrees) {
  Handoff handoff;
  std::atomic<std::uint64_t> corrupt{0}, failed{0};
  const std::uint64_t seed = testing::test_seed(0xC4A5);
  const auto ops = static_cast<int>(testing::scaled(10'000, 500));
  const int rounds = 6;
  auto worker = [&](unsigned id) {
    std::mt19937_64 rng(seed + id);
    const unsigned mode = id % 3;  // 0 thread, 1 global, 2 context (and thread heap)
    set_mode(mode == 1 ? Mode::global : Mode::thread);
    Context* ctx = mode == 2 ? Context::create(Lifetime::long_lived, 1 << 16) : nullptr;
    std::vector<Item> mine;
    std::vector<Item> in_ctx;  // context blocks stay with their thread
    for (int i = 0; i < ops; ++i) {
      const unsigned op = rng() % 8;
      if (ctx != nullptr && op == 7) {
        ContextScope s(*ctx);
        const std::size_t size = random_size(rng, 2048);
        auto* p = static_cast<unsigned char*>(allocate(size, 16));
        if (p == nullptr) {
          ++failed;
          continue;
        }
        const Item it{p, size, rng()};
        fill(it);
        in_ctx.push_back(it);
        if (in_ctx.size() > 64) {
          if (!intact(in_ctx.front())) ++corrupt;
          deallocate(in_ctx.front().ptr);
          in_ctx.erase(in_ctx.begin());
        }
      } else if (op < 4 || mine.empty()) {
        const std::size_t size = random_size(rng, op == 0 ? 100'000 : 2048);
        auto* p = static_cast<unsigned char*>(allocate(size, std::size_t{1} << (rng() % 7)));
        if (p == nullptr) {
          ++failed;
          continue;
        }
        const Item it{p, size, rng()};
        fill(it);
        (rng() % 2 == 0 ? handoff.put(it) : mine.push_back(it));
      } else if (op == 4) {  // realloc one of ours
        const std::size_t k = rng() % mine.size();
        Item& it = mine[k];
        if (!intact(it)) ++corrupt;
        const std::size_t size = random_size(rng, 4096);
        auto* p = static_cast<unsigned char*>(reallocate(it.ptr, size, 1));
        if (p == nullptr) {
          ++failed;
          continue;
        }
        const std::size_t kept = size < it.size ? size : it.size;
        for (std::size_t j = 0; j + 1 < kept; j += 8) {
          if (p[j] != static_cast<unsigned char>(mix(it.tag + j))) ++corrupt;
        }
        it = Item{p, size, rng()};
        fill(it);
      } else {
        Item it;
        if (op < 6) {
          const std::size_t k = rng() % mine.size();
          it = mine[k];
          mine[k] = mine.back();
          mine.pop_back();
        } else if (!handoff.take(&it)) {
          continue;
        }
        if (!intact(it)) ++corrupt;
        if (rng() % 2 == 0) {
          deallocate(it.ptr);
        } else {
          deallocate(it.ptr, it.size);
        }
      }
    }
    // Half of what is left goes to later threads: it outlives this thread and its heap.
    for (const Item& it : mine) {
      if (rng() % 2 == 0) {
        handoff.put(it);
      } else {
        if (!intact(it)) ++corrupt;
        deallocate(it.ptr);
      }
    }
    for (const Item& it : in_ctx) {
      if (!intact(it)) ++corrupt;
      deallocate(it.ptr);
    }
    if (ctx != nullptr) ctx->release();
    flush();
  };
  for (int r = 0; r < rounds; ++r) {
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 3; ++t)
      threads.emplace_back(worker, static_cast<unsigned>(r * 3) + t);
    for (auto& t : threads)
      t.join();
  }
  Item it;
  while (handoff.take(&it)) {
    if (!intact(it)) ++corrupt;
    deallocate(it.ptr);
  }
  flush();
  EXPECT_EQ(corrupt.load(), 0u) << "payloads changed while live";
  EXPECT_EQ(failed.load(), 0u);
  ThreadHeap* h = current_thread_heap();
  ASSERT_NE(h, nullptr);
  EXPECT_TRUE(h->check_invariants());
}

}  // namespace
}  // namespace ctxalloc
