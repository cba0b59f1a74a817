// verify_pool: is a mempool a ctxalloc pool this process may use (ops index and pool
// data agree)? refuse_pool: a callback's answer to one that is not. check_pool: walks a
// quiescent ctxalloc mempool's lanes and shared stack.
#include <rte_fbarray.h>
#include <rte_malloc.h>
#include <rte_memory.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ctxalloc/dpdk/plugin.h"
#include "detail/log.h"
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

// The byte at `addr` is on a page of DPDK memory that is in use (mapped). A memseg list
// reserves far more address space than it maps (rte_mem_virt2memseg answers for any
// address in it, mapped or not): the list's page array says which pages are.
bool on_used_page(const void* addr) {
  const rte_memseg_list* msl = rte_mem_virt2memseg_list(addr);
  if (msl == nullptr || msl->page_sz == 0) return false;
  const std::uintptr_t off =
      reinterpret_cast<std::uintptr_t>(addr) - reinterpret_cast<std::uintptr_t>(msl->base_va);
  return rte_fbarray_is_used(const_cast<rte_fbarray*>(&msl->memseg_arr),
                             static_cast<unsigned>(off / msl->page_sz)) == 1;
}

// The first 16 bytes of the pool data may be read: they are on used pages of DPDK memory
// (a foreign driver's pool data may be anything; a pointer elsewhere is not followed).
bool header_readable(const void* data) {
  if (data == nullptr || reinterpret_cast<std::uintptr_t>(data) % alignof(PoolState) != 0)
    return false;
  const char* first = static_cast<const char*>(data);
  return on_used_page(first) && on_used_page(first + 2 * sizeof(std::uint64_t) - 1);
}

const char* driver_at(int index) {
  if (index < 0 || static_cast<unsigned>(index) >= rte_mempool_ops_table.num_ops)
    return "(none: outside this process's table)";
  return rte_mempool_ops_table.ops[index].name;
}

}  // namespace

bool pool_data_is_ours(const rte_mempool* mp) noexcept {
  if (!header_readable(mp->pool_data)) return false;
  const auto* p = static_cast<const PoolState*>(mp->pool_data);
  return p->magic == kPoolMagic && p->self == p;
}

int verify_pool(const rte_mempool* mp, std::string* why) {
  if (mp == nullptr) {
    if (why) *why = "no mempool";
    return -EINVAL;
  }
  const int mine = ops_index();
  const int index = mp->ops_index;
  const char* driver = driver_at(index);
  // Our index, or an ops struct of our name (another copy of the plugin registered it).
  const bool ops_ours = mine >= 0 && (index == mine || std::strcmp(driver, driver_at(mine)) == 0);
  const bool data_ours = pool_data_is_ours(mp);
  if (ops_ours && data_ours) return 0;
  if (!ops_ours && !data_ours) {
    if (why)
      *why = std::string("mempool ") + mp->name + ": not a ctxalloc pool (ops_index " +
             std::to_string(index) + ", driver " + driver + " in this process)";
    return -EINVAL;
  }
  char msg[512];
  if (data_ours) {
    std::snprintf(msg, sizeof msg,
                  "mempool %s: refused: its pool data is a ctxalloc pool's, but its ops_index %d "
                  "names driver %s in this process (ctxalloc is at %d here): an ops index is "
                  "per process, so a secondary must register the same drivers in the same order "
                  "as the primary (docs/dpdk.md, \"Secondary processes\")",
                  mp->name, index, driver, mine);
  } else {
    std::snprintf(msg, sizeof msg,
                  "mempool %s: refused: its ops_index %d names ctxalloc in this process, but its "
                  "pool data (%p) is not a ctxalloc pool's (another driver made it in the "
                  "process that created the pool): an ops index is per process, so a secondary "
                  "must register the same drivers in the same order as the primary "
                  "(docs/dpdk.md, \"Secondary processes\")",
                  mp->name, index, mp->pool_data);
  }
  CTXALLOC_LOG(ERR, "%s", msg);
  if (why) *why = msg;
  return -ENXIO;
}

namespace {
// The first refusals are logged with verify_pool's reason; later ones are counted only
// (a loop of gets must not flood the log).
std::atomic<std::uint64_t> g_refusals{0};
constexpr std::uint64_t kRefusalsLogged = 16;
}  // namespace

int refuse_pool(const rte_mempool* mp) noexcept {
  const std::uint64_t n = g_refusals.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n <= kRefusalsLogged) {
    const int rc = verify_pool(mp, nullptr);  // logs the reason
    if (rc == -EINVAL)
      CTXALLOC_LOG(ERR, "mempool %s: refused: its pool data is not a ctxalloc pool's", mp->name);
    if (n == kRefusalsLogged)
      CTXALLOC_LOG(ERR, "%llu refusals of foreign pool data: further ones are not logged",
                   static_cast<unsigned long long>(n));
  }
  return -ENXIO;
}

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
