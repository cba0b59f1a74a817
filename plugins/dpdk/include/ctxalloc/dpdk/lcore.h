// Per-lcore thread-local allocators on NUMA-local memory, per-socket global heaps and
// per-flow contexts, for DPDK applications (C: ctxalloc_dpdk.h). docs/dpdk.md, "Per-lcore
// allocators", has the whole story; in short:
//
//   rte_eal_init(...);
//   ctxalloc::dpdk::setup();            // main lcore, after EAL: heaps for every lcore
//   // in each lcore's main function (or implicitly on its first flow context):
//   ctxalloc::dpdk::bind_lcore();       // this thread allocates from its lcore's heap
//   ctxalloc::Context* flow = ctxalloc::dpdk::make_flow_context();
//   { ctxalloc::dpdk::FlowScope in(*flow); /* new, pmr containers... land in the flow */ }
//   ctxalloc::dpdk::release_flow_context(flow);   // everything the flow allocated, at once
//   ...
//   rte_eal_mp_wait_lcore();
//   ctxalloc::dpdk::teardown();         // main lcore: everything back, checked
//   rte_eal_cleanup();
//
// Set-up reads the configuration (plugin.h: initialise): for each socket a GlobalHeap on
// that socket's memory, made the switchable allocator's global heap of the node (threads
// that are not lcores, and lcores in global mode, allocate there); for each EAL lcore a
// ThreadHeap on its socket's memory, bounded by its thread_size plus its ready flow
// blocks, with those blocks made ahead of time. Memory is hugepages (a memzone per heap)
// when EAL has them, else normal pages bound to the node, with a logged warning.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/stats.h"
#include "ctxalloc/switchable/context.h"

