// check_pool: walks a quiescent ctxalloc mempool's lanes and shared stack.
#include <rte_malloc.h>

#include <algorithm>

#include "detail/pool.h"

namespace ctxalloc::dpdk::detail {
namespace {

// An array in DPDK memory (the check runs in processes where malloc may be ctxalloc's).
class RteArray {
 public:
  explicit RteArray(std::size_t n)
      : p_(static_cast<void**>(rte_malloc("ctxalloc_check", (n ? n : 1) * sizeof(void*), 0))) {}
  ~RteArray() { rte_free(p_); }
  RteArray(const RteArray&) = delete;
  RteArray& operator=(const RteArray&) = delete;
  void** get() const { return p_; }

 private:
  void** p_;
};

void collect_object(rte_mempool*, void* arg, void* obj, unsigned idx) {
  static_cast<void**>(arg)[idx] = obj;
}

}  // namespace

CheckResult check_pool(const rte_mempool* mp) {
  const PoolState* p = pool_state(mp);
  if (p == nullptr) return check_fail("ctxalloc mempool ", mp->name, ": no pool data");
  const std::uint32_t populated = mp->populated_size;
  // Every lane and the shared stack can hold `capacity`; collect at most that many more
  // than the pool has, so that a corrupt count cannot run past the array.
  const std::size_t limit = std::size_t{populated} + p->capacity;
  RteArray held(limit), all(populated);
  if (held.get() == nullptr || all.get() == nullptr)
    return check_fail("ctxalloc mempool ", mp->name, ": no memory to check it");
  std::size_t n = 0;
  bool overfull = false;
  auto add = [&](void* obj) {
    if (n < limit)
      held.get()[n++] = obj;
    else
      overfull = true;
  };
  for (unsigned l = 0; l < kMaxLcores; ++l) {
    const Lane* lane = p->lanes[l].load(std::memory_order_acquire);
    if (lane <= kNoLane) continue;
    CTXALLOC_INVARIANT(lane->lcore == l, "ctxalloc mempool ", mp->name, ": lane of lcore ", l,
                       " says lcore ", lane->lcore);
    CTXALLOC_INVARIANT(lane->deque.for_each(add), "ctxalloc mempool ", mp->name, ": lcore ", l,
                       "'s lane has top above bottom");
  }
  CTXALLOC_INVARIANT(p->shared.size() <= p->shared.capacity(), "ctxalloc mempool ", mp->name,
                     ": shared stack holds ", p->shared.size(), " of ", p->shared.capacity());
  p->shared.for_each(add);
  CTXALLOC_INVARIANT(!overfull && n <= populated, "ctxalloc mempool ", mp->name, ": holds ",
                     static_cast<unsigned long long>(n), " objects, but only ", populated,
                     " were populated");
  // Every held object must be one of the pool's, and held once.
  rte_mempool_obj_iter(const_cast<rte_mempool*>(mp), collect_object, all.get());
  std::sort(all.get(), all.get() + populated);
  std::sort(held.get(), held.get() + n);
  for (std::size_t i = 0; i < n; ++i) {
    void* obj = held.get()[i];
    CTXALLOC_INVARIANT(std::binary_search(all.get(), all.get() + populated, obj),
                       "ctxalloc mempool ", mp->name, ": holds ", obj,
                       ", which is not one of its objects");
    CTXALLOC_INVARIANT(i == 0 || held.get()[i - 1] != obj, "ctxalloc mempool ", mp->name,
                       ": holds ", obj, " twice");
  }
  return CheckResult::ok();
}

}  // namespace ctxalloc::dpdk::detail
