// The C API (ctxalloc_dpdk.h) over the C++ one. Every entry point catches everything.
#include "ctxalloc_dpdk.h"

#include <rte_mempool.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

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
  if (mp == nullptr || mp->ops_index != ops_index() || mp->pool_data == nullptr) return -EINVAL;
  try {
    const CheckResult r = detail::check_pool(mp);
    copy_out(r.error(), why, len);
    return r.is_ok() ? 0 : -EFAULT;
  } catch (...) {
    return -ENOMEM;
  }
}

}  // extern "C"
