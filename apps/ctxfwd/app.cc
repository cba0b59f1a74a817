// The run, step by step: command line -> EAL plan (hugepages or not, embedded default)
// -> rte_eal_init -> ports -> lcore roles -> launch the workers -> main loop (stats,
// deadline, signals) -> stop and join -> summary -> tear-down.
//
// SIGINT and SIGTERM are blocked in every thread (the mask is set before EAL creates its
// threads, which inherit it) and taken by the main lcore with sigtimedwait between two
// stats lines: no handler, no global flag, and the main lcore sleeps instead of polling,
// which matters on a 2-core machine where it may share a core with a worker.
#include "app.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/plugin.h"

#include "flow_alloc_dispatch.h"
#include "report.h"
#include "worker.h"

namespace ctxfwd {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

void log_line(const std::string& s) {
  std::printf("ctxfwd: %s\n", s.c_str());
  std::fflush(stdout);
}
void log_error(const std::string& s) {
  std::fflush(stdout);
  std::fprintf(stderr, "ctxfwd: error: %s\n", s.c_str());
}

double monotonic_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// The EAL plan: embedded default when no device is named and no NIC is bound to a DPDK
// driver; hugepages or --no-huge by what is free.
std::string plan_eal_args(App& app, const std::vector<std::string>& eal_args) {
  const EalArgScan scan = scan_eal_args(eal_args);
  const bool embedded = !scan.devices && (scan.no_pci || dpdk_bound_pci_devices() == 0);
  // EAL's -h / --help prints DPDK's usage and exits inside rte_eal_init, past tear_down:
  // generate no input for it (it would be left in $TMPDIR) and say where ctxfwd's own are.
  const bool eal_help = std::ranges::any_of(
      eal_args.begin() + std::min<std::size_t>(1, eal_args.size()), eal_args.end(),
      [](const std::string& a) { return a == "-h" || a == "--help"; });
  if (eal_help) log_line("EAL's options follow; ctxfwd's own: ctxfwd -- --help");
  EmbeddedDevices dev;
  if (embedded && !eal_help) {
    if (auto e = prepare_embedded_input(app.opts, app.input); !e.empty()) return e;
    log_line("embedded default input: " + app.input.description);
    dev.rx_pcap = app.input.rx_pcap;
    dev.tx_pcap = app.opts.tx_pcap;
    // A capture written once to a pcap ends: stop when all of it has been received.
    if (!dev.tx_pcap.empty() && app.opts.max_packets == 0) app.opts.max_packets = app.input.packets;
  } else if (!app.opts.rx_pcap.empty() || !app.opts.tx_pcap.empty()) {
    return "--rx-pcap / --tx-pcap only apply to the embedded default; with EAL devices given, "
           "name the pcap in --vdev=net_pcap0,rx_pcap=...,tx_pcap=...";
  }
  MemoryNeed need;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  need.workers = static_cast<std::uint32_t>(std::max(1L, cpus - 1));
  const bool replayed = embedded && dev.tx_pcap.empty();
  // As mbufs_needed() will count them once the ports are known: two ports' descriptors
  // and a replayed capture, at least 8191.
  const std::uint64_t replayed_packets = replayed ? app.input.packets : 0;
  need.mbufs = app.opts.mbufs != 0 ? app.opts.mbufs
                                   : std::max<std::uint64_t>(
                                         8191, 2 * (kRxDesc + kTxDesc) + 1024 + replayed_packets);
  need.max_flows = per_lcore_share(app.opts.resolved_max_flows(), need.workers);
  need.flow_context_bytes = app.opts.resolved_flow_context_bytes();
  need.flow_memory_from_dpdk = app.opts.flow_alloc == FlowAllocKind::rte_malloc;
  need.ctxalloc_bytes = app.ctxalloc_bytes;
  if (auto e = plan_eal(eal_args, scan, embedded, dev, probe_hugepages(), estimate_memory_mb(need),
                        static_cast<long>(getpid()), app.eal);
      !e.empty())
    return e;
  if (eal_help) return {};  // no port and no memory: EAL exits after its usage
  for (const std::string& note : app.eal.notes)
    log_line(note);
  return {};
}

std::string init_eal(App& app) {
  std::vector<char*> argv;
  for (std::string& a : app.eal.args)
    argv.push_back(a.data());
  std::string line = "EAL arguments:";
  for (const std::string& a : app.eal.args)
    line += " " + a;
  log_line(line);
  const int rc = rte_eal_init(static_cast<int>(argv.size()), argv.data());
  if (rc < 0) return std::string("rte_eal_init: ") + rte_strerror(rte_errno);
  app.eal_ready = true;
  app.tsc_hz = rte_get_tsc_hz();
  return {};
}

// Ports, mbuf pools and the workers' roles; rings for --pipeline.
std::string set_up(App& app) {
  if (auto e = find_ports(app.opts, app.ports); !e.empty()) return e;
  for (const std::string& w : kernel_port_warnings(app.ports, app.opts.mac_updating))
    log_line("warning: " + w);
  std::vector<LcoreInfo> workers;
  unsigned lcore = 0;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    workers.push_back({lcore, static_cast<int>(rte_lcore_to_socket_id(lcore))});
  }
  std::vector<PortInfo> ports;
  for (std::uint16_t p : app.ports.enabled)
    ports.push_back({p, app.ports.socket[p]});
  std::vector<LcoreAssignment> plan;
  if (auto e = plan_lcores(workers, ports, app.opts.pipeline, plan); !e.empty()) return e;
  for (const LcoreAssignment& a : plan) {
    auto st = std::make_unique<LcoreState>();
    st->app = &app;
    st->plan = a;
    app.lcores.push_back(std::move(st));
  }
  app.flow_lcores = 0;
  for (const LcoreAssignment& a : plan)
    if (a.role == Role::forward || a.role == Role::pipeline_rx) ++app.flow_lcores;
  if (app.flow_lcores == 0) app.flow_lcores = 1;
  for (auto& st : app.lcores) {
    if (st->plan.role != Role::pipeline_rx) continue;
    LcoreState& tx = *app.lcores[st->plan.peer];
    const std::string name = "ctxfwd_pipe_" + std::to_string(st->plan.lcore);
    st->ring = rte_ring_create(name.c_str(), app.opts.ring_size, tx.plan.socket,
                               RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (st->ring == nullptr) return "pipeline ring: " + std::string(rte_strerror(rte_errno));
    tx.ring = st->ring;
  }
  const std::uint64_t extra = app.eal.embedded && app.opts.tx_pcap.empty() ? app.input.packets : 0;
  app.mbufs = app.opts.mbufs != 0 ? app.opts.mbufs
                                  : mbufs_needed(app.ports, app.lcores.size(), app.opts.pipeline,
                                                 app.opts.ring_size, extra);
  for (const auto& st : app.lcores) {
    std::string s = "lcore " + std::to_string(st->plan.lcore) + " (socket " +
                    std::to_string(st->plan.socket) + "): " + to_string(st->plan.role);
    for (std::uint16_t p : st->plan.rx_ports)
      s += " rx port " + std::to_string(p) + " -> port " + std::to_string(app.ports.dst[p]);
    log_line(s);
  }
  log_line("mbufs: " + std::to_string(app.mbufs) + " per socket's pool, mempool driver " +
           app.opts.mbuf_pool);
  return start_ports(app.ports, app.mbufs, app.opts.mbuf_pool);
}

template <FlowAllocator A>
std::string launch(App& app) {
  for (std::size_t i = 0; i < app.lcores.size(); ++i) {
    LcoreState& st = *app.lcores[i];
    if (int rc = rte_eal_remote_launch(lcore_main<A>, &st, st.plan.lcore); rc != 0) {
      // Lcores not launched count as done, so that a launched pipeline partner does not
      // wait for them.
      for (std::size_t j = i; j < app.lcores.size(); ++j) {
        app.lcores[j]->rx_done.store(true);
        app.lcores[j]->tx_done.store(true);
      }
      return "cannot launch lcore " + std::to_string(st.plan.lcore) + ": " + rte_strerror(-rc);
    }
  }
  return {};
}

bool any_failed(const App& app) {
  return std::any_of(app.lcores.begin(), app.lcores.end(), [](const auto& st) {
    return st->phase.load(std::memory_order_acquire) == Phase::failed;
  });
}
bool all_finished(const App& app) {
  return std::all_of(app.lcores.begin(), app.lcores.end(), [](const auto& st) {
    return st->phase.load(std::memory_order_acquire) == Phase::finished;
  });
}

// Sleeps in sigtimedwait until the next event: a stats line, the deadline, a check of
// --max-packets and of failed lcores, or a signal.
void main_loop(App& app) {
  const sigset_t signals = stop_signals();
  const double start = monotonic_seconds();
  const double inf = std::numeric_limits<double>::infinity();
  const double period = app.opts.stats_period_s;
  const double deadline = app.opts.duration_s > 0 ? start + app.opts.duration_s : inf;
  double next_stats = period > 0 ? start + period : inf;
  PeriodState prev;
  for (;;) {
    const double now = monotonic_seconds();
    if (now >= deadline) {
      app.stop_reason = "duration";
      return;
    }
    if (app.opts.max_packets != 0 && totals(app).rx >= app.opts.max_packets) {
      app.stop_reason = "max-packets";
      return;
    }
    if (any_failed(app)) {
      app.stop_reason = "lcore failure";
      return;
    }
    if (all_finished(app)) {
      app.stop_reason = "no work";
      return;
    }
    if (now >= next_stats) {
      print_stats_line(app, prev, now - start, stdout);
      next_stats += period * std::max(1.0, std::floor((now - next_stats) / period) + 1);
    }
    // --max-packets is checked every 10 ms, failed lcores every 100 ms otherwise.
    const double poll = app.opts.max_packets != 0 ? 0.01 : 0.1;
    const double wait = std::max(0.0, std::min({next_stats, deadline, now + poll}) - now);
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(wait);
    ts.tv_nsec = static_cast<long>((wait - static_cast<double>(ts.tv_sec)) * 1e9);
    siginfo_t info{};
    const int sig = sigtimedwait(&signals, &info, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      app.stop_reason = sig == SIGINT ? "SIGINT" : "SIGTERM";
      return;
    }
  }
}

template <FlowAllocator A>
std::string forward(App& app) {
  const double start = monotonic_seconds();
  if (auto e = launch<A>(app); !e.empty()) {
    app.stop.store(true);
    rte_eal_mp_wait_lcore();
    return e;
  }
  log_line("forwarding with --flow-alloc " + std::string(A::kName) +
           (app.opts.pipeline ? ", pipeline" : ", run to completion") +
           "; SIGINT or SIGTERM stops");
  main_loop(app);
  app.stop.store(true, std::memory_order_relaxed);
  rte_eal_mp_wait_lcore();
  app.wall_seconds = monotonic_seconds() - start;
  std::string errors;
  for (const auto& st : app.lcores)
    if (st->phase.load() == Phase::failed) errors += (errors.empty() ? "" : "; ") + st->error;
  return errors;
}

// Every flow context must be back: bytes in use equal to what the allocators held before
// the first packet. A difference is a leak in the flow path, reported as a failure.
std::string check_returned(const App& app) {
  for (const auto& st : app.lcores) {
    const std::uint64_t now = st->alloc.in_use();
    if (now != st->bytes_in_use_start)
      return "lcore " + std::to_string(st->plan.lcore) + ": " + std::to_string(now) +
             " bytes of flow memory still in use at the end (" +
             std::to_string(st->bytes_in_use_start) + " at the start)";
  }
  return {};
}

std::string report(const App& app) {
  print_summary(app, stdout);
  if (app.opts.stats_json.empty()) return {};
  return write_file(app.opts.stats_json, summary_json(app));
}

void tear_down(App& app) {
  if (app.eal_ready) {
    for (auto& st : app.lcores)
      if (st->plan.role == Role::pipeline_rx) rte_ring_free(st->ring);
    close_ports(app.ports);
    // EAL leaves its runtime folder (config, fbarrays) behind; the one-off prefix of the
    // embedded default is ours to remove, a prefix the user chose is not.
    const std::string runtime = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    if (app.eal.own_file_prefix) {
      std::error_code ec;
      std::filesystem::remove_all(runtime, ec);
    }
  }
  remove_generated(app.input);
}

int parse_command_line(App& app, int argc, char** argv, std::vector<std::string>& eal_args) {
  SplitArgs split = split_args(argc, argv);
  if (auto e = parse_app_args(split.app, app.opts); !e.empty()) {
    log_error(e + " (ctxfwd -- --help lists the options)");
    return kExitUsage;
  }
  if (app.opts.help) {
    std::fputs(usage_text().c_str(), stdout);
    return kExitOk;
  }
  eal_args = std::move(split.eal);
  return -1;
}

// The configuration (--config FILE, else $CTXALLOC_CONFIG, else the embedded default).
// Its [flows] section fills the flow settings the command line leaves out, whatever the
// flow allocator (so that every --flow-alloc runs the same flow table); with --flow-alloc
// ctxalloc its sockets and lcores size the per-lcore allocators (and so EAL's memory).
std::string load_config(App& app) {
  AppOptions& o = app.opts;
  const bool ctxalloc = o.flow_alloc == FlowAllocKind::ctxalloc;
  const int rc =
      ctxalloc::dpdk::initialise(o.config_path.empty() ? nullptr : o.config_path.c_str());
  const ctxalloc::dpdk::Config* cfg = ctxalloc::dpdk::active_config();
  if (rc != 0 || cfg == nullptr)
    return "configuration " + (o.config_path.empty() ? std::string("(default)") : o.config_path) +
           ": " +
           (rc == -EINVAL ? std::string("invalid, see the messages above") : std::strerror(-rc));
  const ctxalloc::dpdk::FlowConfig& f = cfg->flows;
  if (!o.idle_timeout_ms)
    o.idle_timeout_ms = static_cast<std::uint32_t>(
        std::min<std::int64_t>(f.idle_timeout.count(), std::numeric_limits<std::uint32_t>::max()));
  if (!o.max_flows) o.max_flows = f.max_flows;
  // --max-flows beyond what the configuration's lcores hold: refused with the numbers.
  if (ctxalloc)
    if (std::string e = cfg->flow_sizing_error(*o.max_flows); !e.empty())
      return "--max-flows " + std::to_string(*o.max_flows) + " with " + cfg->source + ": " + e;
  // A flow's bound: a fixed context's block_size, or a growing flow's budget (with no
  // budget, --flow-context-bytes or its default bounds the other allocators' flows only).
  const std::size_t flow_bound = f.growing() ? f.budget : f.block_size;
  const char* bound_key = f.growing() ? "budget" : "block_size";
  if (ctxalloc && o.flow_context_bytes && *o.flow_context_bytes != flow_bound)
    return "--flow-context-bytes " + std::to_string(*o.flow_context_bytes) +
           ": with --flow-alloc ctxalloc a flow's memory is bounded by the configuration's "
           "[flows] " +
           bound_key + " (" + std::to_string(flow_bound) + " in " + cfg->source + "); set it there";
  if (!o.flow_context_bytes && flow_bound != 0)
    o.flow_context_bytes = static_cast<std::uint32_t>(flow_bound);
  if (ctxalloc)
    for (const ctxalloc::dpdk::SocketConfig& sc : cfg->sockets)
      app.ctxalloc_bytes += cfg->socket_demand(sc);
  log_line("configuration: " + cfg->source + " (flows: " + std::to_string(*o.max_flows) +
           " over all lcores, idle timeout " + std::to_string(*o.idle_timeout_ms) + " ms, " +
           std::to_string(*o.flow_context_bytes) + " B per flow)");
  return {};
}

// Where a heap's pages are (the kernel's word), as "12 of 12 pages on node 1"; a heap with
// pages on another node than its socket is logged as an error and counted, never silent.
std::string check_placement(App& app, const std::string& heap, int rc,
                            const ctxalloc::dpdk::Placement& p) {
  std::string text;
  if (rc != 0) {
    text = "placement not known (move_pages: " + std::string(std::strerror(-rc)) + ")";
  } else {
    text = std::to_string(p.local_pages) + " of " + std::to_string(p.pages) + " pages on node " +
           std::to_string(p.node);
    if (p.absent_pages > 0) text += ", " + std::to_string(p.absent_pages) + " not faulted in";
    if (p.remote_pages > 0) {
      text += ", " + std::to_string(p.remote_pages) + " on node " + std::to_string(p.remote_node);
      log_error(heap + ": " + std::to_string(p.remote_pages) + " of its " +
                std::to_string(p.pages) + " pages are on node " + std::to_string(p.remote_node) +
                ", not on its socket " + std::to_string(p.node) + " (remote memory)");
      app.heap_remote_pages += p.remote_pages;
    }
  }
  app.placement += (app.placement.empty() ? "" : "; ") + heap + ": " + text;
  return "kernel: " + text;
}

// --flow-alloc ctxalloc: the per-lcore allocators, after EAL (memzones on each socket).
std::string set_up_ctxalloc(App& app) {
  if (app.opts.flow_alloc != FlowAllocKind::ctxalloc) return {};
  // The plugin splits max_flows over the lcores that own a flow table, as ctxfwd does.
  std::vector<unsigned> flow_lcores;
  for (const auto& st : app.lcores)
    if (st->plan.role == Role::forward || st->plan.role == Role::pipeline_rx)
      flow_lcores.push_back(st->plan.lcore);
  if (!flow_lcores.empty())
    if (int rc = ctxalloc::dpdk::set_flow_lcores(flow_lcores.data(),
                                                 static_cast<unsigned>(flow_lcores.size()));
        rc != 0)
      return "ctxalloc flow lcores: " + std::string(std::strerror(-rc));
  if (int rc = ctxalloc::dpdk::setup(); rc != 0)
    return "ctxalloc per-lcore allocators: " + std::string(std::strerror(-rc)) +
           " (the log above says which heap)";
  app.ctxalloc_set_up = true;
  for (const auto& st : app.lcores) {
    const ctxalloc::dpdk::LcoreFigures f = ctxalloc::dpdk::lcore_figures(st->plan.lcore);
    ctxalloc::dpdk::Placement where;
    const std::string placed =
        check_placement(app, "lcore " + std::to_string(st->plan.lcore),
                        ctxalloc::dpdk::lcore_placement(st->plan.lcore, &where), where);
    if (f.present && where.pages > 0) {
      st->heap_node = static_cast<int>(where.node);
      st->heap_pages = where.pages;
      st->heap_local_pages = where.local_pages;
      st->heap_remote_pages = where.remote_pages;
    }
    log_line("lcore " + std::to_string(st->plan.lcore) + ": ctxalloc heap of " +
             std::to_string(f.region_bytes >> 20) + " MiB on " +
             ctxalloc::dpdk::to_string(f.memory) + " of socket " + std::to_string(f.socket) +
             (f.growing ? ", growing flows (a share of " + std::to_string(f.flow_share) +
                              ", first chunks of " + std::to_string(f.context_bytes) + " B)"
                        : ", flow contexts of " + std::to_string(f.context_bytes) + " B") +
             "; " + placed);
  }
  for (unsigned s = 0; s < ctxalloc::dpdk::kMaxSockets; ++s) {
    if (!ctxalloc::dpdk::socket_figures(s).present) continue;
    ctxalloc::dpdk::Placement where;
    const std::string placed =
        check_placement(app, "socket " + std::to_string(s) + "'s global heap",
                        ctxalloc::dpdk::socket_placement(s, &where), where);
    log_line("socket " + std::to_string(s) + ": ctxalloc global heap; " + placed);
  }
  return {};
}

// After the lcores stopped: every heap back, nothing in use (a leak is an error).
std::string tear_down_ctxalloc(App& app) {
  if (!app.ctxalloc_set_up) return {};
  for (const auto& st : app.lcores) {
    const ctxalloc::dpdk::LcoreFigures f = ctxalloc::dpdk::lcore_figures(st->plan.lcore);
    if (!f.present || !f.growing) continue;
    st->growing_flows = true;
    st->flow_memory_peak_bytes = f.flow_peak_segment_bytes;
    st->flow_refused_budget = f.refused_budget;
    st->flow_refused_memory = f.refused_memory;
    st->flow_limit_hits = f.flow_limit_hits;
    st->flow_peak_live = f.peak_contexts;
  }
  ctxalloc::dpdk::TeardownReport r;
  const int rc = ctxalloc::dpdk::teardown(&r);
  app.ctxalloc_set_up = rc != 0;
  if (rc == 0) {
    log_line("ctxalloc: " + std::to_string(r.lcores) + " lcore heaps and " +
             std::to_string(r.sockets) + " socket heaps torn down, " +
             std::to_string(r.bytes_returned >> 20) + " MiB returned, nothing in use");
    return {};
  }
  return "ctxalloc tear-down: " + std::to_string(r.live_bytes) + " bytes and " +
         std::to_string(r.live_contexts) + " flow contexts still in use, " +
         std::to_string(r.busy_lcores) + " lcores busy";
}

int run_steps(App& app, int argc, char** argv) {
  std::vector<std::string> eal_args;
  if (int rc = parse_command_line(app, argc, argv, eal_args); rc >= 0) return rc;
  if (auto e = load_config(app); !e.empty()) {
    log_error(e);
    return kExitFailure;
  }
  if (auto e = plan_eal_args(app, eal_args); !e.empty()) {
    log_error(e);
    return kExitFailure;
  }
  if (auto e = init_eal(app); !e.empty()) {
    log_error(e);
    return kExitFailure;
  }
  if (auto e = set_up(app); !e.empty()) {
    log_error(e);
    return kExitFailure;
  }
  if (auto e = set_up_ctxalloc(app); !e.empty()) {
    log_error(e);
    return kExitFailure;
  }
  std::string error;
  const std::string unavailable =
      with_flow_allocator(app.opts.flow_alloc, [&]<FlowAllocator A>() { error = forward<A>(app); });
  if (!unavailable.empty()) error = unavailable;
  if (error.empty()) error = check_returned(app);
  if (const std::string e = tear_down_ctxalloc(app); error.empty()) error = e;
  const std::string report_error = report(app);
  if (!error.empty()) log_error(error);
  if (!report_error.empty()) log_error(report_error);
  return error.empty() && report_error.empty() ? kExitOk : kExitFailure;
}

}  // namespace

int run_app(int argc, char** argv) {
  // Before any thread exists, so that all of them inherit the mask (see the file comment).
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  App app;
  int rc = kExitFailure;
  try {
    rc = run_steps(app, argc, argv);
  } catch (const std::exception& e) {
    log_error(std::string("unexpected: ") + e.what());
  }
  tear_down(app);
  return rc;
}

}  // namespace ctxfwd
