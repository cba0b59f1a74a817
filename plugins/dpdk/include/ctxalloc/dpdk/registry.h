// The statistics registry: what telemetry (/ctxalloc/...) reports, per lcore and per
// socket. Two kinds of entries:
//
//  - Counters an lcore writes itself (fallbacks, failures, remote frees): one cache line
//    per lcore, one writer, a plain `add` each (ctxalloc::Counter). Threads without an
//    lcore id share the slot kNonEalSlot and must use add_shared().
//  - Attached sources: an allocator that already keeps its own Stats (a thread
//    allocator, a flow-context arena, a global heap, a mempool lane) is attached once
//    with a function that reads them; telemetry sums the sources of each lcore and
//    socket by account when asked. Nothing is copied on the allocation path.
//
// Storage is static (no malloc): kMaxSourcesPerLcore and kMaxSourcesPerSocket sources;
// attach() reports -ENOSPC beyond that. attach/detach/read take one mutex; the
// allocation paths never do.
#pragma once

#include <atomic>
#include <cstdint>

#include "ctxalloc/core/stats.h"
#include "ctxalloc/dpdk/config.h"

namespace ctxalloc::dpdk {

/// The slot of threads that have no lcore id (rte_lcore_id() == LCORE_ID_ANY).
inline constexpr unsigned kNonEalSlot = kMaxLcores;
inline constexpr unsigned kMaxSourcesPerLcore = 16;
inline constexpr unsigned kMaxSourcesPerSocket = 32;

/// What an attached source is; telemetry sums sources by account.
enum class Account : std::uint8_t { thread, context, global_heap, mempool, count };

/// "thread", "context", "global_heap", "mempool".
const char* to_string(Account a) noexcept;

/// Where telemetry reads an allocator's statistics. `read` is called from the telemetry
/// thread while the source is attached, so it must be safe from any thread (Stats
/// counters are). `name` must outlive the attachment.
struct StatsSource {
  Account account = Account::thread;
  const char* name = "";
  Stats (*read)(const void* self) noexcept = nullptr;
  const void* self = nullptr;
};

/// Counters an lcore writes itself. add() is for the owner lcore; add_shared() for the
/// non-EAL slot, which several threads share.
class LcoreCounter {
 public:
  void add(std::uint64_t n = 1) noexcept { c_.add(n); }
  void add_shared(std::uint64_t n = 1) noexcept {
    __atomic_fetch_add(reinterpret_cast<std::uint64_t*>(&c_), n, __ATOMIC_RELAXED);
  }
  std::uint64_t get() const noexcept { return c_.get(); }

 private:
  Counter c_;
};

/// One lcore's own counters (a cache line of its own).
struct alignas(64) LcoreCounters {
  LcoreCounter fallback_to_thread;  ///< a context was exhausted; the thread allocator served
  LcoreCounter fallback_to_global;  ///< the thread allocator was exhausted; the global heap served
  LcoreCounter fallback_failures;   ///< no tier of the fallback chain could serve a request
  LcoreCounter remote_frees;        ///< blocks freed here that another lcore owns
};

/// The figures of LcoreCounters as plain numbers, as telemetry reports them.
struct LcoreCounts {
  std::uint64_t fallback_to_thread = 0;
  std::uint64_t fallback_to_global = 0;
  std::uint64_t fallback_failures = 0;
  std::uint64_t remote_frees = 0;
};

/// Counts an allocator keeps itself (an lcore's thread heap counts its contexts' spills
/// and its own fallbacks), added to the lcore's counters when they are read: nothing
/// extra on the allocation path. `read` adds into `sum` and must be safe from any thread.
struct CountsSource {
  void (*read)(const void* self, LcoreCounts& sum) noexcept = nullptr;
  const void* self = nullptr;
};

/// Memory ctxalloc took on one socket, by kind of page. Written when regions are
/// mapped or released (rare), hence atomics.
struct alignas(64) SocketCounters {
  std::atomic<std::uint64_t> hugepage_bytes{0};     ///< regions on hugepages
  std::atomic<std::uint64_t> normal_page_bytes{0};  ///< regions on normal pages (fallback)
  std::atomic<std::uint64_t> metadata_bytes{0};     ///< bookkeeping (mempool stacks, ...)
};

/// The sum of a slot's sources, by account.
struct AccountTotals {
  Stats by_account[static_cast<unsigned>(Account::count)];
  unsigned sources = 0;

