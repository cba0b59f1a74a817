// Telemetry commands under /ctxalloc/ (docs/dpdk.md shows their JSON):
//   /ctxalloc/stats            totals, and a summary per socket and per lcore
//   /ctxalloc/lcore,<id>       one lcore (or "non_eal"): every account, counters, sources
//   /ctxalloc/socket,<id>      one socket: accounts, hugepages, DPDK heap, ctxalloc memory
//   /ctxalloc/config           the configuration in force
//   /ctxalloc/mempools         every mempool that uses the ctxalloc ops
//   /ctxalloc/mempool,<name>   one of them, lane by lane
// Callbacks run on DPDK's telemetry thread; none lets an exception out.
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_telemetry.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/plugin.h"
#include "ctxalloc/dpdk/registry.h"
#include "ctxalloc/dpdk/system.h"
#include "detail/log.h"
#include "detail/pool.h"
#include "detail/telemetry.h"
#include "detail/units.h"

namespace ctxalloc::dpdk::detail {
namespace {

// A dict being filled; children are containers the parent owns (freed with it). A Dict
// over null (a child telemetry could not allocate) ignores everything: that part of the
// answer is left out rather than the whole request failing.
class Dict {
 public:
  explicit Dict(rte_tel_data* d) : d_(d) {
    if (d_ != nullptr) rte_tel_data_start_dict(d_);
  }

  void u64(const char* name, std::uint64_t v) {
    if (d_ != nullptr) rte_tel_data_add_dict_u64(d_, name, v);
  }
  void str(const char* name, const std::string& v) {
    if (d_ != nullptr) rte_tel_data_add_dict_string(d_, name, v.c_str());
  }
  /// A nested dict, or null when telemetry could not allocate one.
  rte_tel_data* child(const std::string& name) {
    if (d_ == nullptr) return nullptr;
    rte_tel_data* c = rte_tel_data_alloc();
    if (c == nullptr) return nullptr;
    rte_tel_data_start_dict(c);
    if (rte_tel_data_add_dict_container(d_, name.c_str(), c, 0) != 0) {
      rte_tel_data_free(c);
      return nullptr;
    }
    return c;
  }
  rte_tel_data* raw() const { return d_; }

