// What ctxfwd adds to the EAL arguments before rte_eal_init, decided from the arguments
// given and from the machine: hugepages when enough are free (else --no-huge -m N), and
// the embedded default devices when no device is given. No DPDK header: the decisions
// are pure functions of their inputs and unit-tested.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ctxfwd {

/// What the user's EAL arguments already say.
struct EalArgScan {
  bool devices = false;      ///< --vdev, -a / --allow (a device is named)
  bool no_pci = false;       ///< --no-pci
  bool no_huge = false;      ///< --no-huge
  bool memory = false;       ///< -m or --socket-mem
  bool in_memory = false;    ///< --in-memory
  bool file_prefix = false;  ///< --file-prefix
};

/// Reads the EAL arguments (argv[0] first, as split_args gives them).
EalArgScan scan_eal_args(std::span<const std::string> eal);

/// Free hugepages on this machine, from sysfs and /proc/mounts (read by the library's
/// kernel_info.h): what the hugepage decision needs.
struct HugepageInfo {
  std::uint64_t free_bytes = 0;  ///< all sizes together
  std::uint64_t page_bytes = 0;  ///< the size with the most free memory (0: none)
  bool mount_writable = false;   ///< a hugetlbfs mount we may create files in
};
HugepageInfo probe_hugepages();

/// PCI devices bound to a DPDK-capable kernel driver (vfio-pci, uio_pci_generic, igb_uio).
std::size_t dpdk_bound_pci_devices();

/// What the run needs from DPDK's memory, for the hugepage decision and for -m.
struct MemoryNeed {
  std::uint64_t mbufs = 0;               ///< mbufs in all pools
  std::uint32_t workers = 1;             ///< worker lcores (an upper bound is fine)
  std::uint32_t max_flows = 0;           ///< per worker
  std::uint32_t flow_context_bytes = 0;  ///< per flow
  bool flow_memory_from_dpdk = false;    ///< rte_malloc flow contexts live in DPDK's heap
  /// Memory the ctxalloc per-lcore allocators reserve from DPDK (memzones: global heaps,
  /// thread heaps, ready flow blocks), from the configuration.
  std::uint64_t ctxalloc_bytes = 0;
};
/// Mebibytes, rounded up, with headroom for EAL's own structures.
std::uint64_t estimate_memory_mb(const MemoryNeed& need);

/// The embedded default's devices.
struct EmbeddedDevices {
  std::string rx_pcap;  ///< input capture
  std::string tx_pcap;  ///< output capture; empty: net_null and the input replayed forever
};

/// The EAL arguments to pass and what was decided, for the log.
struct EalPlan {
  std::vector<std::string> args;   ///< argv for rte_eal_init (argv[0] first)
  bool embedded = false;           ///< the embedded default's devices were added
  bool hugepages = false;          ///< EAL runs on hugepages
  bool own_file_prefix = false;    ///< the --file-prefix was added here (removed at exit)
  std::vector<std::string> notes;  ///< one log line per decision
};

/// Adds what is missing to `eal`: the embedded default's devices (when `embedded`),
/// a unique --file-prefix for them, and the hugepage choice. An error string when the
/// embedded paths cannot be passed to EAL (a ',' or '=' would split the device string).
std::string plan_eal(std::span<const std::string> eal, const EalArgScan& scan, bool embedded,
                     const EmbeddedDevices& devices, const HugepageInfo& huge,
                     std::uint64_t need_mb, long pid, EalPlan& out);

}  // namespace ctxfwd
