// Statistics of a ctxalloc mempool: per lane (what its lcore got, put, failed, stole),
// for threads without a lane, and for the pool as a whole; the registry reads them
// (telemetry, ctxalloc_dpdk_stats). See detail/pool.h and detail/pool_lanes.h.
#include <algorithm>

#include "detail/pool_lanes.h"

namespace ctxalloc::dpdk::detail {

Stats read_lane(const void* self) noexcept {
  const auto& lane = *static_cast<const Lane*>(self);
  const std::uint64_t obj = lane.pool->obj_bytes;
  const std::int64_t net = lane.net();
  Stats s;
  s.allocations = lane.hot().gets.get();
  s.deallocations = lane.hot().puts.get();
  s.failures = lane.failures.get();
  s.bytes_in_use = net > 0 ? static_cast<std::uint64_t>(net) * obj : 0;
  s.peak_bytes = lane.peak_net.get() * obj;
  return s;
}

Stats read_non_eal(const void* self) noexcept {
  const auto& p = *static_cast<const PoolState*>(self);
  Stats s;
  s.allocations = p.shared.gets.load(std::memory_order_relaxed);
  s.deallocations = p.shared.puts.load(std::memory_order_relaxed);
  s.failures = p.shared.failures.load(std::memory_order_relaxed);
  s.bytes_in_use =
      s.allocations > s.deallocations ? (s.allocations - s.deallocations) * p.obj_bytes : 0;
  return s;
}

Stats read_pool(const void* self) noexcept {
  return pool_stats(*static_cast<const PoolState*>(self));
}

std::uint32_t pool_count(const PoolState& p) noexcept {
  std::uint64_t n = p.shared.size();
  for (const auto& slot : p.lanes) {
    const Lane* lane = slot.load(std::memory_order_acquire);
    if (lane > kNoLane) n += lane->deque.size();
  }
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(n, UINT32_MAX));
}

Stats pool_stats(const PoolState& p) noexcept {
  Stats s;
  s.allocations = p.shared.gets.load(std::memory_order_relaxed);
  s.deallocations = p.shared.puts.load(std::memory_order_relaxed);
  s.failures = p.shared.failures.load(std::memory_order_relaxed);
  for (const auto& slot : p.lanes) {
    const Lane* lane = slot.load(std::memory_order_acquire);
    if (lane <= kNoLane) continue;
    s.allocations += lane->hot().gets.get();
    s.deallocations += lane->hot().puts.get();
    s.failures += lane->failures.get();
  }
  s.misuses = p.misuses.load(std::memory_order_relaxed);
  const std::uint32_t held = pool_count(p);
  const std::uint32_t populated = p.mp->populated_size;
  s.bytes_in_use = populated > held ? std::uint64_t{populated - held} * p.obj_bytes : 0;
  std::uint64_t peak = p.peak_bytes_seen.load(std::memory_order_relaxed);
  while (s.bytes_in_use > peak && !p.peak_bytes_seen.compare_exchange_weak(
                                      peak, s.bytes_in_use, std::memory_order_relaxed)) {
  }
  s.peak_bytes = std::max(peak, s.bytes_in_use);
  s.capacity = std::uint64_t{populated} * p.obj_bytes;
  return s;
}

}  // namespace ctxalloc::dpdk::detail