 private:
  rte_tel_data* d_;
};

void add_stats(rte_tel_data* d, const Stats& s) {
  Dict x(d);
  x.u64("allocations", s.allocations);
  x.u64("deallocations", s.deallocations);
  x.u64("grows", s.grows);
  x.u64("shrinks", s.shrinks);
  x.u64("failures", s.failures);
  x.u64("misuses", s.misuses);
  x.u64("bytes_in_use", s.bytes_in_use);
  x.u64("peak_bytes", s.peak_bytes);
  x.u64("capacity", s.capacity);
}

void add_accounts(Dict& d, const AccountTotals& t) {
  for (unsigned a = 0; a < static_cast<unsigned>(Account::count); ++a)
    add_stats(d.child(to_string(static_cast<Account>(a))), t.by_account[a]);
}

// Bytes in use and peak over every account of a slot.
Stats sum_accounts(const AccountTotals& t) {
  Stats s;
  for (const Stats& a : t.by_account)
    s += a;
  return s;
}

void add_lcore_counters(Dict& d, const LcoreCounts& c) {
  d.u64("fallback_to_thread", c.fallback_to_thread);
  d.u64("fallback_to_global", c.fallback_to_global);
  d.u64("fallback_failures", c.fallback_failures);
  d.u64("remote_frees", c.remote_frees);
}

// Lcores worth listing: EAL lcores, and any slot with sources or counts.
bool lcore_is_active(unsigned id) {
  if (id < kMaxLcores && rte_lcore_has_role(id, ROLE_OFF) == 0) return true;
  const LcoreCounts c = Registry::instance().read_lcore_counts(id);
  return Registry::instance().read_lcore(id).sources > 0 || c.fallback_failures != 0 ||
         c.fallback_to_thread != 0 || c.fallback_to_global != 0;
}

// The lcore's own heap (per-lcore set-up): its memory, contexts and fallback chain.
void add_lcore_allocator(Dict& d, const LcoreFigures& f) {
  d.str("memory", to_string(f.memory));
  d.u64("page_size", f.page_size);
  d.u64("region_bytes", f.region_bytes);
  d.u64("segment_bytes", f.segment_bytes);
  d.u64("peak_segment_bytes", f.peak_segment_bytes);
  d.str("bound", f.bound ? "yes" : "no");
  d.str("thread_allocator", f.thread_mode ? "tree" : "none");
  d.u64("bytes_in_use", f.bytes_in_use);
  d.u64("peak_bytes", f.peak_bytes);
  d.u64("contexts_live", f.contexts_live);
  d.u64("contexts_made", f.contexts_made);
  d.u64("contexts_released", f.contexts_released);
  d.u64("context_failures", f.context_failures);
  d.u64("flow_limit_hits", f.flow_limit_hits);
  d.u64("context_bytes", f.context_bytes);
  d.u64("spills_to_thread", f.spills_to_thread);
  d.u64("spills_to_global", f.spills_to_global);
  d.u64("spill_failures", f.spill_failures);
  d.u64("spilled_bytes", f.spilled_bytes);
  d.u64("thread_to_global", f.thread_to_global);
  d.u64("refused", f.refused);
  d.u64("remote_received", f.remote_received);
  d.str("flow_kind", f.growing ? "growing" : "fixed");
  if (f.growing) {
    d.u64("flow_share", f.flow_share);
    d.u64("first_chunk_bytes", f.first_chunk_bytes);
    d.u64("growth_bytes", f.growth_bytes);
    d.u64("flow_segment_bytes", f.flow_segment_bytes);
    d.u64("flow_peak_segment_bytes", f.flow_peak_segment_bytes);
    d.u64("chunk_bytes", f.chunk_bytes);
    d.u64("large_bytes", f.large_bytes);
    d.u64("refused_budget", f.refused_budget);
    d.u64("refused_memory", f.refused_memory);
    d.u64("refused_too_large", f.refused_too_large);
    d.u64("peak_contexts", f.peak_contexts);
  }
}

std::string lcore_key(unsigned id) {
  return id == kNonEalSlot ? "non_eal" : std::to_string(id);
}

bool socket_is_active(unsigned id) {
  return rte_socket_count() > id || Registry::instance().read_socket(id).sources > 0;
}

void summary(rte_tel_data* d, const Stats& s, const LcoreCounts* c,
             const LcoreFigures* heap = nullptr) {
  Dict x(d);
  x.u64("bytes_in_use", s.bytes_in_use);
  x.u64("peak_bytes", s.peak_bytes);
  x.u64("allocations", s.allocations);
  x.u64("failures", s.failures);
  if (c != nullptr) add_lcore_counters(x, *c);
  if (heap != nullptr && heap->present) {
    x.u64("contexts_live", heap->contexts_live);
    x.u64("spills", heap->spills_to_thread + heap->spills_to_global);
    x.str("memory", to_string(heap->memory));
  }
}

// ------------------------------------------------------------------ commands

int cmd_stats(const char*, const char*, rte_tel_data* out) {
  Dict d(out);
  const Config* c = active_config();
  d.str("config", c != nullptr ? c->source : "(not loaded)");
  d.u64("ops_index", static_cast<std::uint64_t>(ops_index() < 0 ? 0 : ops_index()));
  d.str("ops_registered", ops_index() >= 0 ? "yes" : "no");
  d.u64("refused_sources", Registry::instance().refused_sources());
  AccountTotals totals;
  Dict sockets(d.child("sockets"));
  for (unsigned s = 0; s < kMaxSockets; ++s) {
    if (!socket_is_active(s)) continue;
    const AccountTotals t = Registry::instance().read_socket(s);
    for (unsigned a = 0; a < static_cast<unsigned>(Account::count); ++a)
      totals.by_account[a] += t.by_account[a];
    summary(sockets.child(std::to_string(s)), sum_accounts(t), nullptr);
  }
  Dict lcores(d.child("lcores"));
  for (unsigned l = 0; l <= kNonEalSlot; ++l) {
    if (!lcore_is_active(l)) continue;
    const LcoreCounts counts = Registry::instance().read_lcore_counts(l);
    const LcoreFigures heap = lcore_figures(l);
    summary(lcores.child(lcore_key(l)), sum_accounts(Registry::instance().read_lcore(l)), &counts,
            &heap);
  }
  // Totals come from the sockets: every pool and heap is attached to one; lcore
  // sources (lanes, thread allocators) would count the same bytes twice.
  Dict t(d.child("totals"));
  add_accounts(t, totals);
  Stats all = sum_accounts(totals);
  t.u64("bytes_in_use", all.bytes_in_use);
  return 0;
}

bool parse_id(const char* params, unsigned limit, unsigned& id) {
  if (params == nullptr) return false;
  const auto v = parse_count(params, limit - 1);
  if (!v.ok()) return false;
  id = static_cast<unsigned>(v.value());
  return true;
}

int cmd_lcore(const char*, const char* params, rte_tel_data* out) {
  unsigned id = 0;
  if (params != nullptr && std::strcmp(params, "non_eal") == 0)
    id = kNonEalSlot;
  else if (!parse_id(params, kMaxLcores, id))
    return -EINVAL;
  Dict d(out);
  d.str("lcore", lcore_key(id));
  if (id < kMaxLcores) {
    d.u64("socket", rte_lcore_to_socket_id(id));
    d.str("role", rte_lcore_has_role(id, ROLE_RTE)       ? "rte"
                  : rte_lcore_has_role(id, ROLE_NON_EAL) ? "non_eal"
                  : rte_lcore_has_role(id, ROLE_SERVICE) ? "service"
                                                         : "off");
  }
  add_lcore_counters(d, Registry::instance().read_lcore_counts(id));
  add_accounts(d, Registry::instance().read_lcore(id));
  if (id < kMaxLcores) {
    const LcoreFigures f = lcore_figures(id);
    if (f.present) {
      Dict heap(d.child("heap"));
      add_lcore_allocator(heap, f);
    }
  }
  Dict sources(d.child("sources"));
  Registry::instance().for_each_lcore_source(id, [&](const StatsSource& src, const Stats& s) {
    add_stats(sources.child(std::string(to_string(src.account)) + "/" + src.name), s);
  });
  return 0;
}

void add_hugepages(Dict& d, unsigned socket) {
  const SystemInfo sys = probe_system(sysfs_root());
  const NodeInfo* node = sys.node(socket);
  Dict h(d.child("hugepages"));
  if (node == nullptr) return;
  for (const HugePageCounts& c : node->hugepages) {
    Dict one(h.child(std::to_string(c.page_bytes >> 10) + "kB"));
    one.u64("page_size", c.page_bytes);
    one.u64("total", c.total);
    one.u64("free", c.free);
  }
}

int cmd_socket(const char*, const char* params, rte_tel_data* out) {
  unsigned id = 0;
  if (!parse_id(params, kMaxSockets, id)) return -EINVAL;
  Dict d(out);
  d.u64("socket", id);
  add_accounts(d, Registry::instance().read_socket(id));
  const SocketCounters& c = Registry::instance().socket(id);
  Dict mem(d.child("ctxalloc_memory"));
  mem.u64("hugepage_bytes", c.hugepage_bytes.load(std::memory_order_relaxed));
  mem.u64("normal_page_bytes", c.normal_page_bytes.load(std::memory_order_relaxed));
  mem.u64("metadata_bytes", c.metadata_bytes.load(std::memory_order_relaxed));
  rte_malloc_socket_stats heap{};
  if (rte_malloc_get_socket_stats(static_cast<int>(id), &heap) == 0) {
    Dict h(d.child("dpdk_heap"));
    h.u64("total_bytes", heap.heap_totalsz_bytes);
    h.u64("free_bytes", heap.heap_freesz_bytes);
    h.u64("allocated_bytes", heap.heap_allocsz_bytes);
  }
  const SocketFigures g = socket_figures(id);
  if (g.present) {
    // "heap", as in /ctxalloc/lcore: the key global_heap is the account already.
    Dict heap(d.child("heap"));
    heap.str("memory", to_string(g.memory));
    heap.u64("page_size", g.page_size);
    heap.u64("region_bytes", g.region_bytes);
    heap.u64("segment_bytes", g.segment_bytes);
    heap.u64("peak_segment_bytes", g.peak_segment_bytes);
    heap.u64("bytes_in_use", g.heap.bytes_in_use);
    heap.u64("peak_bytes", g.heap.peak_bytes);
    heap.u64("failures", g.heap.failures);
    heap.u64("lcores", g.lcores);
  }
  d.str("eal_hugepages", rte_eal_has_hugepages() ? "yes" : "no");
  add_hugepages(d, id);
  if (const Config* cfg = active_config()) {
    if (const SocketConfig* s = cfg->socket(id)) {
      Dict want(d.child("config"));
      want.u64("hugepage_size", s->hugepage_size);
      want.u64("hugepages", s->hugepages);
      want.u64("global_heap", s->global_heap);
      want.str("lcores", format_id_list(s->lcores));
    }
  }
  return 0;
}

void add_lcore_config(rte_tel_data* d, const LcoreConfig& l) {
  Dict x(d);
  x.str("thread_allocator", to_string(l.thread_allocator));
  x.u64("thread_size", l.thread_size);
}

int cmd_config(const char*, const char*, rte_tel_data* out) {
  const int rc = initialise();
  const Config* c = active_config();
  if (c == nullptr) {
    Dict d(out);
    d.str("error", "the configuration did not load (errno " + std::to_string(-rc) +
                       "): see the ctxalloc log");
    return 0;
  }
  Dict d(out);
  d.str("source", c->source);
  d.str("hugepages", to_string(c->hugepages));
  std::string chain;
  for (Tier t : c->fallback)
    chain += (chain.empty() ? "" : " -> ") + std::string(to_string(t));
  d.str("fallback", chain);
  Dict sockets(d.child("sockets"));
  for (const SocketConfig& s : c->sockets) {
    Dict x(sockets.child(std::to_string(s.id)));
    x.str("lcores", format_id_list(s.lcores));
    x.u64("hugepage_size", s.hugepage_size);
    x.u64("hugepages", s.hugepages);
    x.u64("global_heap", s.global_heap);
  }
  add_lcore_config(d.child("lcore_default"), c->lcore_default);
  Dict lcores(d.child("lcores"));
  for (const LcoreConfig& l : c->lcores)
    add_lcore_config(lcores.child(std::to_string(l.id)), l);
  Dict f(d.child("flows"));
  f.str("kind", to_string(c->flows.kind));
  f.u64("block_size", c->flows.block_size);
  f.u64("ready_blocks", c->flows.ready_blocks);
  if (c->flows.growing()) {
    f.u64("first_chunk", c->flows.first_chunk);
    f.u64("max_chunk", c->flows.max_chunk);
    f.u64("large_block", c->flows.large_block_bytes());
    f.u64("budget", c->flows.budget);
    f.str("spill", to_string(c->flows.spill));
    f.u64("growth_size", c->flows.growth_size);
  }
  f.u64("max_flows", c->flows.max_flows);
  f.u64("idle_timeout_ms", static_cast<std::uint64_t>(c->flows.idle_timeout.count()));
  return 0;
}

bool uses_ctxalloc(const rte_mempool* mp) {
  return verify_pool(mp, nullptr) == 0;
}

void add_pool(rte_tel_data* d, const rte_mempool* mp) {
  const PoolState& p = *pool_state(mp);
  Dict x(d);
  const Stats s = pool_stats(p);
  x.u64("socket", static_cast<std::uint64_t>(p.socket));
  x.u64("size", mp->size);
  x.u64("populated", mp->populated_size);
  x.u64("obj_bytes", p.obj_bytes);
  x.u64("available", pool_count(p));
  x.u64("in_shared_stack", p.shared.size());
  x.u64("bytes_in_use", s.bytes_in_use);
  x.u64("peak_bytes_seen", s.peak_bytes);
  x.u64("gets", s.allocations);
  x.u64("puts", s.deallocations);
  x.u64("failures", s.failures);
  x.u64("misuses", s.misuses);
  std::uint64_t lanes = 0, stolen = 0, from_shared = 0;
  for (const auto& slot : p.lanes) {
    const Lane* lane = slot.load(std::memory_order_acquire);
    if (lane <= kNoLane) continue;
    ++lanes;
    stolen += lane->stolen.get();
    from_shared += lane->from_shared.get();
  }
  x.u64("lanes", lanes);
  x.u64("stolen", stolen);
  x.u64("from_shared", from_shared);
}

struct WalkArg {
  Dict* d;
};

void walk_pool(rte_mempool* mp, void* arg) {
  if (uses_ctxalloc(mp)) add_pool(static_cast<WalkArg*>(arg)->d->child(mp->name), mp);
}

int cmd_mempools(const char*, const char*, rte_tel_data* out) {
  Dict d(out);
  WalkArg arg{&d};
  rte_mempool_walk(walk_pool, &arg);
  return 0;
}

int cmd_mempool(const char*, const char* params, rte_tel_data* out) {
  if (params == nullptr) return -EINVAL;
  rte_mempool* mp = rte_mempool_lookup(params);
  if (mp == nullptr || !uses_ctxalloc(mp)) return -EINVAL;
  Dict d(out);
  add_pool(d.child("pool"), mp);
  Dict lanes(d.child("lanes"));
  const PoolState& p = *pool_state(mp);
  for (unsigned l = 0; l < kMaxLcores; ++l) {
    const Lane* lane = p.lanes[l].load(std::memory_order_acquire);
    if (lane <= kNoLane) continue;
    Dict x(lanes.child(std::to_string(l)));
    x.u64("held", lane->deque.size());
    x.u64("gets", lane->hot().gets.get());
    x.u64("puts", lane->hot().puts.get());
    x.u64("failures", lane->failures.get());
    x.u64("stolen", lane->stolen.get());
    x.u64("from_shared", lane->from_shared.get());
    x.u64("peak_objects", lane->peak_net.get());
  }
  return 0;
}

// Runs a command with every exception turned into -ENOMEM: none may reach DPDK.
template <int (*Fn)(const char*, const char*, rte_tel_data*)>
int guarded(const char* cmd, const char* params, rte_tel_data* out) {
  try {
    return Fn(cmd, params, out);
  } catch (...) {
    return -ENOMEM;
  }
}

}  // namespace

void register_telemetry() noexcept {
  struct Command {
    const char* name;
    telemetry_cb fn;
    const char* help;
  };
  static const Command kCommands[] = {
      {"/ctxalloc/stats", guarded<cmd_stats>,
       "ctxalloc totals, and a summary per socket and lcore. No parameters"},
      {"/ctxalloc/lcore", guarded<cmd_lcore>,
       "One lcore's accounts and counters. Parameter: lcore id, or non_eal"},
      {"/ctxalloc/socket", guarded<cmd_socket>,
       "One socket's accounts, hugepages and heaps. Parameter: socket id"},
      {"/ctxalloc/config", guarded<cmd_config>, "The ctxalloc configuration in force"},
      {"/ctxalloc/mempools", guarded<cmd_mempools>, "Every mempool using the ctxalloc ops"},
      {"/ctxalloc/mempool", guarded<cmd_mempool>,
       "One ctxalloc mempool, lane by lane. Parameter: mempool name"},
  };
  for (const Command& c : kCommands) {
    if (const int rc = rte_telemetry_register_cmd(c.name, c.fn, c.help); rc != 0)
      CTXALLOC_LOG(WARNING, "telemetry command %s not registered: %s", c.name, std::strerror(-rc));
  }
}

}  // namespace ctxalloc::dpdk::detail
