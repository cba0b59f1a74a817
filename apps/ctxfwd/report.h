// What ctxfwd tells: the periodic stats line (like testpmd's, one line per period), the
// final summary, and the same summary as JSON (--stats-json). Everything is read from the
// lcores' counters, the flow allocators' own accounting and the ports' statistics.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "app.h"

namespace ctxfwd {

/// Sums over the worker lcores.
struct Totals {
  std::uint64_t rx = 0, tx = 0, passthrough = 0, dropped = 0, malformed = 0;
  std::array<std::uint64_t, kDropReasons> dropped_by{};
  std::array<std::uint64_t, kMalformedCount> malformed_by{};
  std::uint64_t flows_created = 0, flows_ended = 0, flows_expired = 0, flows_failed = 0,
                refusals_kept = 0;
  std::uint64_t flows_live = 0, flows_live_at_stop = 0, flows_released_at_stop = 0;
  std::uint64_t flows_ended_fin = 0, flows_ended_rst = 0, late_segments = 0, flows_closing = 0,
                flows_closing_at_stop = 0, linger_expired = 0, flows_reopened = 0,
                closed_reclaimed = 0, closed_released_at_stop = 0;
  std::uint64_t fallbacks = 0, failures = 0, misuses = 0, cross_lcore_frees = 0, records = 0;
  std::uint64_t bytes_in_use = 0, bytes_in_use_start = 0;
};
Totals totals(const App& app);

/// The previous period's port counters, to turn totals into rates.
struct PeriodState {
  double last_time = 0;
  std::vector<std::uint64_t> rx, tx;  ///< by port id
};

/// One stats line for the period that ends at `now` (seconds since the start).
void print_stats_line(const App& app, PeriodState& prev, double now, std::FILE* out);

/// The final summary, after the lcores stopped.
void print_summary(const App& app, std::FILE* out);

/// The final summary as JSON.
std::string summary_json(const App& app);

/// Writes `text` to `path` (through a temporary file, renamed when complete).
std::string write_file(const std::string& path, const std::string& text);

}  // namespace ctxfwd
