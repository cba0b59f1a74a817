#include "ctxalloc/sources/node_topology.h"

#include <cstdio>

#include "ctxalloc/sources/kernel_info.h"

namespace ctxalloc {

NodeTopology NodeTopology::read(const char* root) noexcept {
  NodeTopology t;
  char path[256];
  char text[4096];  // a cpulist of 4096 CPUs in the worst layout still fits in ranges
  std::snprintf(path, sizeof path, "%s/online", root);
  unsigned highest = 0;
  if (!read_small_file(path, text, sizeof text) ||
      !parse_id_ranges(
          text, [&](unsigned, unsigned last) { highest = last > highest ? last : highest; })) {
    return t;
  }
  if (highest >= 1024) return t;  // more than any kernel supports: not a node list
  t.nodes_ = highest + 1;
  for (unsigned n = 0; n <= highest; ++n) {
    std::snprintf(path, sizeof path, "%s/node%u/cpulist", root, n);
    if (!read_small_file(path, text, sizeof text)) continue;  // an offline node in the range
    parse_id_ranges(text, [&](unsigned first, unsigned last) {
      for (unsigned c = first; c <= last && c < kMaxCpus; ++c)
        t.node_of_cpu_[c] = static_cast<std::uint16_t>(n);
    });
  }
  return t;
}

}  // namespace ctxalloc
