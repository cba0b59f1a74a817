// The get that its lane cannot serve: objects gathered from the lane, the shared stack
// (with a refill for the lane) and other lanes (stolen, LaneDeque::steal), all or
// nothing. See detail/pool_lanes.h.
#include <cerrno>
#include <cstring>

#include "detail/pool_asan.h"
#include "detail/pool_lanes.h"

namespace ctxalloc::dpdk::detail {
namespace {

// A thief retries a lane whose top moved under it this many times before moving on.
constexpr int kStealRetries = 8;

// Takes up to n objects from other lanes, starting after `self`'s lcore.
unsigned steal_from_lanes(PoolState& p, const Lane* self, void** out, unsigned n) noexcept {
  unsigned got = 0;
  const unsigned start = self ? self->lcore + 1 : 0;
  for (unsigned i = 0; i < kMaxLcores && got < n; ++i) {
    Lane* victim = p.lanes[(start + i) % kMaxLcores].load(std::memory_order_acquire);
    if (victim <= kNoLane || victim == self) continue;
    for (int tries = 0; got < n && tries < kStealRetries;) {
      const unsigned k = victim->deque.steal(out + got, n - got);
      if (k == 0) {
        if (victim->deque.size() == 0) break;
        ++tries;  // lost a race with the owner or another thief
      }
      got += k;
    }
  }
  return got;
}

// Scratch space for a get that missed its lane: the lane's own, or the pool's under a
// lock (threads without a lane, and gets larger than the lane's).
class Scratch {
 public:
  Scratch(PoolState& p, Lane* lane, unsigned n) noexcept
      : pool_(lane != nullptr && n <= kLaneScratch ? nullptr : &p),
        space_(pool_ ? p.scratch : lane->scratch) {
    if (pool_ != nullptr) rte_spinlock_lock(&pool_->scratch_lock);
  }
  ~Scratch() {
    if (pool_ != nullptr) rte_spinlock_unlock(&pool_->scratch_lock);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void** get() const noexcept { return space_; }

 private:
  PoolState* const pool_;
  void** const space_;
};

}  // namespace

int dequeue_slow(PoolState& p, void** objs, unsigned n) noexcept {
  Lane* lane = my_lane(p);
  if (n > p.capacity) return -ENOENT;  // more than the pool could ever hold
  Scratch scratch(p, lane, n + kRefill);
  void** s = scratch.get();
  unsigned got = lane != nullptr ? lane->deque.take_some(s, n) : 0;
  // From the shared stack, kRefill more for the lane when it has a lane: a lane that
  // holds only what was just put would take every time through its nearly-empty path.
  const unsigned extra = lane != nullptr && n + kRefill <= kLaneScratch ? kRefill : 0;
  const unsigned from_shared = got < n ? p.shared.pop(s + got, n - got + extra) : 0;
  got += from_shared;
  const unsigned stolen = got < n ? steal_from_lanes(p, lane, s + got, n - got) : 0;
  got += stolen;
  if (got >= n) {
    std::memcpy(objs, s, n * sizeof(void*));
    unpoison(p, objs, n);
    if (got > n) lane->deque.push(s + n, got - n);  // the refill; fits: they were in the pool
    if (lane != nullptr) {
      lane->from_shared.add(from_shared);
      lane->stolen.add(stolen);
      lane->count_get(n);
    } else {
      p.shared.gets.fetch_add(n, std::memory_order_relaxed);
    }
    return 0;
  }
  // Not enough in the whole pool (got < n): give everything back. It fits: these objects were in
  // the pool a moment ago.
  if (lane == nullptr || !lane->deque.push(s, got)) p.shared.push(s, got);
  if (lane != nullptr)
    lane->failures.add(1);
  else
    p.shared.failures.fetch_add(1, std::memory_order_relaxed);
  return -ENOENT;
}

}  // namespace ctxalloc::dpdk::detail
