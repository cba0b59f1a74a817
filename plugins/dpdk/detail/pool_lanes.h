// The mempool driver's lanes (detail/pool.h): finding the calling lcore's lane, making it
// on the lcore's first get or put, and the slow paths of put and get that the ops
// (mempool_ops.cc) fall to when the lane alone cannot serve them: the shared stack,
// stealing from other lanes (pool_steal.cc) and foreign or surplus objects
// (pool_lanes.cc).
#pragma once

#include <rte_lcore.h>

#include <cstdint>

#include "ctxalloc/core/stats.h"
#include "detail/pool.h"

// EAL's thread-local lcore id (rte_lcore_id() reads it), declared again with the
// initial-exec TLS model: from a shared object, the default model costs a call to
// __tls_get_addr on every get and put (a perf profile of testpmd with --mbcache=0 showed
// it); initial-exec is two moves. It is valid because librte_eal is loaded with the
// program (every DPDK application links it), so its TLS is in the static block.
extern "C" {
extern __thread unsigned per_lcore__lcore_id __attribute__((tls_model("initial-exec")));
}

namespace ctxalloc::dpdk::detail {

static_assert(kMaxLcores == RTE_MAX_LCORE, "config.h's kMaxLcores must match DPDK's build");
static_assert(kMaxSockets == RTE_MAX_NUMA_NODES, "config.h's kMaxSockets must match DPDK's");

// The out-of-line functions here are internal to the driver: hidden, so that the calls
// between its files need no PLT in the shared library.

inline unsigned current_lcore() noexcept {
  return per_lcore__lcore_id;
}

/// DPDK memory of one lane: the Lane, its deque's slots and its scratch space.
inline std::uint64_t lane_bytes(const PoolState& p) noexcept {
  return sizeof(Lane) + (std::uint64_t{p.capacity} + kLaneScratch) * sizeof(void*);
}

/// DPDK memory of a PoolState of `capacity` slots: the state, the shared stack's slots
/// and the pool's scratch space.
inline std::uint64_t pool_bytes(std::uint32_t capacity) noexcept {
  return sizeof(PoolState) + 2 * std::uint64_t{capacity} * sizeof(void*);
}

/// A lane's copy of the pool's span (written while no get or put runs: at lane creation
/// by its own lcore, and when the pool is populated).
inline void copy_span(const PoolState& p, Lane& lane) noexcept {
  lane.hot().span_lo = p.span_lo;
  lane.hot().span_len = p.span_hi > p.span_lo ? p.span_hi - p.span_lo : 0;
}

/// Makes the calling lcore's lane (its first get or put on this pool), on the pool's
/// socket. Returns null when it could not: the lcore then uses the shared stack.
[[gnu::visibility("hidden"), gnu::cold]] Lane* make_lane(PoolState& p, unsigned lcore) noexcept;

/// The calling thread's lane if it has one already (no call: the fast paths stay leaf
/// functions that save no registers), else null.
inline Lane* existing_lane(PoolState& p) noexcept {
  const unsigned lcore = current_lcore();
  if (lcore >= kMaxLcores) [[unlikely]]
    return nullptr;
  Lane* lane = p.lanes[lcore].load(std::memory_order_acquire);
  return lane > kNoLane ? lane : nullptr;
}

/// The calling thread's lane, made on first use; null without an lcore id or when no
/// lane could be made.
inline Lane* my_lane(PoolState& p) noexcept {
  if (Lane* lane = existing_lane(p)) [[likely]]
    return lane;
  const unsigned lcore = current_lcore();
  if (lcore >= kMaxLcores || p.lanes[lcore].load(std::memory_order_acquire) == kNoLane)
    return nullptr;
  return make_lane(p, lcore);
}

/// Every put the fast path does not take: no lane yet, populating, objects outside the
/// lane's copy of the span, the lane full. 0, -EINVAL (foreign objects, dropped and
/// reported) or -ENOBUFS (more objects than the pool holds: a double put).
[[gnu::visibility("hidden"), gnu::cold, gnu::noinline]] int enqueue_slow(PoolState& p,
                                                                         void* const* objs,
                                                                         unsigned n) noexcept;

/// The lane had fewer than n: gathers n from the lane, the shared stack and other lanes.
/// All or nothing: 0, or -ENOENT with every object given back and `objs` untouched.
[[gnu::visibility("hidden"), gnu::cold, gnu::noinline]] int dequeue_slow(PoolState& p, void** objs,
                                                                         unsigned n) noexcept;

/// Statistics sources for the registry (pool_stats.cc): one lane (self: a Lane), the
/// threads without a lane (self: a PoolState), the whole pool (self: a PoolState).
[[gnu::visibility("hidden")]] Stats read_lane(const void* self) noexcept;
[[gnu::visibility("hidden")]] Stats read_non_eal(const void* self) noexcept;
[[gnu::visibility("hidden")]] Stats read_pool(const void* self) noexcept;

}  // namespace ctxalloc::dpdk::detail
