// The per-lcore and per-socket heaps behind ctxalloc/dpdk/lcore.h: what set-up builds,
// the API and telemetry read, and tear-down frees. Each heap object lives in its own
// mapping bound to its socket (the thread heap's size-class lists are touched on every
// allocation, so they sit on the lcore's node too), made with mmap rather than malloc or
// rte_malloc: it must not depend on the allocator it implements, and it must outlive
// rte_eal_cleanup for threads that exit after it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ctxalloc/allocators/context_allocator.h"
#include "ctxalloc/core/stats.h"
#include "ctxalloc/dpdk/config.h"
#include "ctxalloc/switchable/global_heap.h"
#include "ctxalloc/switchable/segment_source.h"
#include "ctxalloc/switchable/thread_heap.h"
#include "detail/segment_region.h"

namespace ctxalloc::dpdk::detail {

/// One socket's global heap on the socket's memory.
struct SocketHeap {
  SocketHeap(unsigned socket_id, const GlobalHeapOptions& options) noexcept
      : socket(socket_id), segments(region.backend(), 0), heap(segments, options) {}

  unsigned socket;
  SegmentRegion region;    // first: the source and heap give their segments back to it
  SegmentSource segments;  // bounded by the region itself
  GlobalHeap heap;
  std::size_t mapping_bytes = 0;  // of this object's own mapping
};

/// One lcore's thread heap, its flow memory and its counters. The counters are written by
/// the lcore (owner) and read by anyone.
///
/// Growing flows ([flows] kind = growing): one region holds the thread allocator's
/// segments (thread_size), the first-chunk memory (the lcore's share of max_flows first
/// chunks, whole segments) and the growth memory (growth_size); three sources bounded by
/// those sizes take segments from it, so that admitting a flow never waits on memory a
/// long flow took, and a long flow's growth never takes the thread allocator's.
struct LcoreHeap {
  LcoreHeap(unsigned lcore_id, unsigned socket_id, std::size_t limit, std::size_t first_limit,
            std::size_t growth_limit, GlobalHeap& global) noexcept
      : lcore(lcore_id),
        socket(socket_id),
        segments(region.backend(), limit),
        first_chunks(region.backend(), first_limit),
        growth(region.backend(), growth_limit),
        heap(segments, global) {}

  unsigned lcore;
  unsigned socket;
  SegmentRegion region;
  SegmentSource segments;      // bounded by thread_size + ready blocks
  SegmentSource first_chunks;  // growing flows' first chunks (their share of max_flows)
  SegmentSource growth;        // growing flows' further chunks, children, large blocks
  ThreadHeap heap;
  /// Flows this lcore may hold at once: its share of max_flows (0: it makes none).
  std::uint64_t flow_share = 0;
  bool thread_mode = true;  // thread_allocator tree: bind puts the thread in thread mode
  std::size_t mapping_bytes = 0;
  /// The thread bound to the heap (pthread_self()), 0 when none. Written by that
  /// thread (bind/unbind) and read by tear-down, which runs when the lcores wait.
  std::atomic<unsigned long> bound_thread{0};

  Counter contexts_made;
  Counter contexts_released;
  Counter context_failures;
  Counter flow_limit_hits;
  Counter peak_context_bytes;  // highest live contexts x block bytes, when one was made
};

/// Process-wide state of the per-lcore set-up. Heap pointers are published with release
/// stores once complete; readers (API, telemetry) load them with acquire.
struct LcoreRuntime {
  std::atomic<bool> ready{false};
  std::atomic<LcoreHeap*> lcores[kMaxLcores] = {};
  std::atomic<SocketHeap*> sockets[kMaxSockets] = {};
  // Flow settings from the configuration, fixed while set up.
  bool growing = false;
  Lifetime flow_lifetime = Lifetime::short_lived;
  std::size_t flow_bytes = 0;  // fixed kinds: the block; growing: the first chunk
  std::uint32_t max_flows = 0;
  // The lcores that make flows (set_flow_lcores before setup; none: every lcore set up).
  bool flow_lcores_set = false;
  bool flow_lcore[kMaxLcores] = {};
};

/// The runtime (static storage).
LcoreRuntime& lcore_runtime() noexcept;

/// Bytes in use of an lcore heap: its thread heap, its live contexts' blocks and their
/// spilled blocks.
std::uint64_t lcore_bytes_in_use(const LcoreHeap& h) noexcept;

/// The lifetime (hence the context allocator's kind) of a flow kind from the config.
Lifetime lifetime_of(AllocatorKind flow_kind) noexcept;

/// The calling thread's lcore heap, or null (no lcore id, not set up, no heap).
inline LcoreHeap* heap_of_lcore(unsigned lcore_id) noexcept {
  if (lcore_id >= kMaxLcores) return nullptr;
  return lcore_runtime().lcores[lcore_id].load(std::memory_order_acquire);
}

/// The binding itself, on the calling thread (lcore_api.cc); teardown and the lcore
/// callbacks use them too.
int bind_heap(LcoreHeap& h) noexcept;
void unbind_heap(LcoreHeap& h) noexcept;

}  // namespace ctxalloc::dpdk::detail
