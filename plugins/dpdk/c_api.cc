// The C API (ctxalloc_dpdk.h) over the C++ one. Every entry point catches everything.
#include "ctxalloc_dpdk.h"

#include <rte_mempool.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/plugin.h"
#include "ctxalloc/dpdk/registry.h"
#include "detail/log.h"
#include "detail/pool.h"

namespace {

using namespace ctxalloc;
using namespace ctxalloc::dpdk;

static_assert(CTXALLOC_LCORE_NON_EAL == kNonEalSlot);
static_assert(CTXALLOC_ACCOUNT_MEMPOOL == static_cast<int>(Account::mempool));
static_assert(CTXALLOC_ACCOUNT_GLOBAL_HEAP == static_cast<int>(Account::global_heap));

void copy_out(const std::string& s, char* buf, std::size_t len) {
  if (buf == nullptr || len == 0) return;
  const std::size_t n = s.size() < len - 1 ? s.size() : len - 1;
  std::memcpy(buf, s.data(), n);
  buf[n] = '\0';
}

void to_c(const Stats& s, ctxalloc_dpdk_stats* out) {
  out->allocations = s.allocations;
  out->deallocations = s.deallocations;
  out->failures = s.failures;
  out->misuses = s.misuses;
  out->bytes_in_use = s.bytes_in_use;
  out->peak_bytes = s.peak_bytes;
  out->capacity = s.capacity;
}

bool valid_account(int a) {
  return a >= 0 && a < static_cast<int>(Account::count);
}

static_assert(CTXALLOC_DPDK_MEMORY_HUGEPAGES == static_cast<int>(Memory::hugepages));
static_assert(CTXALLOC_DPDK_MEMORY_NORMAL_PAGES == static_cast<int>(Memory::normal_pages));

Context* to_context(ctxalloc_dpdk_flow* f) {
  return reinterpret_cast<Context*>(f);
}

int placement_to_c(int rc, const Placement& p, struct ctxalloc_dpdk_placement* out) {
  out->node = p.node;
  out->page_size = p.page_size;
  out->pages = p.pages;
  out->local_pages = p.local_pages;
  out->remote_pages = p.remote_pages;
  out->remote_node = p.remote_node;
  out->absent_pages = p.absent_pages;
  return rc;
}

}  // namespace