  const Stats& operator[](Account a) const noexcept { return by_account[static_cast<unsigned>(a)]; }
};

class Registry {
 public:
  /// The process-wide registry.
  static Registry& instance() noexcept;

  /// The counters of an lcore (id < kMaxLcores) or of non-EAL threads (kNonEalSlot).
  /// Ids out of range get the non-EAL slot.
  LcoreCounters& lcore(unsigned lcore_id) noexcept;
  /// The counters of a socket (id < kMaxSockets; others get socket 0's).
  SocketCounters& socket(unsigned socket_id) noexcept;

  /// Adds a source to an lcore's (or kNonEalSlot's) accounts. 0, -EINVAL (bad id or no
  /// read function) or -ENOSPC (the slot is full).
  int attach_lcore(unsigned lcore_id, const StatsSource& src) noexcept;
  /// Adds a source to a socket's accounts. 0, -EINVAL or -ENOSPC.
  int attach_socket(unsigned socket_id, const StatsSource& src) noexcept;
  /// Sets the counts source of an lcore (one each). 0, -EINVAL (bad id or no read
  /// function) or -EBUSY (the lcore has one).
  int attach_lcore_counts(unsigned lcore_id, const CountsSource& src) noexcept;
  /// Removes every source (stats and counts) whose `self` is this object; afterwards its
  /// read() is never called again. Returns how many were removed.
  unsigned detach(const void* self) noexcept;

  /// An lcore's counters (lcore(id)) plus what its counts source adds.
  LcoreCounts read_lcore_counts(unsigned lcore_id) const noexcept;

  /// Sums of the sources attached to an lcore / a socket.
  AccountTotals read_lcore(unsigned lcore_id) const noexcept;
  AccountTotals read_socket(unsigned socket_id) const noexcept;

  /// Calls fn(slot, source, stats) for each source of one socket (socket) or lcore, under
  /// the registry's lock: fn must not call back into the registry.
  template <class Fn>
  void for_each_socket_source(unsigned socket_id, Fn&& fn) const {
    Locked l(*this);
    for_each_in(socket_slot(socket_id), kMaxSourcesPerSocket, fn);
  }
  template <class Fn>
  void for_each_lcore_source(unsigned lcore_id, Fn&& fn) const {
    Locked l(*this);
    for_each_in(lcore_slot(lcore_id), kMaxSourcesPerLcore, fn);
  }

  /// Sources refused because a slot was full (telemetry shows it: figures are then
  /// incomplete).
  std::uint64_t refused_sources() const noexcept {
    return refused_.load(std::memory_order_relaxed);
  }

 private:
  Registry() = default;

  struct Locked {
    explicit Locked(const Registry& r) noexcept;
    ~Locked();
    const Registry& r;
  };
  const StatsSource* lcore_slot(unsigned id) const noexcept;
  const StatsSource* socket_slot(unsigned id) const noexcept;
  int attach_in(StatsSource* slot, unsigned n, const StatsSource& src) noexcept;

  template <class Fn>
  static void for_each_in(const StatsSource* slot, unsigned n, Fn& fn) {
    for (unsigned i = 0; i < n; ++i)
      if (slot[i].read != nullptr) fn(slot[i], slot[i].read(slot[i].self));
  }

  LcoreCounters lcores_[kMaxLcores + 1];
  SocketCounters sockets_[kMaxSockets];
  StatsSource lcore_sources_[kMaxLcores + 1][kMaxSourcesPerLcore];
  StatsSource socket_sources_[kMaxSockets][kMaxSourcesPerSocket];
  CountsSource lcore_counts_[kMaxLcores + 1];
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace ctxalloc::dpdk
