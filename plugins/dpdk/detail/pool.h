// The private data of a ctxalloc mempool (mp->pool_data): a lane per lcore that uses
// the pool, made on the lcore's first get or put, and one locked shared stack. All of
// it lives in DPDK memory on the mempool's socket.
//
// Cost of the common path (an lcore putting or getting objects it has in its own lane):
// one load of the lane pointer, the deque operation (see lane_deque.h: no atomic
// read-modify-write for a put, one xchg for a get), and a few counter adds on the lane's
// own cache line. Nothing shared is written.
#pragma once

#include <rte_mempool.h>
#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "ctxalloc/core/check.h"
#include "ctxalloc/core/stats.h"
#include "ctxalloc/dpdk/config.h"
#include "detail/lane_deque.h"
#include "detail/shared_stack.h"

namespace ctxalloc::dpdk::detail {

struct PoolState;

/// Objects a get that misses its lane gathers in its lane's scratch space before handing
/// them out all at once (a failed get must not write to the caller's array). Larger gets
/// use the pool's scratch space, under a lock.
inline constexpr unsigned kLaneScratch = 1024;

/// Objects a lane takes from the shared stack beyond what a get needs, so that the
/// lane's next gets find enough for its fast path (LaneDeque keeps kMaxSteal below it).
inline constexpr unsigned kRefill = 2 * LaneDeque::kMaxSteal;

/// What every put and get of a lane touches, kept on the deque's owner line: the counters
/// of the fast paths, and a copy of the pool's object span for the foreign-pointer check
/// (span_len 0 while the pool is being populated, which sends puts to the slow path).
struct LaneHot {
  Counter gets;  ///< objects handed out by this lcore
  Counter puts;  ///< objects given back on this lcore
  std::uintptr_t span_lo = 0;
  std::uintptr_t span_len = 0;
};

using PoolLaneDeque = BasicLaneDeque<LaneHot>;
static_assert(sizeof(PoolLaneDeque) == 128, "top's line, then one owner line with LaneHot");

/// One lcore's lane: its deque and the counters it alone writes. In memory it is followed
/// by the deque's slots and then kLaneScratch pointers of scratch space.
struct alignas(64) Lane {
  Lane(void** slots, std::uint32_t capacity, PoolState* p, unsigned id, int owner) noexcept
      : deque(slots, capacity), scratch(slots + capacity), pool(p), lcore(id), pid(owner) {}

  PoolLaneDeque deque;
  void** const scratch;
  Counter failures;     ///< gets refused (the pool had too few objects)
  Counter from_shared;  ///< objects this lcore took from the shared stack
  Counter stolen;       ///< objects this lcore stole from other lanes
  Counter peak_net;     ///< highest gets - puts seen (>= 0)
  PoolState* const pool;
  const unsigned lcore;
  /// The process that made the lane (a secondary may): its statistics registry has the
  /// lane's source and counts the lane's bytes, not the registry of the process freeing it.
  const int pid;

  LaneHot& hot() noexcept { return deque.owner(); }
  const LaneHot& hot() const noexcept { return deque.owner(); }

  /// gets - puts: negative when this lcore put back more than it got.
  std::int64_t net() const noexcept {
    return static_cast<std::int64_t>(hot().gets.get() - hot().puts.get());
  }
  // One add each on the owner line; the peak check only loads (a store when the peak
  // rises).
  void count_get(unsigned n) noexcept {
    hot().gets.add(n);
    const std::int64_t now = net();
    if (now > static_cast<std::int64_t>(peak_net.get())) [[unlikely]]
      peak_net.set(static_cast<std::uint64_t>(now));
  }
  void count_put(unsigned n) noexcept { hot().puts.add(n); }
};

/// The first word of every live PoolState ("ctxalloc" in ASCII, little-endian); op_free
/// clears it. With the self pointer after it, it is what proves that a pool's pool_data is
/// a ctxalloc pool's, whatever the pool's ops_index says in this process.
inline constexpr std::uint64_t kPoolMagic = 0x636f6c6c61787463;

/// In memory a PoolState is followed by the shared stack's slots and then `capacity`
/// pointers of scratch space.
struct PoolState {
  PoolState(rte_mempool* m, void** shared_slots, std::uint32_t cap, int sock) noexcept
      : self(this),
        mp(m),
        capacity(cap),
        obj_bytes(m->header_size + m->elt_size + m->trailer_size),
        socket(sock),
        scratch(shared_slots + cap),
        shared(shared_slots, cap) {}

