// ctxfwd's run: the context every part works on (no mutable globals), and the one entry
// point main() calls. The steps live in app.cc (set-up and tear-down), worker.h (the
// lcore loops), report.cc (stats line, summary, JSON).
#pragma once

#include <rte_ring.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "counters.h"
#include "eal_plan.h"
#include "embedded_input.h"
#include "flow_allocator.h"
#include "lcore_plan.h"
#include "options.h"
#include "ports.h"

namespace ctxfwd {

/// Where an lcore is in its life.
enum class Phase : int { starting, running, finished, failed };

/// One worker lcore: its job, its counters, and the hand-offs with the main lcore and
/// (with --pipeline) its partner. Written by the lcore; read by the main lcore.
struct LcoreState {
  struct App* app = nullptr;
  LcoreAssignment plan;
  LcoreCounters counters;
  FlowAllocCounters alloc;
  std::atomic<Phase> phase{Phase::starting};
  std::string error;  ///< set before phase becomes failed

  // --pipeline hand-offs. The rx lcore publishes its allocator before the first record
  // goes onto the ring, and sets rx_done after the last; the tx lcore sets tx_done once
  // the ring is drained, after which the rx lcore may release its flows and allocator.
  rte_ring* ring = nullptr;  ///< rx lcore -> tx lcore (set on both)
  std::atomic<void*> allocator{nullptr};
  std::atomic<bool> rx_done{false};
  std::atomic<bool> tx_done{false};
  std::uint64_t latency_cycles = 0;  ///< tx lcore: sum of rx -> tx times of the records
  std::uint64_t latency_records = 0;

  // Written by the lcore before phase becomes finished.
  std::uint64_t start_tsc = 0;
  std::uint64_t stop_tsc = 0;
  std::uint64_t bytes_in_use_start = 0;    ///< after the allocator's init
  std::uint64_t bytes_in_use_at_stop = 0;  ///< when the loop ended, flows still live
  std::uint64_t bytes_in_use_end = 0;      ///< after every flow and record was released
  std::uint64_t flows_live_at_stop = 0;
  std::uint64_t flows_closing_at_stop = 0;  ///< closed flows still lingering at stop

  // --flow-alloc ctxalloc: where the lcore's heap region is, by the kernel's word
  // (ctxalloc::dpdk::lcore_placement at set-up); heap_node -1 when not asked.
  int heap_node = -1;
  std::uint64_t heap_pages = 0, heap_local_pages = 0, heap_remote_pages = 0;
  /// --flow-alloc ctxalloc with growing flows, read before tear-down: the most flow
  /// memory (first-chunk and growth segments) the lcore's flows took, and its refusals.
  bool growing_flows = false;
  std::uint64_t flow_memory_peak_bytes = 0;
  std::uint64_t flow_refused_budget = 0, flow_refused_memory = 0, flow_limit_hits = 0;
  std::uint64_t flow_peak_live = 0;  ///< most of the lcore's flows live at once
};

/// The whole run.
struct App {
  AppOptions opts;
  EalPlan eal;
  EmbeddedInput input;
  bool eal_ready = false;
  std::uint64_t ctxalloc_bytes = 0;  ///< --flow-alloc ctxalloc: what its heaps reserve
  bool ctxalloc_set_up = false;      ///< the per-lcore allocators exist (tear down)
  /// Pages of the ctxalloc heaps (lcores' and sockets') the kernel has on another node
  /// than the heap's socket, found at set-up (0: every heap is on its own node).
  std::uint64_t heap_remote_pages = 0;
  std::string placement;  ///< one line per heap, for the summary
  Ports ports;
  std::uint32_t mbufs = 0;
  std::vector<std::unique_ptr<LcoreState>> lcores;  ///< workers, in plan order
  std::uint32_t flow_lcores = 1;  ///< lcores that own a flow table (forward, pipeline rx)
  /// One flow lcore's share of --max-flows (a process-wide count).
  std::uint32_t max_flows_per_lcore() const {
    return per_lcore_share(opts.resolved_max_flows(), flow_lcores);
  }
  std::atomic<bool> stop{false};
  std::uint64_t tsc_hz = 0;
  std::string stop_reason;
  double wall_seconds = 0;  ///< from the workers' launch to their join
};

/// main(): parses, sets up, runs, reports, tears down. Returns the exit status.
int run_app(int argc, char** argv);

}  // namespace ctxfwd
