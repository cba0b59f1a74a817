// NodeTopology: how many NUMA nodes there are and which node each CPU belongs to, read
// from /sys/devices/system/node with open/read into stack buffers (kernel_info.h). libnuma answers
// the same questions, but numa_node_of_cpu() allocates a bitmask and reads sysfs through stdio
// (malloc), and numa_max_node() is only right after libnuma's constructor ran: neither may be
// called from inside malloc, which is where the switchable runtime is created when ctxalloc serves
// malloc (replace/). Reading costs a few system calls, once, when the runtime is created; the
// lookup afterwards is one array load.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctxalloc {

class NodeTopology {
 public:
  /// CPUs numbered at or above this are reported on node 0.
  static constexpr unsigned kMaxCpus = 4096;

  /// One node (0) and every CPU on it: what a machine without NUMA support looks like.
  constexpr NodeTopology() noexcept = default;

  /// The machine's topology from sysfs root (normally "/sys/devices/system/node"):
  /// `online` gives the nodes, `node<N>/cpulist` each node's CPUs. Missing or malformed
  /// files leave the one-node default for what they would have said. No allocation.
  static NodeTopology read(const char* root = "/sys/devices/system/node") noexcept;

  /// Highest online node + 1 (at least 1).
  unsigned nodes() const noexcept { return nodes_; }

  /// The node of a CPU (sched_getcpu()); 0 for a negative or unknown CPU.
  unsigned node_of_cpu(int cpu) const noexcept {
    return cpu >= 0 && static_cast<unsigned>(cpu) < kMaxCpus ? node_of_cpu_[cpu] : 0;
  }

 private:
  unsigned nodes_ = 1;
  std::uint16_t node_of_cpu_[kMaxCpus] = {};
};

}  // namespace ctxalloc
