// What the two-node tests share (tests/numa/): whether this machine has two NUMA nodes
// with a CPU each (the guest of scripts/numa_guest.sh has), pinning a thread to a node,
// and asking the kernel where memory really is (move_pages) and how many hugepages each
// node has free (sysfs). Nothing here trusts ctxalloc's own figures.
#pragma once

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ctxalloc/sources/node_topology.h"
#include "ctxalloc/sources/numa_policy.h"

namespace ctxalloc::testing {

/// The first CPU of `node` (from sysfs), or -1.
inline int first_cpu_of(unsigned node) {
  const NodeTopology t = NodeTopology::read();
  for (int c = 0; c < 1024; ++c)
    if (t.node_of_cpu(c) == node &&
        std::ifstream("/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/core_id"))
      return c;
  return -1;
}

/// Why the two-node tests cannot run here, or empty: two nodes, each with a CPU.
inline std::string why_not_two_nodes() {
  if (!numa_supported()) return "the kernel has no NUMA policies";
  if (numa_highest_node() < 1)
    return "this machine has one NUMA node (run them in a two-node guest: bash "
           "scripts/numa_guest.sh -- bash tests/numa/guest_tests.sh BUILD_DIR)";
  for (unsigned n : {0U, 1U})
    if (first_cpu_of(n) < 0) return "node " + std::to_string(n) + " has no CPU";
  return {};
}

#define CTXALLOC_REQUIRE_TWO_NODES()                                               \
  do {                                                                             \
    const std::string why_ = ::ctxalloc::testing::why_not_two_nodes();             \
    if (!why_.empty()) GTEST_SKIP() << "needs two NUMA nodes with CPUs: " << why_; \
  } while (0)

/// Pins the calling thread to the first CPU of `node`; true when it runs there now.
inline bool pin_to_node(unsigned node) {
  const int cpu = first_cpu_of(node);
  if (cpu < 0) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) return false;
  return sched_getcpu() == cpu;
}

/// Runs f on a new thread pinned to `node` and waits for it.
template <class F>
void on_node(unsigned node, F&& f) {
  std::thread t([&] {
    ASSERT_TRUE(pin_to_node(node)) << "cannot run on node " << node;
    f();
  });
  t.join();
}

/// Pages of [p, p + bytes) by the node the kernel has them on (move_pages, one query per
/// `stride` bytes, the last byte included); key -ENOENT: not faulted in.
inline std::map<int, std::size_t> nodes_of(const void* p, std::size_t bytes,
                                           std::size_t stride = 4096) {
  std::map<int, std::size_t> by_node;
  const auto* b = static_cast<const std::byte*>(p);
  for (std::size_t off = 0; off < bytes; off += stride)
    ++by_node[numa_node_of(b + off)];
  if (bytes != 0 && (bytes - 1) % stride != 0) ++by_node[numa_node_of(b + bytes - 1)];
  return by_node;
}

/// "node 0: 3 pages, node 1: 5 pages" for a failure message.
inline std::string describe(const std::map<int, std::size_t>& by_node) {
  std::ostringstream s;
  for (auto [n, c] : by_node)
    s << (s.tellp() > 0 ? ", " : "")
      << (n >= 0 ? "node " + std::to_string(n) : "error " + std::to_string(n)) << ": " << c;
  return s.str();
}

/// True when every queried page of the block is on `node`.
inline bool all_on(const void* p, std::size_t bytes, int node, std::size_t stride = 4096) {
  const auto m = nodes_of(p, bytes, stride);
  return m.size() == 1 && m.begin()->first == node;
}

/// 2 MiB hugepages of a node from sysfs: nr_hugepages and free_hugepages.
struct NodeHugepages {
  long total = -1;
  long free = -1;
};
inline long read_long(const std::string& path) {
  std::ifstream f(path);
  long v = -1;
  f >> v;
  return f ? v : -1;
}
inline std::string node_hugepage_dir(unsigned node) {
  return "/sys/devices/system/node/node" + std::to_string(node) + "/hugepages/hugepages-2048kB/";
}
inline NodeHugepages node_hugepages(unsigned node) {
  return {read_long(node_hugepage_dir(node) + "nr_hugepages"),
          read_long(node_hugepage_dir(node) + "free_hugepages")};
}

}  // namespace ctxalloc::testing
