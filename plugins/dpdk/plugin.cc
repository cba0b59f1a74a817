// Loading and lazy initialisation of the plugin (see ctxalloc/dpdk/plugin.h).
#include "ctxalloc/dpdk/plugin.h"

#include <pthread.h>
#include <rte_eal.h>

#include <cerrno>
#include <cstdlib>
#include <new>
#include <string>

#include "detail/log.h"
#include "detail/pool.h"
#include "detail/telemetry.h"

namespace ctxalloc::dpdk {
namespace {

pthread_mutex_t g_init_lock = PTHREAD_MUTEX_INITIALIZER;
int g_init_rc = 1;  // 1: not tried yet
// Never freed: lcores may still read it while the process exits.
const Config* g_config = nullptr;
int g_ops_index = -ENOENT;

int load(const char* path) {
  const char* env = std::getenv("CTXALLOC_CONFIG");
  const char* file = path != nullptr ? path : (env != nullptr && *env != '\0' ? env : nullptr);
  ConfigResult r = file != nullptr ? load_config_file(file)
                                   : parse_config(default_config_text(), kDefaultConfigName);
  if (!r.ok()) {
    for (const Diagnostic& d : r.errors)
      CTXALLOC_LOG(ERR, "config %s", d.to_string().c_str());
    CTXALLOC_LOG(ERR, "configuration %s refused (%zu errors)%s", file ? file : "(embedded)",
                 r.errors.size(),
                 path == nullptr && file != nullptr ? " (from CTXALLOC_CONFIG)" : "");
    return -EINVAL;
  }
  g_config = new Config(std::move(*r.config));
  CTXALLOC_LOG(INFO, "configuration %s: %zu sockets, %zu lcores, hugepages %s",
               g_config->source.c_str(), g_config->sockets.size(), g_config->lcores.size(),
               to_string(g_config->hugepages));
  return 0;
}

// Registered when the library is loaded: before rte_eal_init for a linked library or
// LD_PRELOAD, during it for EAL -d. Registering twice (a linked copy and a plugin copy)
// is caught by register_ops.
[[gnu::constructor]] void on_load() {
  g_ops_index = detail::register_ops(kOpsName);
  detail::register_telemetry();
}

}  // namespace

int initialise(const char* path) noexcept {
  pthread_mutex_lock(&g_init_lock);
  int rc = g_init_rc;
  if (rc == 1) {
    try {
      rc = load(path);
    } catch (const std::bad_alloc&) {
      rc = -ENOMEM;
    } catch (...) {
      rc = -EINVAL;
    }
    g_init_rc = rc;
  } else if (rc == 0 && path != nullptr && g_config->source != path) {
    CTXALLOC_LOG(ERR, "configuration %s loaded already; not loading %s", g_config->source.c_str(),
                 path);
    rc = -EALREADY;
  }
  pthread_mutex_unlock(&g_init_lock);
  return rc;
}

const Config* active_config() noexcept {
  pthread_mutex_lock(&g_init_lock);
  const Config* c = g_init_rc == 0 ? g_config : nullptr;
  pthread_mutex_unlock(&g_init_lock);
  return c;
}

int ops_index() noexcept {
  return g_ops_index;
}

}  // namespace ctxalloc::dpdk