namespace ctxalloc::dpdk {

/// Builds the per-socket and per-lcore heaps from the configuration. Call after
/// rte_eal_init, on the main lcore, before the lcores allocate. 0 (also when already set
/// up); -EINVAL (bad configuration, or an lcore on a socket the file does not describe);
/// -ENODEV (EAL not initialised); -ENOMEM (memory could not be reserved: the log says
/// which heap, how much and where); -ENOTSUP (hugepages = require, EAL has none).
/// Nothing is left half made on failure.
int setup() noexcept;

/// Names the lcores that make flow contexts (before setup(); ids < 128, n <= 128): each
/// gets an even share of [flows] max_flows (rounded up) and, for growing flows, the flow
/// memory of that share; the other lcores make none (counted as flow_limit_hits). Without
/// this call every lcore set up shares max_flows. An app that splits max_flows over its
/// own flow lcores (ctxfwd) names them here, so that both split it alike. 0; -EINVAL (an
/// id out of range, n 0); -EBUSY (already set up).
int set_flow_lcores(const unsigned* lcore_ids, unsigned n) noexcept;

/// Whether setup() succeeded and teardown() has not run since.
bool is_set_up() noexcept;

/// Makes the calling lcore's heap its thread heap (the switchable allocator's thread-local
/// binding) and, unless its thread_allocator is `none`, puts the thread in thread mode.
/// Must run on the lcore's own thread: EAL runs lcore callbacks on the registering thread,
/// so the binding cannot be made for it at set-up. make_flow_context() binds implicitly.
/// 0; -ENODEV (not set up, or the thread has no lcore id or no heap); -EBUSY (another
/// thread holds the lcore's heap).
int bind_lcore() noexcept;

/// Undoes bind_lcore() on the calling thread (which then allocates from the global heap);
/// blocks it allocated stay valid. 0, or -ENODEV when the thread was not bound.
int unbind_lcore() noexcept;

/// A flow context of the configured kind, on the calling lcore (binding it first if
/// needed): growing (a GrowingContext of the lcore's FlowChunks, on its flow memory) or a
/// fixed bump, bitset or tree context of block_size from the lcore's arena. Null when the
/// thread has no lcore heap, the lcore's share of max_flows is live (no shared counter:
/// each lcore bounds its own share), or the lcore's memory is spent; counted in the
/// lcore's figures (`flow_limit_hits`, `context_failures`).
Context* make_flow_context() noexcept;

/// Frees a flow context and everything allocated in it, spilled blocks included; every
/// pointer into it is dead afterwards. On the lcore that made it only: elsewhere the
/// release is misuse (reported; the context stays). Returns 0, -EINVAL (null), -EPERM
/// (wrong lcore).
int release_flow_context(Context* flow) noexcept;

/// Makes a flow context current for the scope's lifetime (saves and restores the
/// thread's mode and context; a handful of stores).
using FlowScope = ContextScope;

/// Kinds of memory a heap lives on.
enum class Memory : std::uint8_t { none, hugepages, normal_pages };
const char* to_string(Memory m) noexcept;

/// One lcore's allocators. Safe to read from any thread while the lcore runs (counters
/// are read relaxed: a snapshot, each figure exact once the lcore is quiet).
struct LcoreFigures {
  bool present = false;      ///< the lcore has a heap (setup() made one)
  bool bound = false;        ///< a thread is bound to it now
  bool thread_mode = false;  ///< its thread_allocator is tree (none: global mode)
  unsigned socket = 0;
  Memory memory = Memory::none;
  std::size_t page_size = 0;      ///< of the memory behind the heap
  std::size_t region_bytes = 0;   ///< reserved for the lcore (thread_size + ready blocks)
  std::size_t segment_bytes = 0;  ///< of it, taken by the heap now
  std::size_t peak_segment_bytes = 0;
  Stats thread;  ///< the thread heap (size classes + tree)
  std::uint64_t contexts_made = 0;
  std::uint64_t contexts_released = 0;
  std::uint64_t contexts_live = 0;     ///< flow contexts of this lcore not released
  std::uint64_t context_failures = 0;  ///< make_flow_context found no memory
  std::uint64_t flow_limit_hits = 0;   ///< make_flow_context refused: max_flows live
  std::size_t context_bytes = 0;       ///< bytes of one flow context (the config's block)
  std::uint64_t spills_to_thread = 0;  ///< context -> thread fallbacks
  std::uint64_t spills_to_global = 0;  ///< context -> global fallbacks
  std::uint64_t spill_failures = 0;    ///< exhausted contexts nothing could serve
  std::uint64_t spilled_bytes = 0;     ///< bytes of spilled blocks live now
  std::uint64_t thread_to_global = 0;  ///< thread-mode requests the heap passed to the global heap
  std::uint64_t refused = 0;           ///< requests refused because the chain has no global tier
  std::uint64_t remote_received = 0;   ///< blocks other lcores freed back to this one
  // Growing flows (all 0 for fixed kinds).
  bool growing = false;
  std::uint64_t flow_share = 0;        ///< flows this lcore may hold at once
  std::size_t first_chunk_bytes = 0;   ///< its first-chunk memory (bound)
  std::size_t growth_bytes = 0;        ///< its growth memory (bound)
  std::size_t flow_segment_bytes = 0;  ///< of both, taken by its flows now
  std::size_t flow_peak_segment_bytes = 0;
  std::uint64_t chunk_bytes = 0;        ///< in chunks the flows hold now
  std::uint64_t large_bytes = 0;        ///< in the flows' large blocks now
  std::uint64_t refused_budget = 0;     ///< requests beyond a flow's budget
  std::uint64_t refused_memory = 0;     ///< requests nothing could serve
  std::uint64_t refused_too_large = 0;  ///< requests larger than any tier serves
  std::uint64_t peak_contexts = 0;      ///< most flows live at once
  std::uint64_t bytes_in_use = 0;       ///< thread heap + live contexts' blocks + spilled bytes
  std::uint64_t peak_bytes = 0;         ///< the parts' peaks summed (an upper bound of the lcore's)
};

/// One socket's global heap.
struct SocketFigures {
  bool present = false;
  Memory memory = Memory::none;
  std::size_t page_size = 0;
  std::size_t region_bytes = 0;   ///< the configured global_heap
  std::size_t segment_bytes = 0;  ///< taken now (by the heap, and by spills onto it)
  std::size_t peak_segment_bytes = 0;
  Stats heap;              ///< the GlobalHeap
  std::size_t lcores = 0;  ///< lcores with a heap on this socket
};

/// The figures of an lcore (id < 128) or a socket (id < 32); `present` false when there
/// is no such heap.
LcoreFigures lcore_figures(unsigned lcore_id) noexcept;
SocketFigures socket_figures(unsigned socket_id) noexcept;

/// Where a heap's memory really is, by the kernel's word: a move_pages status query on
/// every page of the heap's region (nothing is faulted in or moved). One system call per
/// 512 pages: for start-up checks and reports, not for the data path.
struct Placement {
  unsigned node = 0;             ///< the node the heap belongs on (its socket)
  std::size_t page_size = 0;     ///< the stride of the query (the region's page size)
  std::size_t pages = 0;         ///< pages queried: the whole region
  std::size_t local_pages = 0;   ///< on `node`
  std::size_t remote_pages = 0;  ///< on another node
  int remote_node = -1;          ///< the first such node, -1 when none
  std::size_t absent_pages = 0;  ///< not faulted in yet (normal pages), or not mapped
};
/// The placement of an lcore's heap region (thread heap and ready flow contexts) or of a
/// socket's global heap region. 0; -ENODEV (no such heap); -ENOSYS (the kernel has no
/// NUMA: move_pages is not implemented); another negative errno from move_pages.
int lcore_placement(unsigned lcore_id, Placement* out) noexcept;
int socket_placement(unsigned socket_id, Placement* out) noexcept;

/// What teardown() found and did.
struct TeardownReport {
  unsigned lcores = 0;               ///< lcore heaps torn down (or found busy)
  unsigned sockets = 0;              ///< global heaps
  std::uint64_t bytes_returned = 0;  ///< memory given back (hugepages and normal pages)
  std::uint64_t live_bytes = 0;      ///< bytes still in use when it looked (0 to succeed)
  std::uint64_t live_contexts = 0;   ///< flow contexts not released
  unsigned busy_lcores = 0;          ///< lcores still running or bound on a foreign thread
};

/// Returns everything setup() made: unbinds every EAL lcore on its own thread (workers
/// must be waiting: after rte_eal_mp_wait_lcore), checks that nothing is in use (bytes,
/// contexts, blocks freed remotely but still batched elsewhere), then frees every heap
/// and gives the memory back to DPDK or the kernel. Call on the main lcore, before
/// rte_eal_cleanup. 0 (also when nothing was set up); -EBUSY when an lcore still runs or
/// something is in use: logged per lcore and socket, nothing freed, the heaps stay
/// usable (lcores bind again on their next flow context). `report` may be null.
int teardown(TeardownReport* report = nullptr) noexcept;

}  // namespace ctxalloc::dpdk
