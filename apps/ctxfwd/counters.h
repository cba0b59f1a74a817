// Per-lcore packet and flow counters. The lcore that owns them is their only writer
// (one plain add each); the main lcore reads them for the periodic line and the summary.
#pragma once

#include <array>
#include <cstdint>

#include "ctxalloc/core/stats.h"
#include "packet_parser.h"

namespace ctxfwd {

/// Why a received packet was not transmitted.
enum class Drop : std::uint8_t {
  malformed,            ///< the parser's verdict (see malformed_by)
  flow_table_full,      ///< a new flow while the lcore's table holds max_flows flows
  flow_alloc_failed,    ///< the flow's memory was refused (budget, exhausted heap)
  record_alloc_failed,  ///< --pipeline: no memory for the packet's record
  pipeline_stopped,     ///< --pipeline: still queued on the rx lcore when the run stopped
  tx_failed,            ///< the device did not take it (full tx ring)
};
inline constexpr std::size_t kDropReasons = 6;

/// "malformed", "flow_table_full", ...
const char* to_string(Drop d) noexcept;

struct alignas(64) LcoreCounters {
  ctxalloc::Counter rx;
  ctxalloc::Counter tx;
  ctxalloc::Counter passthrough;
  std::array<ctxalloc::Counter, kDropReasons> dropped{};
  std::array<ctxalloc::Counter, kMalformedCount> malformed_by{};  ///< index: Malformed
  ctxalloc::Counter flows_created;
  ctxalloc::Counter flows_ended;                      ///< by FIN or RST (once per flow)
  std::array<ctxalloc::Counter, 2> flows_ended_by{};  ///< [0] by FIN, [1] by RST
  ctxalloc::Counter late_segments;     ///< packets of a closed (lingering) flow, forwarded
  ctxalloc::Counter flows_closing;     ///< closed flows lingering in the table now
  ctxalloc::Counter linger_expired;    ///< closed flows released when their linger was over
  ctxalloc::Counter flows_reopened;    ///< closed flows released early by a new SYN
  ctxalloc::Counter closed_reclaimed;  ///< closed flows released early for a new flow (table full)
  ctxalloc::Counter closed_released_at_stop;
  ctxalloc::Counter flows_expired;  ///< by the idle timeout
  ctxalloc::Counter flows_failed;   ///< ended because their memory was refused
  ctxalloc::Counter refusals_kept;  ///< --on-flow-refusal keep: packets refused, flow kept
  ctxalloc::Counter flows_live;     ///< open flows in the table now (closed ones not included)
  ctxalloc::Counter flows_released_at_stop;
  ctxalloc::Counter records_sent;  ///< --pipeline: records handed to the tx lcore

  void drop(Drop d, std::uint64_t n = 1) noexcept { dropped[static_cast<std::size_t>(d)].add(n); }
  std::uint64_t dropped_total() const noexcept {
    std::uint64_t n = 0;
    for (const auto& c : dropped)
      n += c.get();
    return n;
  }
};

}  // namespace ctxfwd
