#include "ctxalloc/switchable/switchable.h"
#include "ctxalloc/switchable/owner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/misuse_test_helpers.h"
#include "support/test_scale.h"

namespace ctxalloc {
namespace {

OwnerKind kind_of(const void* p) {
  return SegmentMap::lookup(p)->kind;
}

TEST(Switchable, ThreadsStartInGlobalModeAsTheCrateDoes) {
  std::thread t([] {
    EXPECT_EQ(current_mode(), Mode::global);
    void* p = allocate(64);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(kind_of(p), owner_kind::global_heap);
    deallocate(p);
  });
  t.join();
}

TEST(Switchable, ThreadModeServesFromTheThreadsOwnHeap) {
  ModeScope scope(Mode::thread);
  ThreadHeap* heap = current_thread_heap();
  ASSERT_NE(heap, nullptr);
  void* small = allocate(100);
  void* medium = allocate(10000, 64);
  void* large = allocate(3 << 20);
  ASSERT_TRUE(small && medium && large);
  EXPECT_EQ(kind_of(small), owner_kind::size_class);
  EXPECT_EQ(kind_of(medium), owner_kind::tree);
  EXPECT_EQ(kind_of(large), owner_kind::large);
  EXPECT_TRUE(is_aligned(medium, 64));
  EXPECT_GE(usable_size(small), 100u);
  EXPECT_GE(usable_size(medium), 10000u);
  EXPECT_GE(usable_size(large), std::size_t{3} << 20);
  const std::size_t before = heap->live_bytes();
  deallocate(small);
  deallocate(medium);
  deallocate(large);
  EXPECT_LT(heap->live_bytes(), before);
  EXPECT_TRUE(heap->check_invariants());
}

TEST(Switchable, ScopesAndHelpersRestoreTheModeAlsoOnExceptions) {
  ModeScope outer(Mode::global);
  EXPECT_EQ(current_mode(), Mode::global);
  {
    ModeScope inner(Mode::thread);
    EXPECT_EQ(current_mode(), Mode::thread);
  }
  EXPECT_EQ(current_mode(), Mode::global);
  const int r = with_thread_allocator([] {
    EXPECT_EQ(current_mode(), Mode::thread);
    return 7;
  });
  EXPECT_EQ(r, 7);
  EXPECT_EQ(current_mode(), Mode::global);
  EXPECT_THROW(with_thread_allocator([]() -> int { throw std::runtime_error("x"); }),
               std::runtime_error);
  EXPECT_EQ(current_mode(), Mode::global);
  ModeScope thread_mode(Mode::thread);
  EXPECT_THROW(with_global_allocator([] {
                 EXPECT_EQ(kind_of(allocate(32)), owner_kind::global_heap);
                 throw 1;
               }),
               int);
  EXPECT_EQ(current_mode(), Mode::thread);
  EXPECT_EQ(set_mode(Mode::context), Mode::thread) << "no context installed: refused";
  EXPECT_EQ(current_mode(), Mode::thread);
}

TEST(Switchable, FreesGoToTheOwnerWhateverTheModeNow) {
  void* from_thread = with_thread_allocator([] { return allocate(200); });
  void* from_global = with_global_allocator([] { return allocate(200); });
  ThreadHeap* heap = current_thread_heap();
  const std::size_t thread_live = heap->live_bytes();
  const std::size_t global_live = current_global_heap().stats().bytes_in_use;
  with_global_allocator([&] { deallocate(from_thread); });
  with_thread_allocator([&] { deallocate(from_global); });
  EXPECT_LT(heap->live_bytes(), thread_live);
  EXPECT_LT(current_global_heap().stats().bytes_in_use, global_live);
}

TEST(Switchable, ReallocateKeepsBytesAcrossSizesAndOwners) {
  ModeScope scope(Mode::thread);
  auto* p = static_cast<unsigned char*>(allocate(16));
  for (int i = 0; i < 16; ++i)
    p[i] = static_cast<unsigned char>(i);
  for (std::size_t size : {64u, 900u, 5000u, 200000u, 2u << 20, 100u, 8u}) {
    p = static_cast<unsigned char*>(reallocate(p, size));
    ASSERT_NE(p, nullptr) << size;
    for (int i = 0; i < 8; ++i)
      ASSERT_EQ(p[i], i) << size;
  }
  // A block from the global heap, reallocated in thread mode, stays the global heap's.
  void* g = with_global_allocator([] { return allocate(1000); });
  std::memset(g, 0xAB, 1000);
  g = reallocate(g, 3000);
  EXPECT_EQ(kind_of(g), owner_kind::global_heap);
  EXPECT_EQ(static_cast<unsigned char*>(g)[999], 0xABu);
  deallocate(g);
  EXPECT_EQ(reallocate(p, 0), nullptr) << "size 0 frees";
  void* fresh = reallocate(nullptr, 40);
  EXPECT_NE(fresh, nullptr);
  deallocate(fresh);
}

TEST(Switchable, ZeroSizeAndNullAreHarmless) {
  ModeScope scope(Mode::thread);
  void* z = allocate(0, 32);
  EXPECT_TRUE(is_zero_size_sentinel(z));
  EXPECT_TRUE(is_aligned(z, 32));
  deallocate(z);
  deallocate(nullptr);
  EXPECT_EQ(usable_size(nullptr), 0u);
  testing::expect_misuse([] { EXPECT_EQ(allocate(16, 3), nullptr); },
                         "bad argument in switchable.allocate");
}

TEST(Switchable, AProducerConsumerPairReturnsEveryBlockToItsOwner) {
  // The rx lcore allocates, the tx lcore frees: blocks travel back through batches.
  const int n = static_cast<int>(testing::scaled(200000, 20000));
  std::mutex m;
  std::vector<std::pair<void*, unsigned char>> queue;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  ThreadHeap* producer_heap = nullptr;
  std::thread producer([&] {
    ModeScope scope(Mode::thread);
    producer_heap = current_thread_heap();
    for (int i = 0; i < n; ++i) {
      const std::size_t size = 16 + static_cast<std::size_t>(i % 16) * 16;
      auto* p = static_cast<unsigned char*>(allocate(size));
      if (p == nullptr) {
        ++bad;
        continue;
      }
      const auto tag = static_cast<unsigned char>(i);
      std::memset(p, tag, size);
      std::lock_guard<std::mutex> g(m);
      queue.emplace_back(p, tag);
    }
    done = true;
    // Keep the thread (and its heap's owner) alive until the consumer is done.
    while (done.load())
      std::this_thread::yield();
    flush();
    EXPECT_EQ(producer_heap->live_bytes(), 0u);
  });
  std::thread consumer([&] {
    ModeScope scope(Mode::thread);
    for (;;) {
      std::vector<std::pair<void*, unsigned char>> batch;
      {
        std::lock_guard<std::mutex> g(m);
        batch.swap(queue);
      }
      for (auto [p, tag] : batch) {
        if (static_cast<unsigned char*>(p)[0] != tag) ++bad;
        deallocate(p);
      }
      if (batch.empty() && done.load()) {
        std::lock_guard<std::mutex> g(m);
        if (queue.empty()) break;
      }
    }
    flush();  // the last partial batches go to the producer
    done = false;
  });
  producer.join();
  consumer.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(producer_heap->stats().remote_received, static_cast<std::uint64_t>(n));
}

TEST(Switchable, ThreadChurnReusesHeapsAndReclaimsBlocksFreedAfterTheirThreadExited) {
  const int rounds = static_cast<int>(testing::scaled(200, 30));
  std::vector<void*> survivors;
  const std::size_t heaps_before = heap_census().heaps;
  for (int r = 0; r < rounds; ++r) {
    std::thread t([&] {
      ModeScope scope(Mode::thread);
      std::vector<void*> mine;
      for (int i = 0; i < 100; ++i)
        mine.push_back(allocate(static_cast<std::size_t>(24 + i * 40)));
      for (int i = 0; i < 100; i += 2)
        deallocate(mine[static_cast<std::size_t>(i)]);
      for (int i = 1; i < 100; i += 2)
        survivors.push_back(mine[static_cast<std::size_t>(i)]);
    });
    t.join();  // the thread's heap is abandoned with 50 blocks still live
    if (r % 10 == 9) {
      for (void* p : survivors)
        deallocate(p);  // freed after their thread exited
      survivors.clear();
    }
  }
  for (void* p : survivors)
    deallocate(p);
  flush();  // this thread's last partial batches of remote frees
  const HeapCensus c = heap_census();
  EXPECT_LE(c.heaps - heaps_before, 2u) << "exited threads' heaps are adopted, not remade";
  EXPECT_EQ(c.live_bytes, 0u) << "every block of every exited thread came back";
}

TEST(Switchable, AnAttachedHeapServesTheThreadAndOutlivesItUnderItsOwner) {
  // A DPDK lcore's set-up: the plugin owns the heap (on its socket's memory) and binds it
  // on the lcore's own thread.
  SegmentSource segs(MapOptions{});
  GlobalHeap global(segs);
  ThreadHeap heap(segs, global);
  void* kept = nullptr;
  std::thread lcore([&] {
    attach_thread_heap(&heap);
    ModeScope scope(Mode::thread);
    EXPECT_EQ(current_thread_heap(), &heap);
    void* p = allocate(64);
    EXPECT_EQ(ThreadHeap::of_tag(SegmentMap::lookup(p)), &heap);
    deallocate(p);
    kept = allocate(2000);
  });
  lcore.join();  // the thread's exit abandons the heap but does not pool it
  EXPECT_TRUE(heap.abandoned());
  EXPECT_GT(heap.live_bytes(), 0u);
  deallocate(kept);  // applied at once under the abandoned heap's lock
  flush();
  EXPECT_EQ(heap.live_bytes(), 0u);
  EXPECT_TRUE(heap.check_invariants());
}

TEST(Switchable, ANodesGlobalHeapCanBeReplaced) {
  SegmentSource segs(MapOptions{});
  GlobalHeap mine(segs);
  set_node_global_heap(0, &mine);
  void* p = with_global_allocator([] { return allocate(100); });
  EXPECT_EQ(SegmentMap::lookup(p)->owner, &mine);
  deallocate(p);
  set_node_global_heap(0, nullptr);
  void* q = with_global_allocator([] { return allocate(100); });
  EXPECT_NE(SegmentMap::lookup(q)->owner, &mine);
  deallocate(q);
  EXPECT_EQ(mine.stats().bytes_in_use, 0u);
}

TEST(SwitchableMisuse, ForeignPointerIsReported) {
  std::vector<char> elsewhere(64);
  testing::expect_misuse([&] { deallocate(elsewhere.data()); },
                         "foreign pointer in switchable.deallocate");
}

TEST(SwitchableMisuse, DoubleFreeInThreadModeIsReported) {
  ModeScope scope(Mode::thread);
  void* p = allocate(48);
  deallocate(p);
  testing::expect_misuse([&] { deallocate(p); }, "double free in size_class.deallocate");
}

}  // namespace
}  // namespace ctxalloc