  /// kPoolMagic while the pool lives; first, so that a check reads nothing beyond the
  /// first 16 bytes of memory that may be another driver's.
  std::uint64_t magic = kPoolMagic;
  const PoolState* const self;  ///< this: the magic alone could be a coincidence
  rte_mempool* const mp;
  const std::uint32_t capacity;   ///< slots of every lane and of the shared stack (>= size)
  const std::uint32_t obj_bytes;  ///< header + element + trailer
  const int socket;               ///< where its memory is (never SOCKET_ID_ANY)
  /// Set while rte_mempool populates the pool: its objects go to the shared stack.
  std::atomic<bool> populating{false};
  /// Address span of the pool's objects (every populated chunk): a put outside it is a
  /// foreign pointer.
  std::uintptr_t span_lo = UINTPTR_MAX, span_hi = 0;
  /// Highest bytes in use seen by a telemetry read (lanes keep exact per-lcore peaks).
  mutable std::atomic<std::uint64_t> peak_bytes_seen{0};
  std::atomic<std::uint64_t> misuses{0};
  /// For gets by threads without a lane, and gets larger than kLaneScratch.
  void** const scratch;
  rte_spinlock_t scratch_lock = RTE_SPINLOCK_INITIALIZER;
  SharedStack shared;
  rte_spinlock_t lane_lock = RTE_SPINLOCK_INITIALIZER;
  /// Lanes by lcore id; null until the lcore first uses the pool, kNoLane when making
  /// it failed (the lcore then uses the shared stack).
  std::atomic<Lane*> lanes[kMaxLcores] = {};
};

/// Marks an lcore whose lane could not be made.
inline Lane* const kNoLane = reinterpret_cast<Lane*>(std::uintptr_t{1});

/// The state of a pool that uses the ctxalloc ops (no check of the ops).
inline PoolState* pool_state(const rte_mempool* mp) noexcept {
  return static_cast<PoolState*>(mp->pool_data);
}

/// Whether `mp` is a ctxalloc pool that this process may use: its ops_index names this
/// process's ctxalloc driver, and its pool_data is a live PoolState (magic and self
/// pointer, read only when those 16 bytes are in DPDK memory). Returns 0; -EINVAL for a
/// pool that is neither (no message); -ENXIO when one says ctxalloc and the other does not
/// (the ops index resolves to another driver in this process, or the ctxalloc index of
/// this process was given to a pool another driver made): `why` (may be null) gets the
/// reason, which is also logged, naming the pool, the index, the driver at that index here
/// and the rule of docs/dpdk.md.
int verify_pool(const rte_mempool* mp, std::string* why);

/// The pool-data half of verify_pool, silent: mp->pool_data is a live PoolState (its 16
/// first bytes in DPDK memory, the magic, the self pointer).
bool pool_data_is_ours(const rte_mempool* mp) noexcept;

/// A pool whose ops_index names ctxalloc in this process but whose pool data is not a live
/// PoolState: another driver made it, in a process (a primary) whose drivers registered in
/// another order (docs/dpdk.md, "Secondary processes"). Every callback refuses it instead
/// of taking the other driver's data for lanes. The fast paths check looks_live only (one
/// compare of the magic's low half with an immediate, on the PoolState's first line,
/// read-only after op_alloc); the cold callbacks run the whole pool_data_is_ours.
inline bool looks_live(const PoolState& p) noexcept {
  return static_cast<std::uint32_t>(p.magic) == static_cast<std::uint32_t>(kPoolMagic);
}

/// What a callback returns for such a pool: -ENXIO. The first refusals are logged with
/// verify_pool's reason, later ones are only counted.
[[gnu::visibility("hidden"), gnu::cold, gnu::noinline]] int refuse_pool(
    const rte_mempool* mp) noexcept;

/// Objects the pool holds: every lane and the shared stack (a snapshot).
std::uint32_t pool_count(const PoolState& p) noexcept;

/// Statistics of a pool as a whole: gets, puts, failures of every lane and of the
/// shared stack's users; bytes_in_use = objects out of the driver x obj_bytes;
/// peak_bytes: the highest bytes_in_use seen by a read.
Stats pool_stats(const PoolState& p) noexcept;

/// A quiescent pool's invariants: lanes well formed, every held object one of the
/// pool's objects and held once, no more held than populated.
CheckResult check_pool(const rte_mempool* mp);

/// Registers the ops under `name` with rte_mempool_register_ops, unless an ops struct of
/// that name exists already (another copy of the plugin registered it): returns the
/// index in the ops table, or the negative errno (-ENOSPC: the table is full).
int register_ops(const char* name) noexcept;

}  // namespace ctxalloc::dpdk::detail
