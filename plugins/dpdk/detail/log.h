// The plugin's rte_log type, "ctxalloc": `--log-level=ctxalloc:debug` turns on its debug
// messages. Registered when the library is loaded (a constructor), so it exists before
// EAL parses --log-level.
#pragma once

#include <rte_log.h>

namespace ctxalloc::dpdk {

/// The registered log type, or RTE_LOGTYPE_USER1 if registration failed.
int log_type() noexcept;

}  // namespace ctxalloc::dpdk

/// CTXALLOC_LOG(WARNING, "pool %s: %s", name, why): one line, prefixed "ctxalloc: ".
#define CTXALLOC_LOG(level, fmt, ...)                    \
  rte_log(RTE_LOG_##level, ::ctxalloc::dpdk::log_type(), \
          "ctxalloc: " fmt "\n" __VA_OPT__(, ) __VA_ARGS__)
