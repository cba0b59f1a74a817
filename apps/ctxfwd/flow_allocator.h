// The seam between ctxfwd and where a flow's memory comes from (--flow-alloc). Each
// worker lcore owns one FlowAllocator. A new flow acquires a Context; while the flow's
// packets are processed a Scope makes that context current; the flow's containers
// allocate from resource(context) (a std::pmr::memory_resource); when the flow ends,
// release(context) frees everything the flow allocated at once, whatever the containers
// still hold. --pipeline adds small per-packet records that the rx lcore allocates and
// another lcore frees.
//
// Threading: init, acquire, resource, release, allocate_record and Scope run on the
// owner lcore only; free_record may run on any lcore, concurrently with the owner. The
// allocator is destroyed on its owner lcore after every record has been freed.
//
// Implementations: TrackedFlowAllocator<MallocBackend> ("malloc"),
// TrackedFlowAllocator<RteMallocBackend> ("rte_malloc"); "ctxalloc" plugs in here (see
// docs/ctxfwd.md, "The flow allocator seam").
#pragma once

#include <pthread.h>

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string>
#include <string_view>

#include "ctxalloc/core/stats.h"

namespace ctxfwd {

/// One lcore's flow-memory accounting. The owner lcore writes every field except the
/// two `remote_*` ones, which other lcores add to when they free the owner's records.
struct FlowAllocCounters {
  ctxalloc::Counter bytes_in_use;       ///< owner's view: allocated minus freed by the owner
  ctxalloc::Counter peak_bytes;         ///< highest in_use() seen by the owner
  ctxalloc::Counter contexts_live;      ///< flows holding a context now
  ctxalloc::Counter contexts_acquired;  ///< contexts handed out in all
  ctxalloc::Counter fallbacks;          ///< requests served by a fallback source
  ctxalloc::Counter failures;           ///< requests refused (budget, exhausted memory)
  ctxalloc::Counter misuses;            ///< foreign pointers and the like, counted
  ctxalloc::Counter records;            ///< pipeline records allocated
  ctxalloc::Counter metadata_bytes;     ///< fixed memory taken at init (context pool)
  // Written by other lcores: on their own cache line, so that their atomic adds do not
  // steal the owner's line on every free.
  alignas(64) std::atomic<std::uint64_t> remote_freed_bytes{0};
  std::atomic<std::uint64_t> cross_lcore_frees{0};

  /// Bytes held now. Exact once the lcores have stopped; while they run, a reader may
  /// see a remote free before the matching allocation, hence the clamp.
  std::uint64_t in_use() const noexcept {
    const std::uint64_t remote = remote_freed_bytes.load(std::memory_order_relaxed);
    const std::uint64_t local = bytes_in_use.get();
    return local > remote ? local - remote : 0;
  }
  /// The owner took `n` bytes.
  void on_allocate(std::uint64_t n) noexcept {
    bytes_in_use.add(n);
    peak_bytes.raise_to(in_use());
  }
  /// The owner gave `n` bytes back.
  void on_free(std::uint64_t n) noexcept { bytes_in_use.sub(n); }
  /// Another lcore gave `n` bytes of the owner's back.
  void on_remote_free(std::uint64_t n) noexcept {
    remote_freed_bytes.fetch_add(n, std::memory_order_relaxed);
    cross_lcore_frees.fetch_add(1, std::memory_order_relaxed);
  }
  /// Counts a pipeline record of `n` bytes the owner asked for: `p`, or null (a failure).
  void* on_record(void* p, std::uint64_t n) noexcept {
    if (p == nullptr) [[unlikely]] {
      failures.add(1);
      return nullptr;
    }
    records.add(1);
    on_allocate(n);
    return p;
  }
  /// Counts the free of a record of `n` bytes by the calling thread, before the free
  /// itself: once the memory is back, the owner may already reuse it.
  void on_record_free(pthread_t owner, std::uint64_t n) noexcept {
    if (pthread_equal(pthread_self(), owner))
      on_free(n);
    else
      on_remote_free(n);
  }
};

/// What a worker lcore's FlowAllocator is built with.
struct FlowAllocConfig {
  unsigned lcore_id = 0;
  int socket_id = 0;                      ///< the lcore's NUMA socket (SOCKET_ID_ANY: -1)
  std::uint32_t max_flows = 0;            ///< contexts live at once, at most
  std::uint32_t context_bytes = 0;        ///< one flow's memory budget, bookkeeping included
  FlowAllocCounters* counters = nullptr;  ///< owned by the app; outlives the allocator
};

/// A source of per-flow memory contexts, one per worker lcore (see the file comment).
template <class A>
concept FlowAllocator = std::default_initializable<A> &&
    requires(A& a, const FlowAllocConfig& cfg, typename A::Context& ctx, void* p, std::size_t n) {
  { A::kName } -> std::convertible_to<std::string_view>;
  /// Sets up on the owner lcore; an empty string, or why it failed.
  { a.init(cfg) } -> std::same_as<std::string>;
  /// A fresh context, or nullptr when none is left (counted in failures).
  { a.acquire() }
  noexcept->std::same_as<typename A::Context*>;
  /// The memory_resource the flow's containers allocate from.
  { a.resource(ctx) }
  noexcept->std::same_as<std::pmr::memory_resource*>;
  /// Frees all the flow's memory at once; the context may be handed out again.
  { a.release(ctx) }
  noexcept->std::same_as<void>;
  /// `n` bytes of the owner lcore's memory for a pipeline record (nullptr: none).
  { a.allocate_record(n) }
  noexcept->std::same_as<void*>;
  /// Frees a record, from any lcore (cross-lcore frees are counted).
  { a.free_record(p, n) }
  noexcept->std::same_as<void>;
} &&
    // RAII: the context is current while a Scope lives. Not copyable, so that a scope
    // cannot be restored twice.
    std::constructible_from<typename A::Scope, A&, typename A::Context&> &&
    !std::copy_constructible<typename A::Scope>;

}  // namespace ctxfwd
