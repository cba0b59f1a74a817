// Set-up and tear-down of the per-lcore and per-socket heaps (ctxalloc/dpdk/lcore.h).
// Runs rarely and on the main lcore, under one lock; nothing here is on an allocation path.
#include <pthread.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include <cerrno>
#include <cstdio>
#include <new>

#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/plugin.h"
#include "ctxalloc/dpdk/registry.h"
#include "ctxalloc/dpdk/system.h"
#include "ctxalloc/sources/numa_policy.h"
#include "ctxalloc/sources/os_memory.h"
#include "detail/lcore_heaps.h"
#include "detail/log.h"

namespace ctxalloc::dpdk {
namespace detail {
// Registry readers (lcore_api.cc).
Stats read_thread_account(const void* self) noexcept;
Stats read_context_account(const void* self) noexcept;
Stats read_global_account(const void* self) noexcept;
void read_lcore_counts(const void* self, LcoreCounts& sum) noexcept;
}  // namespace detail

namespace {

using detail::LcoreHeap;
using detail::LcoreRuntime;
using detail::PageKind;
using detail::RegionRequest;
using detail::SocketHeap;

constexpr std::size_t kSegment = SegmentSource::kSegmentSize;

// Recursive: registering the lcore callbacks runs their init for every lcore on this
// thread, under the lock set-up holds.
pthread_mutex_t g_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
void* g_callbacks = nullptr;       // rte_lcore_callback_register's handle
std::size_t g_heaps_at_setup = 0;  // heap_census().heaps when set up
const Config* g_config = nullptr;  // the configuration set-up used
std::uint64_t g_flow_share = 0;    // each flow lcore's share of max_flows

struct Guard {
  Guard() noexcept { pthread_mutex_lock(&g_lock); }
  ~Guard() { pthread_mutex_unlock(&g_lock); }
};

// ------------------------------------------------------------------ metadata mappings

// A zeroed mapping for one heap object, bound to its socket's node where NUMA exists.
void* map_on_socket(std::size_t bytes, unsigned socket) noexcept {
  void* p = os_map_rw(bytes);
  if (p == nullptr) return nullptr;
  if (numa_supported() && static_cast<int>(socket) <= numa_highest_node())
    (void)apply_numa_policy(p, bytes, NumaPolicy::bind_to(socket));  // best effort
  return p;
}

template <class T>
std::size_t mapping_size() noexcept {
  return (sizeof(T) + 4095) & ~std::size_t{4095};
}

// ------------------------------------------------------------------ memory kind

// Where the heaps' memory comes from, from the policy and what EAL has. -ENOTSUP when the
// file requires hugepages and EAL runs without them.
int choose_memory(const Config& cfg, PageKind& kind) noexcept {
  const bool eal_huge = rte_eal_has_hugepages() != 0;
  switch (cfg.hugepages) {
    case HugepagePolicy::none:
      kind = PageKind::normal_pages;
      CTXALLOC_LOG(INFO, "per-lcore heaps on normal pages (hugepages = none)");
      return 0;
    case HugepagePolicy::require:
      if (!eal_huge) {
        CTXALLOC_LOG(ERR,
                     "configuration %s requires hugepages, but EAL runs without them "
                     "(--no-huge): per-lcore heaps not set up",
                     cfg.source.c_str());
        return -ENOTSUP;
      }
      kind = PageKind::hugepages;
      return 0;
    case HugepagePolicy::prefer:
      kind = eal_huge ? PageKind::hugepages : PageKind::normal_pages;
      if (!eal_huge)
        CTXALLOC_LOG(WARNING,
                     "EAL runs without hugepages (--no-huge): per-lcore heaps and "
                     "global heaps on normal pages, bound to their NUMA node");
      return 0;
  }
  return -EINVAL;
}

// What the socket has now, for a refusal: its node's free hugepages of the size asked
// for (sysfs) and what DPDK's heap on the socket has free.
std::string socket_memory_now(unsigned socket, std::size_t page_size) {
  std::string s = "node " + std::to_string(socket) + ": ";
  const SystemInfo sys = probe_system(sysfs_root());
  const NodeInfo* n = sys.node(socket);
  const HugePageCounts* c =
      n != nullptr ? n->pages_of(page_size != 0 ? page_size : 2 << 20) : nullptr;
  if (n == nullptr)
    s += "no such NUMA node";
  else if (c == nullptr)
    s += "no hugepages of " + format_bytes(page_size);
  else
    s += std::to_string(c->free) + " of " + std::to_string(c->total) + " x " +
         format_bytes(c->page_bytes) + " hugepages free";
  rte_malloc_socket_stats st{};
  if (rte_malloc_get_socket_stats(static_cast<int>(socket), &st) == 0)
    s += ", DPDK's heap on socket " + std::to_string(socket) + " " +
         format_bytes(st.heap_freesz_bytes) + " free of " + format_bytes(st.heap_totalsz_bytes) +
         " mapped";
  return s;
}

// Reserves a region of the kind chosen; under `prefer`, hugepages that run short give
// way to normal pages with a warning.
int reserve_region(detail::SegmentRegion& region, const Config& cfg, PageKind kind,
                   const char* name, unsigned socket, std::size_t bytes, const char* what) {
  const SocketConfig* sc = cfg.socket(socket);
  RegionRequest r;
  r.name = name;
  r.socket = socket;
  r.bytes = bytes;
  r.kind = kind;
  r.hugepage_size = sc != nullptr ? sc->hugepage_size : 0;
  r.other_page_size_ok = cfg.hugepages != HugepagePolicy::require;
  const char* why = "";
  int rc = region.reserve(r, &why);
  if (rc == -ENOMEM && kind == PageKind::hugepages && cfg.hugepages == HugepagePolicy::prefer) {
    CTXALLOC_LOG(WARNING,
                 "%s: %s of hugepages on socket %u not available (%s): normal pages "
                 "instead",
                 what, format_bytes(bytes).c_str(), socket, why);
    r.kind = PageKind::normal_pages;
    rc = region.reserve(r, &why);
  }
  if (rc != 0) {
    CTXALLOC_LOG(ERR, "%s: cannot reserve %s of %s on socket %u: %s; %s", what,
                 format_bytes(bytes).c_str(), detail::to_string(r.kind), socket, why,
                 socket_memory_now(socket, r.hugepage_size).c_str());
    return rc;
  }
  SocketCounters& c = Registry::instance().socket(socket);
  (region.kind() == PageKind::hugepages ? c.hugepage_bytes : c.normal_page_bytes)
      .fetch_add(region.bytes(), std::memory_order_relaxed);
  if (region.kind() == PageKind::normal_pages && !region.numa_bound() && numa_supported() &&
      numa_highest_node() > 0)
    CTXALLOC_LOG(WARNING, "%s: could not bind its pages to node %u", what, socket);
  return 0;
}

void unaccount_region(const detail::SegmentRegion& region) noexcept {
  if (!region.reserved()) return;
  SocketCounters& c = Registry::instance().socket(region.socket());
  (region.kind() == PageKind::hugepages ? c.hugepage_bytes : c.normal_page_bytes)
      .fetch_sub(region.bytes(), std::memory_order_relaxed);
}

// ------------------------------------------------------------------ making heaps

SocketHeap* make_socket_heap(const Config& cfg, PageKind kind, unsigned socket, int& rc) {
  const SocketConfig* sc = cfg.socket(socket);
  if (sc == nullptr) {
    CTXALLOC_LOG(ERR,
                 "lcores run on socket %u, which configuration %s does not describe "
                 "(add a [socket.%u] section)",
                 socket, cfg.source.c_str(), socket);
    rc = -EINVAL;
    return nullptr;
  }
  const std::size_t mapping = mapping_size<SocketHeap>();
  void* mem = map_on_socket(mapping, socket);
  if (mem == nullptr) {
    rc = -ENOMEM;
    return nullptr;
  }
  GlobalHeapOptions o;
  o.chunk_bytes = kSegment;
  o.keep_free_chunks = 1;
  if (numa_supported() && static_cast<int>(socket) <= numa_highest_node())
    o.large.numa = NumaPolicy::bind_to(socket);  // requests above 1 MiB: own mappings
  auto* s = new (mem) SocketHeap(socket, o);
  s->mapping_bytes = mapping;
  char name[32];
  std::snprintf(name, sizeof name, "ctxalloc_global_%u", socket);
  char what[48];
  std::snprintf(what, sizeof what, "socket %u global heap", socket);
  rc = reserve_region(s->region, cfg, kind, name, socket, sc->global_heap, what);
  if (rc != 0) {
    s->~SocketHeap();
    os_unmap(mem, mapping);
    return nullptr;
  }
  Registry::instance().socket(socket).metadata_bytes.fetch_add(mapping, std::memory_order_relaxed);
  return s;
}

void destroy_socket_heap(SocketHeap* s) noexcept {
  unaccount_region(s->region);
  Registry::instance().socket(s->socket).metadata_bytes.fetch_sub(s->mapping_bytes,
                                                                  std::memory_order_relaxed);
  const std::size_t mapping = s->mapping_bytes;
  s->~SocketHeap();
  os_unmap(s, mapping);
}

// The ready flow blocks: taken and given back at once, so that the arena holds them on
// its free list and the first flows take no slab from the heap.
bool make_ready_blocks(LcoreHeap& h, const Config& cfg) noexcept {
  if (cfg.flows.ready_blocks == 0) return true;
  ContextArena* arena = h.heap.context_arena(cfg.flows.block_size);
  if (arena == nullptr) return false;
  std::uint32_t made = 0;
  Block chain{};  // blocks linked through their first word, given back afterwards
  for (; made < cfg.flows.ready_blocks; ++made) {
    const Block b = arena->obtain();
    if (b.ptr == nullptr) break;
    *reinterpret_cast<std::byte**>(b.ptr) = chain.ptr;
    chain = b;
  }
  while (chain.ptr != nullptr) {
    std::byte* next = *reinterpret_cast<std::byte**>(chain.ptr);
    arena->release(chain);
    chain = Block{next, chain.size};
  }
  return made == cfg.flows.ready_blocks;
}

// The tiers of an lcore heap: the fallback chain's, narrowed by a growing flow's spill
// (the heap has one set: its flows' spills and its thread allocator's fallback share it).
FallbackTiers tiers_of(const Config& cfg, bool has_thread) noexcept {
  FallbackTiers t{has_thread && cfg.falls_back_to(Tier::thread), cfg.falls_back_to(Tier::global)};
  if (cfg.flows.growing()) {
    t.thread = t.thread && cfg.flows.spill != FlowSpill::refuse;
    t.global = t.global && cfg.flows.spill == FlowSpill::global;
  }
  return t;
}

// Growing flows: the lcore's pool of chunks on its flow memory, shaped by [flows].
bool set_up_flow_chunks(LcoreHeap& h, const Config& cfg) noexcept {
  FlowChunks& pool = h.heap.flow_chunks();
  GrowingOptions o;
  o.first_chunk = cfg.flows.first_chunk;
  o.max_chunk = cfg.flows.max_chunk;
  o.large_block = cfg.flows.large_block_bytes();
  o.budget = cfg.flows.budget;
  if (o.child_chunk > o.first_chunk) o.child_chunk = o.first_chunk;
  if (!pool.set_sources(&h.first_chunks, &h.growth) || !pool.set_options(o)) return false;
  // An lcore with no share (not a flow lcore) is refused before the pool, in
  // make_flow_context (0 is "no limit" to the pool).
  pool.set_context_limit(h.flow_share);
  h.heap.set_context_source(&h.growth);  // large blocks on the flow memory first
  return true;
}

LcoreHeap* make_lcore_heap(const Config& cfg, PageKind kind, unsigned lcore, SocketHeap& socket,
                           std::uint64_t share, int& rc) {
  const LcoreConfig lc = cfg.lcore(lcore);
  const bool has_thread = lc.thread_allocator != AllocatorKind::none;
  // Its thread allocator and its ready flow blocks (fixed kinds) or its flow memory
  // (growing: first chunks of its share, growth); at least one segment.
  const std::size_t thread_bytes = (has_thread ? lc.thread_size : 0) + cfg.ready_bytes();
  const bool growing = cfg.flows.growing() && share != 0;
  const std::size_t first_bytes = growing ? cfg.first_chunk_bytes(share) : 0;
  const std::size_t growth_bytes = growing ? cfg.flows.growth_size : 0;
  std::size_t bytes = thread_bytes + first_bytes + growth_bytes;
  if (bytes < kSegment) bytes = kSegment;
  const std::size_t mapping = mapping_size<LcoreHeap>();
  void* mem = map_on_socket(mapping, socket.socket);
  if (mem == nullptr) {
    rc = -ENOMEM;
    return nullptr;
  }
  // A source bounded by 0 bytes has no bound: an lcore without flow memory (fixed kinds,
  // or no share) gets flow sources bounded by one segment that nothing takes (with no
  // share, make_flow_context refuses every flow before the pool).
  auto* h = new (mem) LcoreHeap(lcore, socket.socket, thread_bytes != 0 ? thread_bytes : kSegment,
                                first_bytes != 0 ? first_bytes : kSegment,
                                growth_bytes != 0 ? growth_bytes : kSegment, socket.heap);
  h->mapping_bytes = mapping;
  h->thread_mode = has_thread;
  h->flow_share = share;
  h->heap.set_fallback_tiers(tiers_of(cfg, has_thread));
  if (cfg.flows.growing() && !set_up_flow_chunks(*h, cfg)) {
    CTXALLOC_LOG(ERR, "lcore %u: growing flow options refused", lcore);
    rc = -EINVAL;
  }
  char name[32];
  std::snprintf(name, sizeof name, "ctxalloc_lcore_%u", lcore);
  char what[48];
  std::snprintf(what, sizeof what, "lcore %u thread heap", lcore);
  if (rc == 0) rc = reserve_region(h->region, cfg, kind, name, socket.socket, bytes, what);
  if (rc == 0 && !cfg.flows.growing() && !make_ready_blocks(*h, cfg)) {
    CTXALLOC_LOG(ERR, "lcore %u: cannot make %u ready flow blocks of %s", lcore,
                 cfg.flows.ready_blocks, format_bytes(cfg.flows.block_size).c_str());
    rc = -ENOMEM;
  }
  if (rc != 0) {
    unaccount_region(h->region);
    h->~LcoreHeap();
    os_unmap(mem, mapping);
    return nullptr;
  }
  Registry::instance()
      .socket(socket.socket)
      .metadata_bytes.fetch_add(mapping, std::memory_order_relaxed);
  return h;
}

void destroy_lcore_heap(LcoreHeap* h) noexcept {
  unaccount_region(h->region);
  Registry::instance().socket(h->socket).metadata_bytes.fetch_sub(h->mapping_bytes,
                                                                  std::memory_order_relaxed);
  const std::size_t mapping = h->mapping_bytes;
  // Members go in reverse order: the thread heap gives its segments back (spill chunks on
  // the global heap's memory to that heap's source), then the source, then the region.
  h->~LcoreHeap();
  os_unmap(h, mapping);
}

// ------------------------------------------------------------------ publishing

void attach_sources(LcoreHeap* h) noexcept {
  Registry& reg = Registry::instance();
  int rc = reg.attach_lcore(
      h->lcore, StatsSource{Account::thread, "thread_heap", detail::read_thread_account, h});
  if (rc == 0)
    rc = reg.attach_lcore(
        h->lcore, StatsSource{Account::context, "flow_contexts", detail::read_context_account, h});
  if (rc == 0) rc = reg.attach_lcore_counts(h->lcore, CountsSource{detail::read_lcore_counts, h});
  if (rc != 0)
    CTXALLOC_LOG(WARNING, "lcore %u: statistics not registered (%d): telemetry incomplete",
                 h->lcore, rc);
}

void attach_sources(SocketHeap* s) noexcept {
  if (Registry::instance().attach_socket(
          s->socket,
          StatsSource{Account::global_heap, "global_heap", detail::read_global_account, s}) != 0)
    CTXALLOC_LOG(WARNING, "socket %u: global heap statistics not registered", s->socket);
}

// Lcores that exist now: EAL's (main, workers, service) and registered non-EAL threads.
bool lcore_exists(unsigned id) noexcept {
  return rte_lcore_has_role(id, ROLE_OFF) == 0;
}

// ------------------------------------------------------------------ lcore callbacks

// EAL calls init for every lcore that exists when the callbacks are registered (on the
// registering thread) and for every thread registered later (rte_thread_register, on
// that thread). Lcores set up already are left alone; a new one gets its heap, bound on
// its first flow context. A heap that cannot be made is logged; the thread still runs,
// on the global heap.
int on_lcore_init(unsigned lcore, void*) {
  Guard g;
  LcoreRuntime& rt = detail::lcore_runtime();
  if (!rt.ready.load(std::memory_order_relaxed) || lcore >= kMaxLcores) return 0;
  if (rt.lcores[lcore].load(std::memory_order_relaxed) != nullptr) return 0;
  SocketHeap* s =
      rt.sockets[rte_lcore_to_socket_id(lcore) % kMaxSockets].load(std::memory_order_relaxed);
  if (s == nullptr || g_config == nullptr) {
    CTXALLOC_LOG(WARNING,
                 "lcore %u: no global heap on its socket %u: it runs on the global "
                 "heap of node 0",
                 lcore, rte_lcore_to_socket_id(lcore));
    return 0;
  }
  PageKind kind = s->region.kind();
  int rc = 0;
  // A thread registered after set-up gets a share too (max_flows was split over the
  // lcores that existed then: the process may hold one share more per such thread),
  // unless set_flow_lcores named the flow lcores and not this one.
  const std::uint64_t share = !rt.flow_lcores_set || rt.flow_lcore[lcore] ? g_flow_share : 0;
  LcoreHeap* h = make_lcore_heap(*g_config, kind, lcore, *s, share, rc);
  if (h == nullptr) return 0;
  attach_sources(h);
  rt.lcores[lcore].store(h, std::memory_order_release);
  CTXALLOC_LOG(INFO, "lcore %u (registered thread): thread heap of %s on socket %u", lcore,
               format_bytes(h->region.bytes()).c_str(), h->socket);
  return 0;
}

// A registered thread leaving (on its own thread), or the callbacks going away at
// tear-down (on the main lcore, for every lcore): only the calling thread's binding is
// undone here.
void on_lcore_uninit(unsigned lcore, void*) {
  LcoreHeap* h = detail::heap_of_lcore(lcore);
  if (h != nullptr && h->bound_thread.load(std::memory_order_relaxed) == pthread_self())
    detail::unbind_heap(*h);
}

// ------------------------------------------------------------------ set-up

void destroy_all(LcoreRuntime& rt, SocketHeap* const* sockets, LcoreHeap* const* lcores) {
  for (unsigned l = 0; l < kMaxLcores; ++l)
    if (lcores[l] != nullptr) destroy_lcore_heap(lcores[l]);
  for (unsigned s = 0; s < kMaxSockets; ++s)
    if (sockets[s] != nullptr) destroy_socket_heap(sockets[s]);
  (void)rt;
}

int setup_locked() {
  LcoreRuntime& rt = detail::lcore_runtime();
  if (rt.ready.load(std::memory_order_relaxed)) return 0;
  if (rte_lcore_count() == 0) {
    CTXALLOC_LOG(ERR, "per-lcore heaps: EAL is not initialised (call rte_eal_init first)");
    return -ENODEV;
  }
  if (const int rc = initialise(); rc != 0) return rc;
  const Config& cfg = *active_config();
  PageKind kind = PageKind::none;
  if (const int rc = choose_memory(cfg, kind); rc != 0) return rc;

  SocketHeap* sockets[kMaxSockets] = {};
  LcoreHeap* lcores[kMaxLcores] = {};
  // The flow lcores and their even share of max_flows (set_flow_lcores, else every lcore).
  unsigned flow_lcores = 0;
  for (unsigned l = 0; l < kMaxLcores; ++l) {
    if (!rt.flow_lcores_set) rt.flow_lcore[l] = lcore_exists(l);
    if (rt.flow_lcore[l]) ++flow_lcores;
  }
  const std::uint64_t share = Config::flow_share(cfg.flows.max_flows, flow_lcores);
  if (cfg.flows.growing()) {
    if (std::string e = cfg.flow_sizing_error(cfg.flows.max_flows, flow_lcores); !e.empty()) {
      CTXALLOC_LOG(ERR, "per-lcore heaps: %s: %s", cfg.source.c_str(), e.c_str());
      return -ENOMEM;
    }
  }
  int rc = 0;
  for (unsigned l = 0; l < kMaxLcores && rc == 0; ++l) {
    if (!lcore_exists(l)) continue;
    const unsigned socket = rte_lcore_to_socket_id(l);
    if (socket >= kMaxSockets) {
      CTXALLOC_LOG(ERR, "lcore %u: socket %u out of range", l, socket);
      rc = -EINVAL;
      break;
    }
    const LcoreConfig lc = cfg.lcore(l);
    if (lc.line != 0 && lc.socket != socket)
      CTXALLOC_LOG(WARNING,
                   "lcore %u: the configuration lists it on socket %u, DPDK puts it on "
                   "socket %u: its heap goes to socket %u",
                   l, lc.socket, socket, socket);
    if (sockets[socket] == nullptr) sockets[socket] = make_socket_heap(cfg, kind, socket, rc);
    if (rc == 0)
      lcores[l] = make_lcore_heap(cfg, kind, l, *sockets[socket], rt.flow_lcore[l] ? share : 0, rc);
  }
  if (rc != 0) {
    destroy_all(rt, sockets, lcores);
    return rc;
  }
  rt.growing = cfg.flows.growing();
  rt.flow_lifetime = detail::lifetime_of(cfg.flows.kind);
  rt.flow_bytes = rt.growing ? cfg.flows.first_chunk : cfg.flows.block_size;
  rt.max_flows = cfg.flows.max_flows;
  g_config = &cfg;
  g_flow_share = share;
  for (unsigned s = 0; s < kMaxSockets; ++s) {
    if (sockets[s] == nullptr) continue;
    attach_sources(sockets[s]);
    rt.sockets[s].store(sockets[s], std::memory_order_release);
    set_node_global_heap(s, &sockets[s]->heap);
  }
  unsigned n = 0;
  for (unsigned l = 0; l < kMaxLcores; ++l) {
    if (lcores[l] == nullptr) continue;
    attach_sources(lcores[l]);
    rt.lcores[l].store(lcores[l], std::memory_order_release);
    ++n;
    if (rt.growing)
      CTXALLOC_LOG(
          INFO,
          "lcore %u: thread heap (%s) and flow memory, %s on socket %u, %s: a share "
          "of %llu growing flows (%s of first chunks of %s, %s growth)",
          l, lcores[l]->thread_mode ? "tree" : "none",
          format_bytes(lcores[l]->region.bytes()).c_str(), lcores[l]->socket,
          detail::to_string(lcores[l]->region.kind()),
          static_cast<unsigned long long>(lcores[l]->flow_share),
          format_bytes(lcores[l]->flow_share ? lcores[l]->first_chunks.limit_bytes() : 0).c_str(),
          format_bytes(cfg.flows.first_chunk).c_str(),
          format_bytes(lcores[l]->flow_share ? lcores[l]->growth.limit_bytes() : 0).c_str());
    else
      CTXALLOC_LOG(INFO,
                   "lcore %u: thread heap (%s) of %s on socket %u, %s, %u ready %s flow "
                   "blocks of %s, a share of %llu flows",
                   l, lcores[l]->thread_mode ? "tree" : "none",
                   format_bytes(lcores[l]->region.bytes()).c_str(), lcores[l]->socket,
                   detail::to_string(lcores[l]->region.kind()), cfg.flows.ready_blocks,
                   to_string(cfg.flows.kind), format_bytes(cfg.flows.block_size).c_str(),
                   static_cast<unsigned long long>(lcores[l]->flow_share));
  }
  g_heaps_at_setup = heap_census().heaps;
  rt.ready.store(true, std::memory_order_release);
  // After ready: the init callback runs for every existing lcore now (all set up).
  g_callbacks = rte_lcore_callback_register("ctxalloc", on_lcore_init, on_lcore_uninit, nullptr);
  if (g_callbacks == nullptr)
    CTXALLOC_LOG(WARNING,
                 "lcore callbacks not registered: threads registered later run on "
                 "the global heap");
  CTXALLOC_LOG(INFO, "per-lcore heaps set up: %u lcores, configuration %s", n, cfg.source.c_str());
  return 0;
}

// ------------------------------------------------------------------ tear-down

int unbind_on_lcore(void* arg) {
  detail::unbind_heap(*static_cast<LcoreHeap*>(arg));
  return 0;
}

// Unbinds every lcore on its own thread: here for the calling thread, by a remote launch
// for a waiting worker. Returns how many stay bound (running, or a foreign thread).
unsigned unbind_all(LcoreRuntime& rt) noexcept {
  unsigned busy = 0;
  const auto self = pthread_self();
  for (unsigned l = 0; l < kMaxLcores; ++l) {
    LcoreHeap* h = rt.lcores[l].load(std::memory_order_acquire);
    if (h == nullptr || h->bound_thread.load(std::memory_order_acquire) == 0) continue;
    if (h->bound_thread.load(std::memory_order_relaxed) == self) {
      detail::unbind_heap(*h);
    } else if (rte_lcore_has_role(l, ROLE_RTE) != 0 && l != rte_get_main_lcore() &&
               rte_eal_get_lcore_state(l) == WAIT &&
               rte_eal_remote_launch(unbind_on_lcore, h, l) == 0) {
      rte_eal_wait_lcore(l);
    }
    if (h->bound_thread.load(std::memory_order_acquire) != 0) {
      CTXALLOC_LOG(ERR, "teardown: lcore %u is still bound: it %s", l,
                   rte_lcore_has_role(l, ROLE_RTE) != 0 && rte_eal_get_lcore_state(l) == RUNNING
                       ? "is running (call rte_eal_mp_wait_lcore first)"
                       : "runs on a thread tear-down cannot reach (call "
                         "ctxalloc_dpdk_lcore_unbind on it)");
      ++busy;
    }
  }
  return busy;
}

// What is still in use, logged per lcore and socket; true when nothing is.
bool nothing_in_use(LcoreRuntime& rt, TeardownReport& r) noexcept {
  for (unsigned l = 0; l < kMaxLcores; ++l) {
    LcoreHeap* h = rt.lcores[l].load(std::memory_order_acquire);
    if (h == nullptr) continue;
    ++r.lcores;
    h->heap.drain_remote();  // unbound: no owner drains it now (a no-op once abandoned)
    const std::uint64_t live = detail::lcore_bytes_in_use(*h);
    const std::uint64_t contexts = h->heap.live_contexts();
    if (live != 0 || contexts != 0)
      CTXALLOC_LOG(ERR, "teardown: lcore %u still has %s in use, %llu flow contexts not released",
                   l, format_bytes(live).c_str(), static_cast<unsigned long long>(contexts));
    r.live_bytes += live;
    r.live_contexts += contexts;
  }
  for (unsigned s = 0; s < kMaxSockets; ++s) {
    SocketHeap* sh = rt.sockets[s].load(std::memory_order_acquire);
    if (sh == nullptr) continue;
    ++r.sockets;
    const std::uint64_t live = sh->heap.stats().bytes_in_use;
    if (live != 0)
      CTXALLOC_LOG(ERR, "teardown: socket %u global heap still has %s in use", s,
                   format_bytes(live).c_str());
    r.live_bytes += live;
  }
  return r.live_bytes == 0 && r.live_contexts == 0;
}

// Frees one socket's heap once the lcore heaps are gone. A heap the switchable runtime
// made after set-up (a non-lcore thread in thread mode) refers to this global heap for
// good: then the object stays (a few KiB, never used for memory again: its region is
// gone and refuses), and only the memory goes back.
std::uint64_t retire_socket_heap(SocketHeap* s, bool keep_object) noexcept {
  s->heap.trim();
  s->segments.trim();
  const std::uint64_t bytes = s->region.bytes();
  if (s->segments.bytes_out() != 0 || s->region.free_segments() != s->region.segments()) {
    CTXALLOC_LOG(ERR,
                 "teardown: socket %u: %s of its memory is held outside its heap (a "
                 "non-lcore thread's heap spilled onto it): the memory stays",
                 s->socket, format_bytes(s->segments.bytes_out()).c_str());
    return 0;
  }
  if (!keep_object) {
    destroy_socket_heap(s);
    return bytes;
  }
  unaccount_region(s->region);
  s->region.free();
  CTXALLOC_LOG(DEBUG,
               "teardown: socket %u heap object kept (thread heaps made since set-up "
               "may refer to it); its memory is back",
               s->socket);
  return bytes;
}

int teardown_locked(TeardownReport& r) {
  LcoreRuntime& rt = detail::lcore_runtime();
  if (!rt.ready.load(std::memory_order_acquire)) return 0;
  flush();  // this thread's batched frees of other lcores' blocks
  r.busy_lcores = unbind_all(rt);
  const bool clean = nothing_in_use(rt, r);
  if (r.busy_lcores != 0 || !clean) return -EBUSY;

  rt.ready.store(false, std::memory_order_release);
  if (g_callbacks != nullptr) {
    // Calls on_lcore_uninit for every lcore on this thread: nothing is bound any more.
    rte_lcore_callback_unregister(g_callbacks);
    g_callbacks = nullptr;
  }
  const bool runtime_heaps_made = heap_census().heaps != g_heaps_at_setup;
  for (unsigned l = 0; l < kMaxLcores; ++l) {
    LcoreHeap* h = rt.lcores[l].exchange(nullptr, std::memory_order_acq_rel);
    if (h == nullptr) continue;
    Registry::instance().detach(h);
    r.bytes_returned += h->region.bytes();
    destroy_lcore_heap(h);
  }
  int rc = 0;
  for (unsigned s = 0; s < kMaxSockets; ++s) {
    SocketHeap* sh = rt.sockets[s].exchange(nullptr, std::memory_order_acq_rel);
    if (sh == nullptr) continue;
    set_node_global_heap(s, nullptr);
    Registry::instance().detach(sh);
    const std::uint64_t back = retire_socket_heap(sh, runtime_heaps_made);
    if (back == 0) rc = -EBUSY;
    r.bytes_returned += back;
  }
  g_config = nullptr;
  rt.flow_lcores_set = false;  // the next set-up shares max_flows over its own lcores
  CTXALLOC_LOG(INFO, "per-lcore heaps torn down: %u lcores, %u sockets, %s returned", r.lcores,
               r.sockets, format_bytes(r.bytes_returned).c_str());
  return rc;
}

}  // namespace

int set_flow_lcores(const unsigned* ids, unsigned n) noexcept {
  Guard g;
  LcoreRuntime& rt = detail::lcore_runtime();
  if (rt.ready.load(std::memory_order_relaxed)) return -EBUSY;
  if (ids == nullptr || n == 0 || n > kMaxLcores) return -EINVAL;
  for (unsigned i = 0; i < n; ++i)
    if (ids[i] >= kMaxLcores) return -EINVAL;
  for (bool& f : rt.flow_lcore)
    f = false;
  for (unsigned i = 0; i < n; ++i)
    rt.flow_lcore[ids[i]] = true;
  rt.flow_lcores_set = true;
  return 0;
}

int setup() noexcept {
  Guard g;
  try {
    return setup_locked();
  } catch (...) {
    return -ENOMEM;  // a log message that could not be formatted
  }
}

bool is_set_up() noexcept {
  return detail::lcore_runtime().ready.load(std::memory_order_acquire);
}

int teardown(TeardownReport* report) noexcept {
  TeardownReport r;
  int rc = 0;
  {
    Guard g;
    try {
      rc = teardown_locked(r);
    } catch (...) {
      rc = -ENOMEM;
    }
  }
  if (report != nullptr) *report = r;
  return rc;
}

}  // namespace ctxalloc::dpdk
