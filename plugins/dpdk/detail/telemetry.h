// Registration of the /ctxalloc/ telemetry commands (telemetry.cc lists them).
#pragma once

namespace ctxalloc::dpdk::detail {

/// Registers every command; failures are logged, not fatal. Called when the library loads.
void register_telemetry() noexcept;

}  // namespace ctxalloc::dpdk::detail
