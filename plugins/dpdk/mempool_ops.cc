// The `ctxalloc` mempool ops: per-lcore lanes (work-stealing deques) over one shared
// locked stack. The callbacks and their fast paths are here; detail/pool.h has the
// layout, detail/lane_deque.h the concurrency argument, detail/pool_lanes.h the lanes and
// the slow paths (pool_lanes.cc: lanes and puts, pool_steal.cc: gets and stealing),
// detail/pool_span.h the foreign-pointer check, detail/pool_asan.h the ASan marking and
// pool_stats.cc the statistics. Every callback returns 0 or a negative errno and never
// throws.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "ctxalloc/dpdk/plugin.h"
#include "ctxalloc/dpdk/registry.h"
#include "detail/log.h"
#include "detail/pool.h"
#include "detail/pool_asan.h"
#include "detail/pool_lanes.h"
#include "detail/pool_span.h"

namespace ctxalloc::dpdk::detail {
namespace {

std::uint32_t round_up_pow2(std::uint32_t v) {
  return v <= 1 ? 1 : std::uint32_t{1} << (32 - __builtin_clz(v - 1));
}

// ------------------------------------------------------------------ the ops

// [ctxalloc] hugepages against what EAL runs with (known only after rte_eal_init, so
// checked when the first pool is made): `require` refuses, `prefer` warns once.
int check_hugepage_policy(const rte_mempool* mp) noexcept {
  static std::atomic<bool> warned{false};
  const Config* c = active_config();
  if (c == nullptr || rte_eal_has_hugepages()) return 0;
  if (c->hugepages == HugepagePolicy::require) {
    CTXALLOC_LOG(ERR,
                 "mempool %s: refused: %s requires hugepages, and EAL runs without them "
                 "(--no-huge)",
                 mp->name, c->source.c_str());
    return -ENOMEM;
  }
  if (c->hugepages == HugepagePolicy::prefer && !warned.exchange(true))
    CTXALLOC_LOG(WARNING,
                 "EAL runs without hugepages: ctxalloc uses normal pages (%s prefers "
                 "hugepages)",
                 c->source.c_str());
  return 0;
}

int op_alloc(rte_mempool* mp) noexcept {
  if (const int rc = initialise(); rc < 0) {
    CTXALLOC_LOG(ERR, "mempool %s: refused: the plugin's configuration did not load", mp->name);
    return rc;
  }
  if (const int rc = check_hugepage_policy(mp); rc < 0) return rc;
  if (mp->size == 0 || mp->size > (1u << 31)) return -EINVAL;
  const std::uint32_t cap = round_up_pow2(mp->size);
  int socket = mp->socket_id;
  if (socket == SOCKET_ID_ANY) socket = static_cast<int>(rte_socket_id());
  if (socket < 0 || socket >= static_cast<int>(kMaxSockets)) socket = 0;
  const std::size_t bytes = pool_bytes(cap);
  void* mem = rte_zmalloc_socket("ctxalloc_pool", bytes, RTE_CACHE_LINE_SIZE, socket);
  if (mem == nullptr) {
    CTXALLOC_LOG(ERR, "mempool %s: no memory for its state (%zu bytes on socket %d)", mp->name,
                 bytes, socket);
    return -ENOMEM;
  }
  auto* shared_slots = reinterpret_cast<void**>(static_cast<char*>(mem) + sizeof(PoolState));
  auto* p = new (mem) PoolState(mp, shared_slots, cap, socket);
  Registry& reg = Registry::instance();
  reg.socket(static_cast<unsigned>(socket)).metadata_bytes += bytes;
  if (reg.attach_socket(static_cast<unsigned>(socket),
                        StatsSource{Account::mempool, mp->name, read_pool, p}) != 0 ||
      reg.attach_lcore(kNonEalSlot, StatsSource{Account::mempool, mp->name, read_non_eal, p}) != 0)
    CTXALLOC_LOG(WARNING, "mempool %s: registry full, telemetry misses it", mp->name);
  mp->pool_data = p;
  CTXALLOC_LOG(INFO, "mempool %s: %u objects of %u bytes on socket %d, ops ctxalloc", mp->name,
               mp->size, p->obj_bytes, socket);
  return 0;
}

void op_free(rte_mempool* mp) noexcept {
  PoolState* p = pool_state(mp);
  if (p == nullptr) return;
  if (!pool_data_is_ours(mp)) {  // another driver's data: not ours to free
    refuse_pool(mp);
    return;
  }
  Registry& reg = Registry::instance();
  // Detach first: after this no telemetry read touches the lanes.
  reg.detach(p);
  for (auto& slot : p->lanes) {
    Lane* lane = slot.load(std::memory_order_acquire);
    if (lane <= kNoLane) continue;
    if (lane->pid == getpid()) {  // else another process's registry counts it
      reg.detach(lane);
      reg.socket(static_cast<unsigned>(p->socket)).metadata_bytes -= lane_bytes(*p);
    }
    lane->~Lane();
    rte_free(lane);
  }
  reg.socket(static_cast<unsigned>(p->socket)).metadata_bytes -= pool_bytes(p->capacity);
  p->magic = 0;  // a stale pool_data pointer is not taken for a live pool
  p->~PoolState();
  rte_free(p);
  mp->pool_data = nullptr;
}

// The fast paths, inlined twice into each op: once with n == 1 (every loop folds away:
// single puts are what mbuf frees without a cache make), once for bursts.
[[gnu::always_inline]] inline int enqueue_fast(PoolState& p, void* const* objs,
                                               unsigned n) noexcept {
  Lane* lane = existing_lane(p);
  if (lane != nullptr && all_in_span(lane->hot().span_lo, lane->hot().span_len, objs, n))
      [[likely]] {
    poison(p, objs, n);
    if (n == 1 ? lane->deque.push_one(objs[0]) : lane->deque.push(objs, n)) [[likely]] {
      lane->count_put(n);
      return 0;
    }
  }
  return enqueue_slow(p, objs, n);
}

[[gnu::always_inline]] inline int dequeue_fast(PoolState& p, void** objs, unsigned n) noexcept {
  Lane* lane = existing_lane(p);
  if (lane != nullptr && (n == 1 ? lane->deque.take_one(objs) : lane->deque.take(objs, n) == n))
      [[likely]] {
    lane->count_get(n);
    unpoison(p, objs, n);
    return 0;
  }
  return dequeue_slow(p, objs, n);
}

// Bursts out of line, so that the single-object path the op functions keep inline needs
// no saved registers (its prologue is most of what it would cost otherwise).
[[gnu::noinline]] int enqueue_burst(PoolState& p, void* const* objs, unsigned n) noexcept {
  return enqueue_fast(p, objs, n);
}

[[gnu::noinline]] int dequeue_burst(PoolState& p, void** objs, unsigned n) noexcept {
  return dequeue_fast(p, objs, n);
}

int op_enqueue(rte_mempool* mp, void* const* objs, unsigned n) noexcept {
  PoolState& p = *pool_state(mp);
  if (!looks_live(p)) [[unlikely]]
    return refuse_pool(mp);
  return n == 1 ? enqueue_fast(p, objs, 1) : enqueue_burst(p, objs, n);
}

int op_dequeue(rte_mempool* mp, void** objs, unsigned n) noexcept {
  PoolState& p = *pool_state(mp);
  if (!looks_live(p)) [[unlikely]]
    return refuse_pool(mp);
  return n == 1 ? dequeue_fast(p, objs, 1) : dequeue_burst(p, objs, n);
}

unsigned op_get_count(const rte_mempool* mp) noexcept {
  if (!pool_data_is_ours(mp)) [[unlikely]]
    return refuse_pool(mp), 0;
  return pool_count(*pool_state(mp));
}

// Objects of a chunk being populated go to the shared stack, and the chunk widens the
// pool's address span (the foreign-pointer check).
int op_populate(rte_mempool* mp, unsigned max_objs, void* vaddr, rte_iova_t iova, std::size_t len,
                rte_mempool_populate_obj_cb_t* obj_cb, void* obj_cb_arg) noexcept {
  if (!pool_data_is_ours(mp)) [[unlikely]]
    return refuse_pool(mp);
  PoolState& p = *pool_state(mp);
  const auto lo = reinterpret_cast<std::uintptr_t>(vaddr);
  p.span_lo = std::min(p.span_lo, lo);
  p.span_hi = std::max(p.span_hi, lo + len);
  p.populating.store(true, std::memory_order_relaxed);
  // Lanes see an empty span meanwhile: their puts take the slow path, which sends the new
  // objects to the shared stack. Nothing else uses a pool while it is populated.
  for (auto& slot : p.lanes)
    if (Lane* lane = slot.load(std::memory_order_acquire); lane > kNoLane) lane->hot().span_len = 0;
  const int rc =
      rte_mempool_op_populate_helper(mp, 0, max_objs, vaddr, iova, len, obj_cb, obj_cb_arg);
  p.populating.store(false, std::memory_order_relaxed);
  for (auto& slot : p.lanes)
    if (Lane* lane = slot.load(std::memory_order_acquire); lane > kNoLane) copy_span(p, *lane);
  return rc;
}

const rte_mempool_ops kOpsTemplate = [] {
  rte_mempool_ops ops{};
  ops.alloc = op_alloc;
  ops.free = op_free;
  ops.enqueue = op_enqueue;
  ops.dequeue = op_dequeue;
  ops.get_count = op_get_count;
  ops.populate = op_populate;
  return ops;
}();

}  // namespace

int register_ops(const char* name) noexcept {
  // rte_mempool_register_ops does not refuse a second struct of the same name, and
  // rte_mempool_set_ops_byname would then always pick the first: look first.
  for (unsigned i = 0; i < rte_mempool_ops_table.num_ops; ++i) {
    if (std::strcmp(rte_mempool_ops_table.ops[i].name, name) == 0) {
      CTXALLOC_LOG(INFO, "mempool ops %s registered already (by another copy of ctxalloc)", name);
      return static_cast<int>(i);
    }
  }
  rte_mempool_ops ops = kOpsTemplate;
  if (std::strlen(name) >= sizeof ops.name) return -EINVAL;
  std::strcpy(ops.name, name);
  const int idx = rte_mempool_register_ops(&ops);
  if (idx < 0) {
    CTXALLOC_LOG(ERR, "cannot register mempool ops %s: %s (the table has %u of %d slots used)",
                 name, idx == -ENOSPC ? "the ops table is full" : rte_strerror(-idx),
                 rte_mempool_ops_table.num_ops, RTE_MEMPOOL_MAX_OPS_IDX);
  }
  return idx;
}

}  // namespace ctxalloc::dpdk::detail
