// The plugin's life cycle, for C++ users (C users: ctxalloc_dpdk.h). Loading the library
// registers the log type, the `ctxalloc` mempool ops and the /ctxalloc/ telemetry
// commands; the configuration is read on first use (the first ctxalloc mempool, the first
// telemetry request, or an explicit initialise()).
#pragma once

#include "ctxalloc/dpdk/config.h"

namespace ctxalloc::dpdk {

/// The mempool ops name of the driver.
inline constexpr const char* kOpsName = "ctxalloc";

/// Reads the configuration once: `path` if given, else $CTXALLOC_CONFIG, else the
/// embedded config/default.ini. Returns 0; -EINVAL when the file is bad (every error is
/// logged with file:line); -EALREADY when a different file was loaded already; -ENOMEM.
/// Thread-safe; later calls return the first outcome.
int initialise(const char* path = nullptr) noexcept;

/// The configuration in force, or null before a successful initialise().
const Config* active_config() noexcept;

/// The index of the `ctxalloc` ops in rte_mempool_ops_table, or the negative errno
/// registration failed with (-ENOSPC: the table's 16 slots were full).
int ops_index() noexcept;

}  // namespace ctxalloc::dpdk
