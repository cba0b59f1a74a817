#include "ctxalloc/sources/node_topology.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

namespace ctxalloc {
namespace detail {

bool parse_uint(const char** s, unsigned* out) noexcept {
  const char* p = *s;
  if (*p < '0' || *p > '9') return false;
  std::uint64_t v = 0;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + static_cast<unsigned>(*p - '0');
    if (v > (std::uint64_t{1} << 31)) return false;
    ++p;
  }
  *s = p;
  *out = static_cast<unsigned>(v);
  return true;
}

}  // namespace detail

namespace {

// Reads a small sysfs file into buf (NUL-terminated); false when it cannot be read.
bool read_small(const char* path, char* buf, std::size_t cap) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t len = 0;
  while (len + 1 < cap) {
    const ssize_t n = ::read(fd, buf + len, cap - 1 - len);
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  return len > 0;
}

}  // namespace

NodeTopology NodeTopology::read(const char* root) noexcept {
  NodeTopology t;
  char path[256];
  char text[4096];  // a cpulist of 4096 CPUs in the worst layout still fits in ranges
  std::snprintf(path, sizeof path, "%s/online", root);
  unsigned highest = 0;
  if (!read_small(path, text, sizeof text) || !parse_list(text, [&](unsigned, unsigned last) {
        highest = last > highest ? last : highest;
      })) {
    return t;
  }
  if (highest >= 1024) return t;  // more than any kernel supports: not a node list
  t.nodes_ = highest + 1;
  for (unsigned n = 0; n <= highest; ++n) {
    std::snprintf(path, sizeof path, "%s/node%u/cpulist", root, n);
    if (!read_small(path, text, sizeof text)) continue;  // an offline node in the range
    parse_list(text, [&](unsigned first, unsigned last) {
      for (unsigned c = first; c <= last && c < kMaxCpus; ++c)
        t.node_of_cpu_[c] = static_cast<std::uint16_t>(n);
    });
  }
  return t;
}

}  // namespace ctxalloc
