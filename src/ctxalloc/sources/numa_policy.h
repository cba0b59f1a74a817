// NUMA memory policies for mappings: which nodes a mapping's pages come from, set with
// mbind and read back with get_mempolicy (libnuma's numaif.h). A policy is a mode, a
// node mask and flags:
//   default     the thread's policy (usually: the node of the CPU that faults the page)
//   preferred   one node first, others when it is full
//   bind        only these nodes; faults fail (SIGBUS / ENOMEM on populate) when they are full
//   interleave  page by page round-robin over the nodes
//   local       the node of the CPU that faults the page, even if the thread's policy differs
// static_nodes: the mask is absolute and is not remapped when the cpuset changes;
// relative_nodes: bit i means "the i-th node this process may use" (wrapping around).
// strict: mbind fails (EIO) when pages already present break the policy; move: they are
// migrated instead. Both only matter for memory that already has pages (apply_numa_policy
// on populated memory); a fresh mapping has none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "ctxalloc/core/source_error.h"

namespace ctxalloc {

/// The largest node count a kernel can have (NODES_SHIFT 10): masks passed to the kernel
/// have this many bits, so they fit any kernel configuration.
inline constexpr unsigned kMaxNumaNodes = 1024;

/// A set of node numbers below kMaxNumaNodes. 128 bytes, no heap.
class NodeMask {
 public:
  constexpr NodeMask() noexcept = default;
  NodeMask(std::initializer_list<unsigned> nodes) noexcept;

  /// Adds a node; false (and no change) when node >= kMaxNumaNodes.
  bool set(unsigned node) noexcept;
  void clear(unsigned node) noexcept;
  bool test(unsigned node) const noexcept;
  bool empty() const noexcept;
  unsigned count() const noexcept;
  /// The lowest node, or -1 when empty.
  int first() const noexcept;
  /// The highest node, or -1 when empty.
  int last() const noexcept;

  /// The mask in the kernel's format (an array of unsigned long, kMaxNumaNodes bits).
  const unsigned long* kernel_words() const noexcept { return words_; }
  unsigned long* kernel_words() noexcept { return words_; }

  /// "0-3,6" into buf (truncated to cap); "none" when empty.
  void format(char* buf, std::size_t cap) const noexcept;

  friend bool operator==(const NodeMask& a, const NodeMask& b) noexcept;

 private:
  static constexpr unsigned kWordBits = 8 * sizeof(unsigned long);
  unsigned long words_[kMaxNumaNodes / kWordBits] = {};
};

enum class NumaMode : std::uint8_t { default_policy, preferred, bind, interleave, local };
enum class NodeFlags : std::uint8_t { none, static_nodes, relative_nodes };

const char* to_string(NumaMode m) noexcept;
const char* to_string(NodeFlags f) noexcept;

/// A policy as set by mbind. The default-constructed policy is "default": no mbind call.
struct NumaPolicy {
  NumaMode mode = NumaMode::default_policy;
  NodeMask nodes;
  NodeFlags flags = NodeFlags::none;
  bool strict = false;  ///< MPOL_MF_STRICT
  bool move = false;    ///< MPOL_MF_MOVE

  /// bind to one node, the common case ("memory of this lcore's socket only").
  static NumaPolicy bind_to(unsigned node) noexcept;
  static NumaPolicy preferred_node(unsigned node) noexcept;
  static NumaPolicy interleave_over(const NodeMask& nodes) noexcept;
  static NumaPolicy local() noexcept;
};

/// Whether the kernel supports memory policies (libnuma's numa_available()).
bool numa_supported() noexcept;

/// The highest node number of the system (numa_max_node()): 0 on a one-node machine.
int numa_highest_node() noexcept;

/// The nodes this process may allocate memory on (libnuma's numa_all_nodes_ptr: nodes
/// with memory, within the cpuset).
NodeMask numa_allowed_nodes() noexcept;

/// Checks a policy against this system without applying it: contradictory settings are
/// bad_option, nodes outside the system (or not allowed) no_such_node, a policy on a
/// kernel without NUMA numa_unavailable. The static flag may name nodes not (yet)
/// allowed as long as one is; relative node numbers are indexes, never "missing".
SourceError validate(const NumaPolicy& policy) noexcept;

/// mbind(addr, len, policy): addr page-aligned (huge-page aligned for hugetlb memory).
/// The default policy resets the range to the thread's policy.
SourceError apply_numa_policy(void* addr, std::size_t len, const NumaPolicy& policy) noexcept;

/// A policy as the kernel reports it for an address (get_mempolicy with MPOL_F_ADDR).
struct NumaPolicyReadback {
  SourceError error;  ///< not ok when get_mempolicy failed
  NumaMode mode = NumaMode::default_policy;
  NodeFlags flags = NodeFlags::none;
  NodeMask nodes;    ///< the mask as given (for static/relative: the user's mask)
  int raw_mode = 0;  ///< the kernel's value, flags included
};

/// The policy governing the mapping at addr. Kernels before 5.x report "local" as
/// "preferred with no node"; that is reported as local here.
NumaPolicyReadback read_numa_policy(const void* addr) noexcept;

/// The node holding the page at addr (move_pages status query: faults nothing in), or a
/// negative errno: -ENOENT when the page is not present yet.
int numa_node_of(const void* addr) noexcept;

}  // namespace ctxalloc
