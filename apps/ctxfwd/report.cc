#include "report.h"

#include <rte_ethdev.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string_view>

#include "json_writer.h"

namespace ctxfwd {
namespace {

constexpr Drop kDrops[] = {Drop::malformed,         Drop::flow_table_full,
                           Drop::flow_alloc_failed, Drop::record_alloc_failed,
                           Drop::pipeline_stopped,  Drop::tx_failed};
static_assert(std::size(kDrops) == kDropReasons);

rte_eth_stats port_stats(std::uint16_t port) {
  rte_eth_stats s{};
  rte_eth_stats_get(port, &s);
  return s;
}

// "123.4 KiB"
std::string bytes_text(std::uint64_t b) {
  char buf[32];
  if (b < 1024)
    std::snprintf(buf, sizeof buf, "%" PRIu64 " B", b);
  else if (b < (std::uint64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  else
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  return buf;
}

double forwarding_seconds(const App& app) {
  std::uint64_t cycles = 0;
  for (const auto& st : app.lcores)
    if (st->stop_tsc > st->start_tsc) cycles = std::max(cycles, st->stop_tsc - st->start_tsc);
  return app.tsc_hz == 0 ? 0 : static_cast<double>(cycles) / static_cast<double>(app.tsc_hz);
}

std::uint64_t memory_bound(const App& app) {
  std::uint64_t flow_lcores = 0;
  for (const auto& st : app.lcores)
    if (st->plan.role == Role::forward || st->plan.role == Role::pipeline_rx) ++flow_lcores;
  return flow_lcores * app.max_flows_per_lcore() * app.opts.resolved_flow_context_bytes();
}

// out += " name n". (Appending piecewise also avoids GCC 12's false -Wrestrict on
// `" " + std::string(...)`.)
void append_count(std::string& out, std::string_view name, std::uint64_t n) {
  out += ' ';
  out += name;
  out += ' ';
  out += std::to_string(n);
}

std::string role_text(const LcoreState& st) {
  std::string s = to_string(st.plan.role);
  if (!st.plan.rx_ports.empty()) {
    s += ", rx ports";
    for (std::uint16_t p : st.plan.rx_ports) {
      s += ' ';
      s += std::to_string(p);
    }
  }
  if (st.plan.role == Role::pipeline_tx) {
    s += ',';
    append_count(s, "for lcore", st.app->lcores[st.plan.peer]->plan.lcore);
  }
  return s;
}

void json_lcore(ctxgen::JsonWriter& w, const LcoreState& st, const App& app) {
  const LcoreCounters& c = st.counters;
  const FlowAllocCounters& a = st.alloc;
  w.begin_object();
  w.value("lcore", std::uint64_t{st.plan.lcore});
  w.value("socket", static_cast<std::uint64_t>(std::max(st.plan.socket, 0)));
  w.value("role", to_string(st.plan.role));
  w.begin_array("rx_ports");
  for (std::uint16_t p : st.plan.rx_ports)
    w.value("", std::uint64_t{p});
  w.end_array();
  w.value("rx_packets", c.rx.get());
  w.value("tx_packets", c.tx.get());
  w.value("dropped", c.dropped_total());
  w.value("flows_created", c.flows_created.get());
  w.value("flows_live_at_stop", st.flows_live_at_stop);
  w.value("bytes_in_use_start", st.bytes_in_use_start);
  w.value("bytes_in_use_at_stop", st.bytes_in_use_at_stop);
  w.value("bytes_in_use", a.in_use());
  w.value("peak_bytes", a.peak_bytes.get());
  w.value("metadata_bytes", a.metadata_bytes.get());
  w.value("contexts_acquired", a.contexts_acquired.get());
  w.value("contexts_live", a.contexts_live.get());
  w.value("fallbacks", a.fallbacks.get());
  w.value("failures", a.failures.get());
  w.value("misuses", a.misuses.get());
  w.value("records", a.records.get());
  w.value("cross_lcore_frees", a.cross_lcore_frees.load(std::memory_order_relaxed));
  if (st.growing_flows) {
    w.value("flow_memory_peak_bytes", st.flow_memory_peak_bytes);
    w.value("flow_refused_budget", st.flow_refused_budget);
    w.value("flow_refused_memory", st.flow_refused_memory);
    w.value("flow_limit_hits", st.flow_limit_hits);
    w.value("flow_peak_live", st.flow_peak_live);
  }
  if (st.heap_node >= 0) {
    w.value("heap_node", static_cast<std::uint64_t>(st.heap_node));
    w.value("heap_pages", st.heap_pages);
    w.value("heap_local_pages", st.heap_local_pages);
    w.value("heap_remote_pages", st.heap_remote_pages);
  }
  const double secs =
      app.tsc_hz == 0 || st.stop_tsc <= st.start_tsc
          ? 0.0
          : static_cast<double>(st.stop_tsc - st.start_tsc) / static_cast<double>(app.tsc_hz);
  w.value("seconds", secs);
  w.end_object();
}

void json_ports(ctxgen::JsonWriter& w, const App& app) {
  w.begin_array("ports");
  for (std::uint16_t p : app.ports.enabled) {
    const rte_eth_stats s = port_stats(p);
    w.begin_object();
    w.value("port", std::uint64_t{p});
    w.value("name", app.ports.name[p]);
    w.value("mac", mac_text(app.ports.mac[p]));
    w.value("dst_port", std::uint64_t{app.ports.dst[p]});
    w.value("rx_packets", s.ipackets);
    w.value("tx_packets", s.opackets);
    w.value("rx_missed", s.imissed);
    w.value("rx_nombuf", s.rx_nombuf);
    w.value("tx_errors", s.oerrors);
    w.end_object();
  }
  w.end_array();
}

}  // namespace

const char* to_string(Drop d) noexcept {
  switch (d) {
    case Drop::malformed:
      return "malformed";
    case Drop::flow_table_full:
      return "flow_table_full";
    case Drop::flow_alloc_failed:
      return "flow_alloc_failed";
    case Drop::record_alloc_failed:
      return "record_alloc_failed";
    case Drop::pipeline_stopped:
      return "pipeline_stopped";
    case Drop::tx_failed:
      return "tx_failed";
  }
  return "?";
}

Totals totals(const App& app) {
  Totals t;
  for (const auto& st : app.lcores) {
    const LcoreCounters& c = st->counters;
    const FlowAllocCounters& a = st->alloc;
    t.rx += c.rx.get();
    t.tx += c.tx.get();
    t.passthrough += c.passthrough.get();
    for (std::size_t i = 0; i < kDropReasons; ++i)
      t.dropped_by[i] += c.dropped[i].get();
    for (std::size_t i = 0; i < kMalformedCount; ++i)
      t.malformed_by[i] += c.malformed_by[i].get();
    t.flows_created += c.flows_created.get();
    t.flows_ended += c.flows_ended.get();
    t.flows_expired += c.flows_expired.get();
    t.flows_failed += c.flows_failed.get();
    t.refusals_kept += c.refusals_kept.get();
    t.flows_live += c.flows_live.get();
    t.flows_live_at_stop += st->flows_live_at_stop;
    t.flows_released_at_stop += c.flows_released_at_stop.get();
    t.flows_ended_fin += c.flows_ended_by[0].get();
    t.flows_ended_rst += c.flows_ended_by[1].get();
    t.late_segments += c.late_segments.get();
    t.flows_closing += c.flows_closing.get();
    t.flows_closing_at_stop += st->flows_closing_at_stop;
    t.linger_expired += c.linger_expired.get();
    t.flows_reopened += c.flows_reopened.get();
    t.closed_reclaimed += c.closed_reclaimed.get();
    t.closed_released_at_stop += c.closed_released_at_stop.get();
    t.fallbacks += a.fallbacks.get();
    t.failures += a.failures.get();
    t.misuses += a.misuses.get();
    t.cross_lcore_frees += a.cross_lcore_frees.load(std::memory_order_relaxed);
    t.records += a.records.get();
    t.bytes_in_use += a.in_use();
    t.bytes_in_use_start += st->bytes_in_use_start;
  }
  for (std::uint64_t d : t.dropped_by)
    t.dropped += d;
  t.malformed = t.dropped_by[static_cast<std::size_t>(Drop::malformed)];
  return t;
}

void print_stats_line(const App& app, PeriodState& prev, double now, std::FILE* out) {
  const double dt = now - prev.last_time;
  std::string line;
  char buf[160];
  std::snprintf(buf, sizeof buf, "[%7.1f s]", now);
  line += buf;
  const std::size_t n = app.ports.dst.size();
  prev.rx.resize(n, 0);
  prev.tx.resize(n, 0);
  for (std::uint16_t p : app.ports.enabled) {
    const rte_eth_stats s = port_stats(p);
    const auto rate = [dt](std::uint64_t now_n, std::uint64_t before) {
      return dt > 0 && now_n >= before ? static_cast<std::uint64_t>((now_n - before) / dt) : 0;
    };
    std::snprintf(buf, sizeof buf, " port %u rx-pps %" PRIu64 " tx-pps %" PRIu64 " |", p,
                  rate(s.ipackets, prev.rx[p]), rate(s.opackets, prev.tx[p]));
    line += buf;
    prev.rx[p] = s.ipackets;
    prev.tx[p] = s.opackets;
  }
  prev.last_time = now;
  const Totals t = totals(app);
  std::snprintf(buf, sizeof buf,
                " flows live %" PRIu64 " created %" PRIu64 " ended %" PRIu64 " expired %" PRIu64
                " closing %" PRIu64 " late %" PRIu64 " |",
                t.flows_live, t.flows_created, t.flows_ended, t.flows_expired, t.flows_closing,
                t.late_segments);
  line += buf;
  for (const auto& st : app.lcores) {
    if (st->plan.role != Role::forward && st->plan.role != Role::pipeline_rx) continue;
    std::snprintf(buf, sizeof buf, " lcore %u mem %s peak %s |", st->plan.lcore,
                  bytes_text(st->alloc.in_use()).c_str(),
                  bytes_text(st->alloc.peak_bytes.get()).c_str());
    line += buf;
  }
  std::snprintf(buf, sizeof buf,
                " fallbacks %" PRIu64 " failures %" PRIu64 " | dropped %" PRIu64
                " malformed %" PRIu64,
                t.fallbacks, t.failures, t.dropped, t.malformed);
  line += buf;
  std::fprintf(out, "%s\n", line.c_str());
  std::fflush(out);
}

void print_summary(const App& app, std::FILE* out) {
  const Totals t = totals(app);
  const double fwd = forwarding_seconds(app);
  std::fprintf(out, "=== ctxfwd summary: --flow-alloc %s, %s, stopped by %s\n",
               std::string(to_string(app.opts.flow_alloc)).c_str(),
               app.opts.pipeline ? "pipeline" : "run to completion", app.stop_reason.c_str());
  std::fprintf(out,
               "packets    rx %" PRIu64 "  tx %" PRIu64 "  dropped %" PRIu64
               "  passthrough %" PRIu64 "  (%.2f Mpps rx over %.2f s)\n",
               t.rx, t.tx, t.dropped, t.passthrough,
               fwd > 0 ? static_cast<double>(t.rx) / fwd / 1e6 : 0.0, fwd);
  std::string drops;
  for (Drop d : kDrops) {
    const std::uint64_t n = t.dropped_by[static_cast<std::size_t>(d)];
    if (n > 0) append_count(drops, to_string(d), n);
  }
  std::fprintf(out, "dropped   %s\n", drops.empty() ? " none" : drops.c_str());
  std::string mal;
  for (std::size_t i = 1; i < kMalformedCount; ++i)
    if (t.malformed_by[i] > 0)
      append_count(mal, to_string(static_cast<Malformed>(i)), t.malformed_by[i]);
  std::fprintf(out, "malformed  %" PRIu64 "%s%s\n", t.malformed, mal.empty() ? "" : ":",
               mal.c_str());
  std::fprintf(out,
               "flows      created %" PRIu64 "  ended %" PRIu64 " (FIN/RST)  expired %" PRIu64
               "  failed %" PRIu64 "  live at stop %" PRIu64 " (then released)\n",
               t.flows_created, t.flows_ended, t.flows_expired, t.flows_failed,
               t.flows_live_at_stop);
  std::fprintf(out,
               "closed     by FIN %" PRIu64 "  by RST %" PRIu64 "  late segments %" PRIu64
               "  linger over %" PRIu64 "  reopened by SYN %" PRIu64 "  reclaimed %" PRIu64
               "  lingering at stop %" PRIu64 " (linger %u ms)\n",
               t.flows_ended_fin, t.flows_ended_rst, t.late_segments, t.linger_expired,
               t.flows_reopened, t.closed_reclaimed, t.flows_closing_at_stop,
               app.opts.close_linger_ms);
  std::fprintf(out,
               "allocator  %s: fallbacks %" PRIu64 "  failures %" PRIu64 "  misuses %" PRIu64
               "  cross-lcore frees %" PRIu64 "  bound %s per run\n",
               std::string(to_string(app.opts.flow_alloc)).c_str(), t.fallbacks, t.failures,
               t.misuses, t.cross_lcore_frees, bytes_text(memory_bound(app)).c_str());
  if (!app.placement.empty())
    std::fprintf(out, "placement  %s%s\n", app.placement.c_str(),
                 app.heap_remote_pages > 0 ? "  (REMOTE MEMORY)" : "");
  for (const auto& st : app.lcores) {
    std::fprintf(out,
                 "lcore %-4u socket %d, %s: rx %" PRIu64 " tx %" PRIu64
                 "; bytes in use %s (start %s, at stop %s), peak %s\n",
                 st->plan.lcore, std::max(st->plan.socket, 0), role_text(*st).c_str(),
                 st->counters.rx.get(), st->counters.tx.get(),
                 bytes_text(st->alloc.in_use()).c_str(), bytes_text(st->bytes_in_use_start).c_str(),
                 bytes_text(st->bytes_in_use_at_stop).c_str(),
                 bytes_text(st->alloc.peak_bytes.get()).c_str());
    if (st->plan.role == Role::pipeline_tx && st->latency_records > 0)
      std::fprintf(
          out, "           pipeline rx -> tx latency %.2f us mean over %" PRIu64 " records\n",
          static_cast<double>(st->latency_cycles) / static_cast<double>(st->latency_records) /
              (static_cast<double>(app.tsc_hz) / 1e6),
          st->latency_records);
  }
  for (std::uint16_t p : app.ports.enabled) {
    const rte_eth_stats s = port_stats(p);
    std::fprintf(out,
                 "port %-5u %s %s -> port %u: rx %" PRIu64 " tx %" PRIu64 " rx-missed %" PRIu64
                 " tx-errors %" PRIu64 "\n",
                 p, app.ports.name[p].c_str(), mac_text(app.ports.mac[p]).c_str(), app.ports.dst[p],
                 s.ipackets, s.opackets, s.imissed, s.oerrors);
  }
  std::fflush(out);
}

std::string summary_json(const App& app) {
  const Totals t = totals(app);
  const double fwd = forwarding_seconds(app);
  ctxgen::JsonWriter w;
  w.begin_object();
  w.value("generator", "ctxfwd");
  w.value("format", std::uint64_t{1});
  w.value("flow_alloc", to_string(app.opts.flow_alloc));
  w.value("mbuf_pool", app.opts.mbuf_pool);
  w.value("pipeline", app.opts.pipeline);
  w.value("mac_updating", app.opts.mac_updating);
  w.value("max_flows", std::uint64_t{app.opts.resolved_max_flows()});
  w.value("max_flows_per_lcore", std::uint64_t{app.max_flows_per_lcore()});
  w.value("idle_timeout_ms", std::uint64_t{app.opts.resolved_idle_timeout_ms()});
  w.value("close_linger_ms", std::uint64_t{app.opts.close_linger_ms});
  w.value("flow_context_bytes", std::uint64_t{app.opts.resolved_flow_context_bytes()});
  w.value("config", app.opts.config_path);
  w.value("hugepages", app.eal.hugepages);
  w.value("embedded_default", app.eal.embedded);
  w.value("stop_reason", app.stop_reason);
  w.value("seconds", app.wall_seconds);
  w.value("forwarding_seconds", fwd);
  w.value("rx_pps", fwd > 0 ? static_cast<double>(t.rx) / fwd : 0.0);
  w.value("rx_packets", t.rx);
  w.value("tx_packets", t.tx);
  w.value("passthrough", t.passthrough);
  w.value("dropped", t.dropped);
  w.begin_object("dropped_by_reason");
  for (Drop d : kDrops)
    w.value(to_string(d), t.dropped_by[static_cast<std::size_t>(d)]);
  w.end_object();
  w.value("malformed", t.malformed);
  w.begin_object("malformed_by_reason");
  for (std::size_t i = 1; i < kMalformedCount; ++i)
    w.value(to_string(static_cast<Malformed>(i)), t.malformed_by[i]);
  w.end_object();
  w.value("flows_created", t.flows_created);
  w.value("flows_ended", t.flows_ended);
  w.value("flows_expired", t.flows_expired);
  w.value("flows_failed", t.flows_failed);
  w.value("refusals_kept", t.refusals_kept);
  w.value("flows_live", t.flows_live_at_stop);
  w.value("flows_released_at_stop", t.flows_released_at_stop);
  w.value("flows_ended_fin", t.flows_ended_fin);
  w.value("flows_ended_rst", t.flows_ended_rst);
  w.value("late_segments", t.late_segments);
  w.value("flows_closing", t.flows_closing_at_stop);
  w.value("linger_expired", t.linger_expired);
  w.value("flows_reopened", t.flows_reopened);
  w.value("closed_reclaimed", t.closed_reclaimed);
  w.value("closed_released_at_stop", t.closed_released_at_stop);
  w.value("alloc_fallbacks", t.fallbacks);
  w.value("alloc_failures", t.failures);
  w.value("alloc_misuses", t.misuses);
  w.value("cross_lcore_frees", t.cross_lcore_frees);
  w.value("pipeline_records", t.records);
  w.value("memory_bound_bytes", memory_bound(app));
  w.value("bytes_in_use_start", t.bytes_in_use_start);
  w.value("bytes_in_use", t.bytes_in_use);
  w.value("heap_remote_pages", app.heap_remote_pages);
  w.begin_array("lcores");
  for (const auto& st : app.lcores)
    json_lcore(w, *st, app);
  w.end_array();
  json_ports(w, app);
  w.end_object();
  return w.text();
}

std::string write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return "cannot write " + tmp;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    return "writing " + tmp + " failed";
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return "cannot rename " + tmp + " to " + path;
  }
  return {};
}

}  // namespace ctxfwd