extern "C" {

int ctxalloc_dpdk_init(const char* config_path) {
  return initialise(config_path);
}

const char* ctxalloc_dpdk_config_source(void) {
  const Config* c = active_config();
  return c != nullptr ? c->source.c_str() : nullptr;
}

int ctxalloc_dpdk_check_config(const char* path, char* errors, size_t len) {
  if (path == nullptr) return -EINVAL;
  try {
    const ConfigResult r = load_config_file(path);
    std::string text;
    for (const Diagnostic& d : r.errors)
      text += d.to_string() + "\n";
    copy_out(text, errors, len);
    return r.ok() ? 0 : -EINVAL;
  } catch (...) {
    return -ENOMEM;
  }
}

int ctxalloc_dpdk_ops_index(void) {
  return ops_index();
}

int ctxalloc_dpdk_log_type(void) {
  return log_type();
}

int ctxalloc_dpdk_lcore_stats(unsigned int lcore_id, int account, struct ctxalloc_dpdk_stats* out) {
  if (out == nullptr || lcore_id > kNonEalSlot || !valid_account(account)) return -EINVAL;
  to_c(Registry::instance().read_lcore(lcore_id)[static_cast<Account>(account)], out);
  return 0;
}

int ctxalloc_dpdk_socket_stats(unsigned int socket_id, int account,
                               struct ctxalloc_dpdk_stats* out) {
  if (out == nullptr || socket_id >= kMaxSockets || !valid_account(account)) return -EINVAL;
  to_c(Registry::instance().read_socket(socket_id)[static_cast<Account>(account)], out);
  return 0;
}

int ctxalloc_dpdk_mempool_check(const struct rte_mempool* mp, char* why, size_t len) {
  try {
    std::string reason;
    if (const int rc = dpdk::detail::verify_pool(mp, &reason); rc != 0) {
      copy_out(reason, why, len);
      return rc;
    }
    const CheckResult r = dpdk::detail::check_pool(mp);
    copy_out(r.error(), why, len);
    return r.is_ok() ? 0 : -EFAULT;
  } catch (...) {
    return -ENOMEM;
  }
}

int ctxalloc_dpdk_lcores_setup(void) {
  return setup();
}

int ctxalloc_dpdk_lcore_bind(void) {
  return bind_lcore();
}

int ctxalloc_dpdk_lcore_unbind(void) {
  return unbind_lcore();
}

int ctxalloc_dpdk_fini(struct ctxalloc_dpdk_teardown* report) {
  TeardownReport r;
  const int rc = teardown(&r);
  if (report != nullptr) {
    report->lcores = r.lcores;
    report->sockets = r.sockets;
    report->busy_lcores = r.busy_lcores;
    report->bytes_returned = r.bytes_returned;
    report->live_bytes = r.live_bytes;
    report->live_contexts = r.live_contexts;
  }
  return rc;
}

struct ctxalloc_dpdk_flow* ctxalloc_dpdk_flow_create(void) {
  return reinterpret_cast<ctxalloc_dpdk_flow*>(make_flow_context());
}

// ContextScope's enter and leave (ctxalloc::enter_context), split in two calls for C;
// another lcore's flow is refused (-EPERM) before anything changes.
int ctxalloc_dpdk_flow_enter(struct ctxalloc_dpdk_flow* flow, struct ctxalloc_dpdk_scope* saved) {
  Context* c = to_context(flow);
  if (c == nullptr || saved == nullptr) return -EINVAL;
  if (!context_is_local(*c)) return -EPERM;
  const SavedContext s = enter_context(*c);
  saved->saved_context = s.context;
  saved->saved_mode = static_cast<unsigned char>(s.mode);
  return 0;
}

void ctxalloc_dpdk_flow_leave(const struct ctxalloc_dpdk_scope* saved) {
  if (saved == nullptr) return;
  leave_context(SavedContext{static_cast<Mode>(saved->saved_mode),
                             static_cast<Context*>(saved->saved_context)});
}

int ctxalloc_dpdk_flow_release(struct ctxalloc_dpdk_flow* flow) {
  return release_flow_context(to_context(flow));
}

void* ctxalloc_dpdk_malloc(size_t size) {
  return ctxalloc::allocate(size);
}

void* ctxalloc_dpdk_aligned_alloc(size_t align, size_t size) {
  return ctxalloc::allocate(size, align);
}

void ctxalloc_dpdk_free(void* p) {
  ctxalloc::deallocate(p);
}

int ctxalloc_dpdk_lcore_info(unsigned int lcore_id, struct ctxalloc_dpdk_lcore_info* out) {
  if (out == nullptr || lcore_id >= kMaxLcores) return -EINVAL;
  const LcoreFigures f = lcore_figures(lcore_id);
  *out = (struct ctxalloc_dpdk_lcore_info){};
  out->present = f.present;
  out->bound = f.bound;
  out->thread_mode = f.thread_mode;
  out->socket = f.socket;
  out->memory = static_cast<int>(f.memory);
  out->page_size = f.page_size;
  out->region_bytes = f.region_bytes;
  out->segment_bytes = f.segment_bytes;
  out->peak_segment_bytes = f.peak_segment_bytes;
  to_c(f.thread, &out->thread);
  out->contexts_made = f.contexts_made;
  out->contexts_released = f.contexts_released;
  out->contexts_live = f.contexts_live;
  out->context_failures = f.context_failures;
  out->flow_limit_hits = f.flow_limit_hits;
  out->context_bytes = f.context_bytes;
  out->spills_to_thread = f.spills_to_thread;
  out->spills_to_global = f.spills_to_global;
  out->spill_failures = f.spill_failures;
  out->spilled_bytes = f.spilled_bytes;
  out->thread_to_global = f.thread_to_global;
  out->refused = f.refused;
  out->remote_received = f.remote_received;
  out->bytes_in_use = f.bytes_in_use;
  out->peak_bytes = f.peak_bytes;
  return 0;
}

int ctxalloc_dpdk_socket_info(unsigned int socket_id, struct ctxalloc_dpdk_socket_info* out) {
  if (out == nullptr || socket_id >= kMaxSockets) return -EINVAL;
  const SocketFigures f = socket_figures(socket_id);
  *out = (struct ctxalloc_dpdk_socket_info){};
  out->present = f.present;
  out->memory = static_cast<int>(f.memory);
  out->page_size = f.page_size;
  out->region_bytes = f.region_bytes;
  out->segment_bytes = f.segment_bytes;
  out->peak_segment_bytes = f.peak_segment_bytes;
  to_c(f.heap, &out->heap);
  out->lcores = static_cast<unsigned>(f.lcores);
  return 0;
}

int ctxalloc_dpdk_lcore_placement(unsigned int lcore_id, struct ctxalloc_dpdk_placement* out) {
  if (out == nullptr) return -EINVAL;
  Placement p;
  const int rc = lcore_placement(lcore_id, &p);
  return placement_to_c(rc, p, out);
}

int ctxalloc_dpdk_socket_placement(unsigned int socket_id, struct ctxalloc_dpdk_placement* out) {
  if (out == nullptr) return -EINVAL;
  Placement p;
  const int rc = socket_placement(socket_id, &p);
  return placement_to_c(rc, p, out);
}

}  // extern "C"
