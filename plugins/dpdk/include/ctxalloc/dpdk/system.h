// This machine as sysfs describes it (NUMA nodes, their CPUs and hugepages), a config
// judged against it, and hugepage reservation per node. The sysfs root is /sys, or
// CTXALLOC_SYSFS, so that tests can run all of this against a fake tree.
//
// Lcore ids in a config are taken as CPU ids, as EAL maps them without --lcores.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ctxalloc/dpdk/config.h"
#include "ctxalloc/sources/kernel_info.h"

namespace ctxalloc::dpdk {

struct NodeInfo {
  unsigned id = 0;
  std::vector<unsigned> cpus;
  /// One per page size the node has a pool of (the library's reader, kernel_info.h).
  std::vector<HugePageCounts> hugepages;

  /// The count for this page size, or null when the node has no such pool.
  const HugePageCounts* pages_of(std::uint64_t page_size) const noexcept;
};

struct SystemInfo {
  std::string root;                       ///< the sysfs root read
  std::vector<NodeInfo> nodes;            ///< sorted by id; one node 0 without NUMA
  std::vector<unsigned> online_cpus;      ///< sorted
  std::vector<std::uint64_t> page_sizes;  ///< hugepage sizes the kernel supports, bytes

  const NodeInfo* node(unsigned id) const noexcept;
  /// The node a CPU is on, or -1.
  int node_of_cpu(unsigned cpu) const noexcept;
};

/// /sys, or $CTXALLOC_SYSFS when set.
std::string sysfs_root();

/// Reads nodes, CPUs and hugepages under `root`.
SystemInfo probe_system(const std::string& root);

/// What `check --against-system` adds: nodes, lcores (as CPUs) and the socket they are
/// on, hugepage sizes and counts. Missing hugepages are errors under
/// `hugepages = require`, warnings (in `warnings`) under `prefer`.
std::vector<Diagnostic> check_against_system(const Config& c, const SystemInfo& sys,
                                             std::vector<Diagnostic>& warnings);

/// One line of `ctxalloc-config reserve`'s report.
struct ReserveStep {
  bool ok = false;  ///< done, or nothing needed doing
  std::string text;
};

/// Raises nr_hugepages of each socket's node and page size to what the file asks for
/// (never lowers it: other programs may use the pages), then reads back what the kernel
/// granted. Sockets with 0 hugepages are left alone.
std::vector<ReserveStep> reserve_hugepages(const Config& c, const std::string& root);

}  // namespace ctxalloc::dpdk
