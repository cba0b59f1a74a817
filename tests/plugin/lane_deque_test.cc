// The DPDK plugin's work-stealing deque (plugins/dpdk/detail/lane_deque.h), which needs
// no DPDK: single-threaded semantics, and an owner racing thieves (also under
// ThreadSanitizer, which the DPDK tests cannot use). Every object must end up in exactly
// one place.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "detail/lane_deque.h"
#include "support/test_scale.h"

namespace ctxalloc::dpdk::detail {
namespace {

void* obj(std::uintptr_t i) {
  return reinterpret_cast<void*>((i + 1) * 64);
}

std::uintptr_t id(void* p) {
  return reinterpret_cast<std::uintptr_t>(p) / 64 - 1;
}

TEST(LaneDeque, OwnerPushesAndTakesLikeAStack) {
  std::vector<void*> slots(256);
  LaneDeque d(slots.data(), 256);
  std::vector<void*> in(100), out(100);
  for (unsigned i = 0; i < 100; ++i)
    in[i] = obj(i);
  ASSERT_TRUE(d.push(in.data(), 100));
  EXPECT_EQ(d.size(), 100u);
  ASSERT_EQ(d.take(out.data(), 10), 10u);
  EXPECT_EQ(out[9], in[99]) << "the most recent ones come back";
  EXPECT_EQ(d.size(), 90u);
}

TEST(LaneDeque, TakeIsAllOrNothingAndLeavesOutUntouched) {
  std::vector<void*> slots(64);
  LaneDeque d(slots.data(), 64);
  void* in[5] = {obj(0), obj(1), obj(2), obj(3), obj(4)};
  ASSERT_TRUE(d.push(in, 5));
  void* out[8] = {};
  EXPECT_EQ(d.take(out, 8), 0u);
  EXPECT_TRUE(std::all_of(out, out + 8, [](void* p) { return p == nullptr; }));
  EXPECT_EQ(d.size(), 5u);
  EXPECT_EQ(d.take(out, 3), 3u) << "near empty: claims with a CAS and pushes two back";
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.take_some(out, 8), 2u);
  EXPECT_EQ(d.size(), 0u);
  EXPECT_EQ(d.take_some(out, 8), 0u);
}

TEST(LaneDeque, SingleObjectsGoThroughPushOneAndTakeOne) {
  std::vector<void*> slots(64);
  LaneDeque d(slots.data(), 64);
  for (unsigned i = 0; i < 64; ++i)
    ASSERT_TRUE(d.push_one(obj(i)));
  EXPECT_FALSE(d.push_one(obj(64))) << "full";
  void* out = nullptr;
  ASSERT_TRUE(d.take_one(&out));
  EXPECT_EQ(id(out), 63u);
  // Down to the last ones: take_one goes through the nearly-empty path, then refuses.
  for (unsigned i = 0; i < 63; ++i)
    ASSERT_TRUE(d.take_one(&out));
  EXPECT_EQ(id(out), 0u);
  void* untouched = obj(999);
  out = untouched;
  EXPECT_FALSE(d.take_one(&out));
  EXPECT_EQ(out, untouched);
  EXPECT_EQ(d.size(), 0u);
}

TEST(LaneDeque, PushRefusesWhatWouldNotFit) {
  std::vector<void*> slots(16);
  LaneDeque d(slots.data(), 16);
  std::vector<void*> in(17, obj(0));
  EXPECT_FALSE(d.push(in.data(), 17));
  EXPECT_TRUE(d.push(in.data(), 16));
  EXPECT_FALSE(d.push(in.data(), 1));
}

TEST(LaneDeque, StealTakesFromTheOldEndAtMostKMaxSteal) {
  std::vector<void*> slots(256);
  LaneDeque d(slots.data(), 256);
  std::vector<void*> in(100);
  for (unsigned i = 0; i < 100; ++i)
    in[i] = obj(i);
  ASSERT_TRUE(d.push(in.data(), 100));
  std::vector<void*> out(100);
  EXPECT_EQ(d.steal(out.data(), 100), LaneDeque::kMaxSteal);
  EXPECT_EQ(out[0], in[0]);
  EXPECT_EQ(d.size(), 100u - LaneDeque::kMaxSteal);
}

TEST(LaneDeque, WrapsAroundItsSlots) {
  std::vector<void*> slots(8);
  LaneDeque d(slots.data(), 8);
  void* buf[8];
  std::uintptr_t next = 0, expect = 0;
  for (int round = 0; round < 100; ++round) {
    for (unsigned i = 0; i < 6; ++i)
      buf[i] = obj(next++);
    ASSERT_TRUE(d.push(buf, 6));
    ASSERT_EQ(d.steal(buf, 6), 6u);  // oldest first: FIFO through the top
    for (unsigned i = 0; i < 6; ++i)
      ASSERT_EQ(id(buf[i]), expect++);
  }
}

// The owner pushes, takes and takes some at random; two thieves steal and hand what
// they stole back to the owner (through a locked vector), so the race goes on for the
// whole test. At the end every object is counted where it is: owner, returns, deque.
TEST(LaneDeque, OwnerAndThievesNeverShareAnObject) {
  constexpr unsigned kObjects = 4096;
  std::vector<void*> slots(kObjects);
  LaneDeque d(slots.data(), kObjects);
  std::vector<void*> all(kObjects);
  for (unsigned i = 0; i < kObjects; ++i)
    all[i] = obj(i);
  ASSERT_TRUE(d.push(all.data(), kObjects));

  const std::uint64_t rounds = testing::scaled(300'000, 20'000);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> steals{0};
  std::mutex returned_lock;
  std::vector<void*> returned;
  auto thief = [&](unsigned which) {
    void* buf[LaneDeque::kMaxSteal];
    std::minstd_rand rng(which + 1);
    while (!stop.load(std::memory_order_relaxed)) {
      const unsigned k = d.steal(buf, 1 + rng() % LaneDeque::kMaxSteal);
      if (k == 0) continue;
      steals.fetch_add(k, std::memory_order_relaxed);
      std::lock_guard<std::mutex> g(returned_lock);
      returned.insert(returned.end(), buf, buf + k);
    }
  };
  std::thread t0(thief, 0), t1(thief, 1);

  std::vector<void*> held;
  std::mt19937 rng(42);
  void* buf[96];
  for (std::uint64_t r = 0; r < rounds; ++r) {
    const unsigned n = 1 + rng() % 96;
    switch (rng() % 4) {
      case 0: {
        const unsigned k = d.take(buf, n);
        ASSERT_TRUE(k == 0 || k == n);
        held.insert(held.end(), buf, buf + k);
        break;
      }
      case 3: {  // single objects: take_one, and push_one of what is held
        if (d.take_one(buf)) held.push_back(buf[0]);
        if (!held.empty() && d.push_one(held.back())) held.pop_back();
        break;
      }
      case 1: {
        const unsigned k = d.take_some(buf, n);
        ASSERT_LE(k, n);
        held.insert(held.end(), buf, buf + k);
        break;
      }
      default: {
        {
          std::lock_guard<std::mutex> g(returned_lock);
          held.insert(held.end(), returned.begin(), returned.end());
          returned.clear();
        }
        const unsigned k = std::min<unsigned>(n, static_cast<unsigned>(held.size()));
        ASSERT_TRUE(d.push(held.data() + held.size() - k, k));
        held.resize(held.size() - k);
      }
    }
  }
  stop.store(true);
  t0.join();
  t1.join();

  std::vector<void*> everything = held;
  everything.insert(everything.end(), returned.begin(), returned.end());
  ASSERT_TRUE(d.for_each([&](void* p) { everything.push_back(p); }));
  std::sort(everything.begin(), everything.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(everything.size(), kObjects) << "objects lost or duplicated";
  EXPECT_EQ(everything, all);
  EXPECT_GT(steals.load(), 0u) << "the thieves never got anything";
}

}  // namespace
}  // namespace ctxalloc::dpdk::detail
