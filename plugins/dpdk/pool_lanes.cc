// The mempool driver's lanes: a lane made on an lcore's first get or put, and the put
// that the lane alone cannot take (no lane yet, the pool being populated, foreign
// objects, the lane full). See detail/pool_lanes.h.
#include "detail/pool_lanes.h"

#include <rte_malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <new>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/dpdk/registry.h"
#include "detail/log.h"
#include "detail/pool_asan.h"
#include "detail/pool_span.h"

namespace ctxalloc::dpdk::detail {

Lane* make_lane(PoolState& p, unsigned lcore) noexcept {
  rte_spinlock_lock(&p.lane_lock);
  Lane* lane = p.lanes[lcore].load(std::memory_order_acquire);
  if (lane == nullptr) {
    void* mem = rte_malloc_socket("ctxalloc_lane", lane_bytes(p), RTE_CACHE_LINE_SIZE, p.socket);
    if (mem == nullptr) {
      CTXALLOC_LOG(WARNING,
                   "mempool %s: no memory for lcore %u's lane (%llu bytes on socket %d): "
                   "it uses the shared stack",
                   p.mp->name, lcore, static_cast<unsigned long long>(lane_bytes(p)), p.socket);
      lane = kNoLane;
    } else {
      auto* slots = reinterpret_cast<void**>(static_cast<char*>(mem) + sizeof(Lane));
      lane = new (mem) Lane(slots, p.capacity, &p, lcore, getpid());
      if (!p.populating.load(std::memory_order_relaxed)) copy_span(p, *lane);
      Registry::instance().socket(static_cast<unsigned>(p.socket)).metadata_bytes += lane_bytes(p);
      if (Registry::instance().attach_lcore(
              lcore, StatsSource{Account::mempool, p.mp->name, read_lane, lane}) != 0)
        CTXALLOC_LOG(WARNING, "lcore %u: registry full, telemetry misses pool %s", lcore,
                     p.mp->name);
    }
    p.lanes[lcore].store(lane, std::memory_order_release);
  }
  rte_spinlock_unlock(&p.lane_lock);
  return lane == kNoLane ? nullptr : lane;
}

namespace {

// Reports the objects outside the pool and compacts the rest into `keep`; returns how
// many are kept.
[[gnu::cold]] unsigned drop_foreign(PoolState& p, void* const* objs, unsigned n,
                                    void** keep) noexcept {
  unsigned kept = 0;
  for (unsigned i = 0; i < n; ++i) {
    const auto a = reinterpret_cast<std::uintptr_t>(objs[i]);
    if (a - p.span_lo < p.span_hi - p.span_lo) {
      keep[kept++] = objs[i];
      continue;
    }
    p.misuses.fetch_add(1, std::memory_order_relaxed);
    report_misuse(Misuse::foreign_pointer, "ctxalloc mempool", "enqueue", objs[i]);
  }
  return kept;
}

// Objects outside the pool's span: report and drop them, enqueue the rest (in chunks,
// so that the kept ones fit on the stack). Out of line: its 8 KiB frame stays off the
// fast path.
[[gnu::cold, gnu::noinline]] int enqueue_foreign(PoolState& p, void* const* objs,
                                                 unsigned n) noexcept {
  void* keep[RTE_MEMPOOL_CACHE_MAX_SIZE * 2];
  int rc = 0;
  for (unsigned done = 0; done < n;) {
    const unsigned chunk = std::min<unsigned>(n - done, std::size(keep));
    const unsigned kept = drop_foreign(p, objs + done, chunk, keep);
    if (kept != 0 && enqueue_slow(p, keep, kept) != 0) rc = -ENOBUFS;
    done += chunk;
  }
  return rc != 0 ? rc : -EINVAL;
}

// The pool holds more objects than it was populated with: something was put twice.
[[gnu::cold]] int overflow(PoolState& p, void* const* objs, unsigned n) noexcept {
  p.misuses.fetch_add(n, std::memory_order_relaxed);
  report_misuse(Misuse::double_free, "ctxalloc mempool", "enqueue", objs[0]);
  CTXALLOC_LOG(ERR, "mempool %s: %u objects more than it holds were put (double put?): dropped",
               p.mp->name, n);
  return -ENOBUFS;
}

}  // namespace

int enqueue_slow(PoolState& p, void* const* objs, unsigned n) noexcept {
  const bool populating = p.populating.load(std::memory_order_relaxed);
  if (!populating) {
    if (!all_in_pool(p, objs, n)) return enqueue_foreign(p, objs, n);
    // Objects being populated stay unpoisoned: DPDK initialises them in the pool
    // (rte_mempool_obj_iter after populate, e.g. rte_pktmbuf_init).
    poison(p, objs, n);
  }
  Lane* lane = my_lane(p);
  if (lane != nullptr && !populating && lane->deque.push(objs, n)) {
    lane->count_put(n);
    return 0;
  }
  const unsigned stored = p.shared.push(objs, n);
  if (!populating) {
    if (lane != nullptr)
      lane->count_put(stored);
    else
      p.shared.puts.fetch_add(stored, std::memory_order_relaxed);
  }
  return stored == n ? 0 : overflow(p, objs + stored, n - stored);
}

}  // namespace ctxalloc::dpdk::detail
