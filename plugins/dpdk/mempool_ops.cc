// The `ctxalloc` mempool ops: per-lcore lanes (work-stealing deques) over one shared
// locked stack. See detail/pool.h for the layout and detail/lane_deque.h for the
// concurrency argument. Every callback returns 0 or a negative errno and never throws.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/sanitizers.h"
#include "ctxalloc/dpdk/plugin.h"
#include "ctxalloc/dpdk/registry.h"
#include "detail/log.h"
#include "detail/pool.h"

#if defined(CTXALLOC_ASAN_ACTIVE)
#include <sanitizer/asan_interface.h>
#endif
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

// EAL's thread-local lcore id (rte_lcore_id() reads it), declared again with the
// initial-exec TLS model: from a shared object, the default model costs a call to
// __tls_get_addr on every get and put (a perf profile of testpmd with --mbcache=0 showed
// it); initial-exec is two moves. It is valid because librte_eal is loaded with the
// program (every DPDK application links it), so its TLS is in the static block.
extern "C" {
extern __thread unsigned per_lcore__lcore_id __attribute__((tls_model("initial-exec")));
}

namespace ctxalloc::dpdk::detail {
namespace {

inline unsigned current_lcore() noexcept {
  return per_lcore__lcore_id;
}

static_assert(kMaxLcores == RTE_MAX_LCORE, "config.h's kMaxLcores must match DPDK's build");
static_assert(kMaxSockets == RTE_MAX_NUMA_NODES, "config.h's kMaxSockets must match DPDK's");

// A thief retries a lane whose top moved under it this many times before moving on.
constexpr int kStealRetries = 8;

std::uint32_t round_up_pow2(std::uint32_t v) {
  return v <= 1 ? 1 : std::uint32_t{1} << (32 - __builtin_clz(v - 1));
}

// ------------------------------------------------------------------ statistics sources

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

// ------------------------------------------------------------------ AddressSanitizer

// Under ASan, objects put back into the driver are poisoned: a use after rte_mempool_put
// (that reached the driver, not DPDK's per-lcore cache) is reported. Objects that were
// never handed out are not (DPDK initialises them in place). No cost in other builds.
inline void poison(const PoolState& p, void* const* objs, unsigned n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  for (unsigned i = 0; i < n; ++i)
    ASAN_POISON_MEMORY_REGION(objs[i], p.mp->elt_size);
#else
  (void)p, (void)objs, (void)n;
#endif
}

inline void unpoison(const PoolState& p, void* const* objs, unsigned n) noexcept {
#if defined(CTXALLOC_ASAN_ACTIVE)
  for (unsigned i = 0; i < n; ++i)
    ASAN_UNPOISON_MEMORY_REGION(objs[i], p.mp->elt_size);
#else
  (void)p, (void)objs, (void)n;
#endif
}

// ------------------------------------------------------------------ lanes

std::uint64_t lane_bytes(const PoolState& p) {
  return sizeof(Lane) + (std::uint64_t{p.capacity} + kLaneScratch) * sizeof(void*);
}

std::uint64_t pool_bytes(std::uint32_t capacity) {
  return sizeof(PoolState) + 2 * std::uint64_t{capacity} * sizeof(void*);
}

// A lane's copy of the pool's span (written while no get or put runs: at lane creation
// by its own lcore, and when the pool is populated).
void copy_span(const PoolState& p, Lane& lane) noexcept {
  lane.hot().span_lo = p.span_lo;
  lane.hot().span_len = p.span_hi > p.span_lo ? p.span_hi - p.span_lo : 0;
}

// Makes the calling lcore's lane (its first get or put on this pool), on the pool's
// socket. Returns null when it could not: the lcore then uses the shared stack.
[[gnu::cold]] Lane* make_lane(PoolState& p, unsigned lcore) noexcept {
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

// The calling thread's lane if it has one already (no call: the fast paths stay leaf
// functions that save no registers), else null.
inline Lane* existing_lane(PoolState& p) noexcept {
  const unsigned lcore = current_lcore();
  if (lcore >= kMaxLcores) [[unlikely]]
    return nullptr;
  Lane* lane = p.lanes[lcore].load(std::memory_order_acquire);
  return lane > kNoLane ? lane : nullptr;
}

// The calling thread's lane, made on first use; null without an lcore id or when no lane
// could be made.
inline Lane* my_lane(PoolState& p) noexcept {
  if (Lane* lane = existing_lane(p)) [[likely]]
    return lane;
  const unsigned lcore = current_lcore();
  if (lcore >= kMaxLcores || p.lanes[lcore].load(std::memory_order_acquire) == kNoLane)
    return nullptr;
  return make_lane(p, lcore);
}

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

// ------------------------------------------------------------------ misuse

// A coarse, cheap check: every object must lie in the pool's address span. It catches
// pointers from other pools and from the heap, not a pointer into the middle of an
// object. One branch per call; with SSE4.2 (DPDK's baseline here) two objects per
// compare: x - lo >= len (unsigned) is (x - lo) ^ 2^63 > (len - 1) ^ 2^63 (signed).
inline bool all_in_span(std::uintptr_t lo, std::uintptr_t len, void* const* objs,
                        unsigned n) noexcept {
  unsigned i = 0;
  bool bad = false;
#if defined(__SSE4_2__)
  if (n >= 4) {  // fewer: not worth the vector set-up
    const __m128i vlo = _mm_set1_epi64x(static_cast<long long>(lo));
    const __m128i flip = _mm_set1_epi64x(INT64_MIN);
    const __m128i limit =
        _mm_set1_epi64x(static_cast<long long>((len - 1) ^ (std::uintptr_t{1} << 63)));
    auto outside2 = [&](unsigned j) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(objs + j));
      return _mm_cmpgt_epi64(_mm_xor_si128(_mm_sub_epi64(v, vlo), flip), limit);
    };
    __m128i out = _mm_setzero_si128();
    for (; i + 4 <= n; i += 4)
      out = _mm_or_si128(out, _mm_or_si128(outside2(i), outside2(i + 2)));
    bad = _mm_testz_si128(out, out) == 0;
  }
#endif
  for (; i < n; ++i)
    bad |= reinterpret_cast<std::uintptr_t>(objs[i]) - lo >= len;
  return !bad && len != 0;
}

/// Against the pool's own span (the lanes' copies may be 0 while populating).
inline bool all_in_pool(const PoolState& p, void* const* objs, unsigned n) noexcept {
  return p.span_hi > p.span_lo && all_in_span(p.span_lo, p.span_hi - p.span_lo, objs, n);
}

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

// ------------------------------------------------------------------ slow paths

// The pool holds more objects than it was populated with: something was put twice.
[[gnu::cold]] int overflow(PoolState& p, void* const* objs, unsigned n) noexcept {
  p.misuses.fetch_add(n, std::memory_order_relaxed);
  report_misuse(Misuse::double_free, "ctxalloc mempool", "enqueue", objs[0]);
  CTXALLOC_LOG(ERR, "mempool %s: %u objects more than it holds were put (double put?): dropped",
               p.mp->name, n);
  return -ENOBUFS;
}

[[gnu::cold, gnu::noinline]] int enqueue_foreign(PoolState& p, void* const* objs,
                                                 unsigned n) noexcept;

// Every put the fast path does not take: no lane yet, populating, objects outside the
// lane's copy of the span, the lane full.
[[gnu::cold, gnu::noinline]] int enqueue_slow(PoolState& p, void* const* objs,
                                              unsigned n) noexcept {
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

// The lane had fewer than n: gather n from the lane, the shared stack and other lanes,
// in scratch space. All or nothing: on failure every object goes back and `objs` is
// untouched.
[[gnu::cold, gnu::noinline]] int dequeue_slow(PoolState& p, void** objs, unsigned n) noexcept {
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

// ------------------------------------------------------------------ foreign pool data

// A pool whose ops_index names ctxalloc in this process but whose pool data is not a live
// PoolState: another driver made it, in a process (a primary) whose drivers registered in
// another order (docs/dpdk.md, "Secondary processes"). Every callback refuses it instead
// of taking the other driver's data for lanes. The fast paths compare the magic's low half
// only (one compare with an immediate on the PoolState's first line, read-only after
// op_alloc); the cold callbacks run the whole verify_pool. The first refusals are logged
// with verify_pool's reason; later ones are counted only (a loop of gets must not flood
// the log).
std::atomic<std::uint64_t> g_refusals{0};
constexpr std::uint64_t kRefusalsLogged = 16;

[[gnu::cold, gnu::noinline]] int refuse(const rte_mempool* mp) noexcept {
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

inline bool looks_live(const PoolState& p) noexcept {
  return static_cast<std::uint32_t>(p.magic) == static_cast<std::uint32_t>(kPoolMagic);
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
    refuse(mp);
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
    return refuse(mp);
  return n == 1 ? enqueue_fast(p, objs, 1) : enqueue_burst(p, objs, n);
}

int op_dequeue(rte_mempool* mp, void** objs, unsigned n) noexcept {
  PoolState& p = *pool_state(mp);
  if (!looks_live(p)) [[unlikely]]
    return refuse(mp);
  return n == 1 ? dequeue_fast(p, objs, 1) : dequeue_burst(p, objs, n);
}

unsigned op_get_count(const rte_mempool* mp) noexcept {
  if (!pool_data_is_ours(mp)) [[unlikely]]
    return refuse(mp), 0;
  return pool_count(*pool_state(mp));
}

// Objects of a chunk being populated go to the shared stack, and the chunk widens the
// pool's address span (the foreign-pointer check).
int op_populate(rte_mempool* mp, unsigned max_objs, void* vaddr, rte_iova_t iova, std::size_t len,
                rte_mempool_populate_obj_cb_t* obj_cb, void* obj_cb_arg) noexcept {
  if (!pool_data_is_ours(mp)) [[unlikely]]
    return refuse(mp);
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
