#include "ctxalloc/sources/numa_policy.h"

#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>

#include "ctxalloc/sources/node_topology.h"

// Older numaif.h (libnuma 2.0.16) lacks the mode flags; their values are kernel ABI
// (linux/mempolicy.h), which clashes with numaif.h when both are included.
#ifndef MPOL_F_STATIC_NODES
#define MPOL_F_STATIC_NODES (1 << 15)
#endif
#ifndef MPOL_F_RELATIVE_NODES
#define MPOL_F_RELATIVE_NODES (1 << 14)
#endif

namespace ctxalloc {
namespace {

// mbind and get_mempolicy take "maxnode" as the number of bits plus one (the kernel
// decrements it: a historical off-by-one that libnuma compensates for the same way).
constexpr unsigned long kKernelMaxNode = kMaxNumaNodes + 1;

int kernel_mode(NumaMode m) noexcept {
  switch (m) {
    case NumaMode::default_policy:
      return MPOL_DEFAULT;
    case NumaMode::preferred:
      return MPOL_PREFERRED;
    case NumaMode::bind:
      return MPOL_BIND;
    case NumaMode::interleave:
      return MPOL_INTERLEAVE;
    case NumaMode::local:
      return MPOL_LOCAL;
  }
  return MPOL_DEFAULT;
}

int kernel_flags(NodeFlags f) noexcept {
  switch (f) {
    case NodeFlags::none:
      return 0;
    case NodeFlags::static_nodes:
      return MPOL_F_STATIC_NODES;
    case NodeFlags::relative_nodes:
      return MPOL_F_RELATIVE_NODES;
  }
  return 0;
}

SourceError bad(const char* what) noexcept {
  return SourceError::make(SourceErrc::bad_option, 0, "numa: %s", what);
}

// Every node of a policy without the relative flag must exist; without the static flag
// it must also be allowed; with it, one allowed node is enough.
SourceError check_nodes(const NumaPolicy& p) noexcept {
  const int highest = numa_highest_node();
  const NodeMask allowed = numa_allowed_nodes();
  char have[96];
  allowed.format(have, sizeof have);
  bool any_allowed = false;
  for (int n = p.nodes.first(); n >= 0 && n <= p.nodes.last(); ++n) {
    if (!p.nodes.test(static_cast<unsigned>(n))) continue;
    const bool ok = allowed.test(static_cast<unsigned>(n));
    any_allowed |= ok;
    if (p.flags == NodeFlags::static_nodes) continue;
    if (n > highest)
      return SourceError::make(SourceErrc::no_such_node, 0,
                               "numa: node %d is not in the system (highest node %d, usable: %s)",
                               n, highest, have);
    if (!ok)
      return SourceError::make(SourceErrc::no_such_node, 0,
                               "numa: node %d has no memory or is outside this process's cpuset "
                               "(usable: %s)",
                               n, have);
  }
  if (!any_allowed)
    return SourceError::make(SourceErrc::no_such_node, 0,
                             "numa: none of the static nodes is usable now (usable: %s)", have);
  return SourceError{};
}

}  // namespace

NodeMask::NodeMask(std::initializer_list<unsigned> nodes) noexcept {
  for (unsigned n : nodes)
    set(n);
}

bool NodeMask::set(unsigned node) noexcept {
  if (node >= kMaxNumaNodes) return false;
  words_[node / kWordBits] |= 1UL << (node % kWordBits);
  return true;
}

void NodeMask::clear(unsigned node) noexcept {
  if (node < kMaxNumaNodes) words_[node / kWordBits] &= ~(1UL << (node % kWordBits));
}

bool NodeMask::test(unsigned node) const noexcept {
  return node < kMaxNumaNodes && (words_[node / kWordBits] >> (node % kWordBits) & 1) != 0;
}

bool NodeMask::empty() const noexcept {
  for (unsigned long w : words_)
    if (w != 0) return false;
  return true;
}

unsigned NodeMask::count() const noexcept {
  unsigned n = 0;
  for (unsigned long w : words_)
    n += static_cast<unsigned>(std::popcount(w));
  return n;
}

int NodeMask::first() const noexcept {
  for (unsigned i = 0; i < kMaxNumaNodes / kWordBits; ++i)
    if (words_[i] != 0) return static_cast<int>(i * kWordBits + std::countr_zero(words_[i]));
  return -1;
}

int NodeMask::last() const noexcept {
  for (unsigned i = kMaxNumaNodes / kWordBits; i-- > 0;)
    if (words_[i] != 0)
      return static_cast<int>(i * kWordBits + kWordBits - 1 - std::countl_zero(words_[i]));
  return -1;
}

void NodeMask::format(char* buf, std::size_t cap) const noexcept {
  if (cap == 0) return;
  buf[0] = '\0';
  if (empty()) {
    std::snprintf(buf, cap, "none");
    return;
  }
  std::size_t len = 0;
  for (int n = first(); n >= 0 && n <= last() && len < cap; ++n) {
    if (!test(static_cast<unsigned>(n))) continue;
    int end = n;
    while (test(static_cast<unsigned>(end + 1)))
      ++end;
    const int w = end == n ? std::snprintf(buf + len, cap - len, "%s%d", len ? "," : "", n)
                           : std::snprintf(buf + len, cap - len, "%s%d-%d", len ? "," : "", n, end);
    if (w < 0) return;
    len += static_cast<std::size_t>(w);
    n = end;
  }
}

bool operator==(const NodeMask& a, const NodeMask& b) noexcept {
  for (unsigned i = 0; i < kMaxNumaNodes / NodeMask::kWordBits; ++i)
    if (a.words_[i] != b.words_[i]) return false;
  return true;
}

const char* to_string(NumaMode m) noexcept {
  switch (m) {
    case NumaMode::default_policy:
      return "default";
    case NumaMode::preferred:
      return "preferred";
    case NumaMode::bind:
      return "bind";
    case NumaMode::interleave:
      return "interleave";
    case NumaMode::local:
      return "local";
  }
  return "?";
}

const char* to_string(NodeFlags f) noexcept {
  switch (f) {
    case NodeFlags::none:
      return "none";
    case NodeFlags::static_nodes:
      return "static";
    case NodeFlags::relative_nodes:
      return "relative";
  }
  return "?";
}

NumaPolicy NumaPolicy::bind_to(unsigned node) noexcept {
  NumaPolicy p;
  p.mode = NumaMode::bind;
  p.nodes.set(node);
  return p;
}

NumaPolicy NumaPolicy::preferred_node(unsigned node) noexcept {
  NumaPolicy p;
  p.mode = NumaMode::preferred;
  p.nodes.set(node);
  return p;
}

NumaPolicy NumaPolicy::interleave_over(const NodeMask& nodes) noexcept {
  NumaPolicy p;
  p.mode = NumaMode::interleave;
  p.nodes = nodes;
  return p;
}

NumaPolicy NumaPolicy::local() noexcept {
  NumaPolicy p;
  p.mode = NumaMode::local;
  return p;
}

bool numa_supported() noexcept {
  static const bool supported = ::numa_available() >= 0;
  return supported;
}

namespace {

// libnuma fills numa_all_nodes_ptr and its node count in its constructor. When ctxalloc
// serves malloc (LD_PRELOAD), a library initialised before libnuma -- libstdc++, whose
// emergency exception pool is malloc'd at load -- makes ctxalloc map its first segments
// before that constructor ran: numa_max_node() is then -1 and the mask null. The online
// nodes then come from sysfs (no allocation), and every online node counts as allowed.
bool libnuma_ready() noexcept {
  return ::numa_all_nodes_ptr != nullptr && ::numa_max_node() >= 0;
}

}  // namespace

int numa_highest_node() noexcept {
  if (!numa_supported()) return 0;
  if (!libnuma_ready()) return static_cast<int>(NodeTopology::read().nodes()) - 1;
  return ::numa_max_node();
}

NodeMask numa_allowed_nodes() noexcept {
  NodeMask m;
  if (!numa_supported()) {
    m.set(0);
    return m;
  }
  if (!libnuma_ready()) {
    const unsigned nodes = NodeTopology::read().nodes();
    for (unsigned n = 0; n < nodes; ++n)
      m.set(n);
    return m;
  }
  const int highest = ::numa_max_node();
  for (int n = 0; n <= highest && n < static_cast<int>(kMaxNumaNodes); ++n)
    if (::numa_bitmask_isbitset(::numa_all_nodes_ptr, static_cast<unsigned>(n)) != 0)
      m.set(static_cast<unsigned>(n));
  return m;
}

SourceError validate(const NumaPolicy& p) noexcept {
  const bool takes_nodes = p.mode != NumaMode::default_policy && p.mode != NumaMode::local;
  if (!takes_nodes) {
    if (!p.nodes.empty()) return bad("default and local policies take no nodes");
    if (p.flags != NodeFlags::none) return bad("static/relative flags need a node list");
    if (p.mode == NumaMode::default_policy && (p.strict || p.move))
      return bad("strict/move mean nothing with the default policy");
    if (p.mode == NumaMode::default_policy) return SourceError{};
  } else if (p.nodes.empty()) {
    return bad("preferred, bind and interleave need at least one node");
  } else if (p.mode == NumaMode::preferred && p.nodes.count() != 1) {
    return bad("preferred takes exactly one node");
  }
  if (!numa_supported())
    return SourceError::make(SourceErrc::numa_unavailable, 0,
                             "numa: the kernel has no NUMA policy support (numa_available < 0)");
  if (!takes_nodes || p.flags == NodeFlags::relative_nodes) return SourceError{};
  return check_nodes(p);
}

SourceError apply_numa_policy(void* addr, std::size_t len, const NumaPolicy& p) noexcept {
  const int mode = kernel_mode(p.mode) | kernel_flags(p.flags);
  const unsigned mf = (p.strict ? MPOL_MF_STRICT : 0U) | (p.move ? MPOL_MF_MOVE : 0U);
  const bool has_nodes = !p.nodes.empty();
  if (::mbind(addr, len, mode, has_nodes ? p.nodes.kernel_words() : nullptr,
              has_nodes ? kKernelMaxNode : 0, mf) == 0)
    return SourceError{};
  const int err = errno;
  char nodes[96];
  p.nodes.format(nodes, sizeof nodes);
  return SourceError::make(
      SourceErrc::policy_failed, err, "numa: mbind(%s, nodes %s, flags %s%s%s) failed: errno %d%s",
      to_string(p.mode), nodes, to_string(p.flags), p.strict ? ", strict" : "",
      p.move ? ", move" : "", err, err == EIO ? " (strict: pages already placed elsewhere)" : "");
}

NumaPolicyReadback read_numa_policy(const void* addr) noexcept {
  NumaPolicyReadback r;
  int mode = 0;
  if (::get_mempolicy(&mode, r.nodes.kernel_words(), kKernelMaxNode, const_cast<void*>(addr),
                      MPOL_F_ADDR) != 0) {
    const int err = errno;
    r.error = SourceError::make(SourceErrc::system_error, err,
                                "numa: get_mempolicy(%p) failed: errno %d", addr, err);
    return r;
  }
  r.raw_mode = mode;
  if ((mode & MPOL_F_STATIC_NODES) != 0) r.flags = NodeFlags::static_nodes;
  if ((mode & MPOL_F_RELATIVE_NODES) != 0) r.flags = NodeFlags::relative_nodes;
  switch (mode & ~(MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES)) {
    case MPOL_PREFERRED:
      r.mode = r.nodes.empty() ? NumaMode::local : NumaMode::preferred;
      break;
    case MPOL_PREFERRED_MANY:  // set by other code (5.15+); closest of our modes
      r.mode = NumaMode::preferred;
      break;
    case MPOL_BIND:
      r.mode = NumaMode::bind;
      break;
    case MPOL_INTERLEAVE:
      r.mode = NumaMode::interleave;
      break;
    case MPOL_LOCAL:
      r.mode = NumaMode::local;
      break;
    default:
      r.mode = NumaMode::default_policy;
      break;
  }
  return r;
}

int numa_node_of(const void* addr) noexcept {
  void* pages[1] = {const_cast<void*>(addr)};
  int status[1] = {-ENOENT};
  if (::move_pages(0, 1, pages, nullptr, status, 0) != 0) return -errno;
  if (status[0] != -EFAULT) return status[0];
  // Older kernels (Debian 12's 6.1) report an anonymous page never touched as -EFAULT,
  // like an address with no mapping; newer ones (6.18) say -ENOENT. mincore tells the two
  // apart (ENOMEM: nothing mapped there), so callers get one answer on every kernel.
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<std::uintptr_t>(addr) & ~(page - 1);
  unsigned char resident = 0;
  if (::mincore(reinterpret_cast<void*>(start), page, &resident) == 0) return -ENOENT;
  return -EFAULT;
}

}  // namespace ctxalloc
