// numa_access: local versus remote memory, as the machine it runs on reports them. For each
// NUMA node, a buffer from ctxalloc's MemoryMapSource bound to that node (MPOL_BIND,
// populated), its pages checked with move_pages; then, from a thread pinned to a CPU of
// node 0, a dependent pointer chase over the buffer (a random cyclic permutation of cache
// lines: every load misses the caches) and a sequential read, alternating local and remote
// buffers round by round. Prints one JSON object: the medians, every round, and the kernel's
// own per-node counters (/sys/devices/system/node/nodeN/numastat) across the faulting-in.
//
//   numa_access [--mib N] [--rounds R] [--chase N]
//
// Built for the two-node guest of scripts/numa_guest.sh (bench/numa_guest.sh runs it
// there); on a one-node machine it measures node 0 only and says so. Emulated guests
// (TCG) give no hardware figures: their timings show what the guest reports, nothing more.
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ctxalloc/sources/mmap_source.h"
#include "ctxalloc/sources/node_topology.h"
#include "ctxalloc/sources/numa_policy.h"

namespace {

using ctxalloc::Block;
using ctxalloc::MapOptions;
using ctxalloc::MemoryMapSource;
using ctxalloc::NumaPolicy;

double now_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

std::map<std::string, long> numastat(unsigned node) {
  std::map<std::string, long> m;
  std::ifstream f("/sys/devices/system/node/node" + std::to_string(node) + "/numastat");
  std::string k;
  long v = 0;
  while (f >> k >> v)
    m[k] = v;
  return m;
}

int first_cpu_of(unsigned node) {
  std::ifstream f("/sys/devices/system/node/node" + std::to_string(node) + "/cpulist");
  int cpu = -1;
  f >> cpu;
  return f ? cpu : -1;
}

unsigned node_count() {
  unsigned n = 0;
  while (std::ifstream("/sys/devices/system/node/node" + std::to_string(n) + "/cpulist"))
    ++n;
  return n == 0 ? 1 : n;
}

bool pin_to(int cpu) {
  if (cpu < 0) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<unsigned>(cpu), &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

constexpr std::size_t kLine = 64;

// A random cyclic permutation of the buffer's cache lines: line i's first word holds the
// address of the next line to visit.
void link_lines(std::byte* buf, std::size_t bytes, std::uint64_t seed) {
  const std::size_t lines = bytes / kLine;
  std::vector<std::size_t> order(lines);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin() + 1, order.end(), rng);
  for (std::size_t i = 0; i < lines; ++i) {
    std::byte* from = buf + order[i] * kLine;
    std::byte* to = buf + order[(i + 1) % lines] * kLine;
    std::memcpy(from, &to, sizeof to);
  }
}

// ns per dependent load over `steps` loads.
double chase(const std::byte* buf, std::size_t steps) {
  const void* p = buf;
  const double t0 = now_ns();
  for (std::size_t i = 0; i < steps; ++i)
    std::memcpy(&p, p, sizeof p);
  const double t1 = now_ns();
  // Keep the chain's end observable.
  if (p == nullptr) std::puts("");
  return (t1 - t0) / static_cast<double>(steps);
}

// GB/s of a sequential 8-byte read of the whole buffer.
double read_gbs(const std::byte* buf, std::size_t bytes) {
  std::uint64_t sum = 0;
  const double t0 = now_ns();
  for (std::size_t off = 0; off < bytes; off += 8) {
    std::uint64_t v;
    std::memcpy(&v, buf + off, 8);
    sum += v;
  }
  const double t1 = now_ns();
  if (sum == 42) std::puts("");
  return static_cast<double>(bytes) / (t1 - t0);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string list(const std::vector<double>& v) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < v.size(); ++i)
    s << (i ? ", " : "") << v[i];
  return s.str() + "]";
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t mib = 64, rounds = 5, steps = 2000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long v = std::atol(argv[i + 1]);
    if (v <= 0) {
      std::fprintf(stderr, "numa_access: %s needs a positive number\n", a.c_str());
      return 2;
    }
    if (a == "--mib") {
      mib = static_cast<std::size_t>(v);
    } else if (a == "--rounds") {
      rounds = static_cast<std::size_t>(v);
    } else if (a == "--chase") {
      steps = static_cast<std::size_t>(v);
    } else {
      std::fprintf(stderr, "usage: numa_access [--mib N] [--rounds R] [--chase N]\n");
      return 2;
    }
  }
  const unsigned nodes = std::min(node_count(), 2U);
  const int cpu = first_cpu_of(0);
  if (!pin_to(cpu)) {
    std::fprintf(stderr, "numa_access: cannot pin to node 0's CPU %d\n", cpu);
    return 1;
  }
  const std::size_t bytes = mib << 20;
  std::vector<std::map<std::string, long>> before, after;
  for (unsigned n = 0; n < nodes; ++n)
    before.push_back(numastat(n));
  MemoryMapSource* src[2] = {};
  Block buf[2];
  std::size_t on_node[2][2] = {};
  for (unsigned n = 0; n < nodes; ++n) {
    MapOptions o;
    o.numa = NumaPolicy::bind_to(n);
    o.populate = true;
    src[n] = new MemoryMapSource(o);
    buf[n] = src[n]->obtain(bytes);
    if (!buf[n]) {
      std::fprintf(stderr, "numa_access: %zu MiB on node %u: %s\n", mib, n,
                   src[n]->last_error().message());
      return 1;
    }
    link_lines(buf[n].ptr, bytes, 1 + n);
    for (std::size_t off = 0; off < bytes; off += 4096) {
      const int where = ctxalloc::numa_node_of(buf[n].ptr + off);
      if (where >= 0 && where < 2) ++on_node[n][where];
    }
  }
  for (unsigned n = 0; n < nodes; ++n)
    after.push_back(numastat(n));

  std::vector<double> chase_ns[2], read[2];
  for (std::size_t r = 0; r < rounds; ++r) {
    // Alternate which buffer goes first, so drift hits both alike.
    for (unsigned k = 0; k < nodes; ++k) {
      const unsigned n = (r % 2 == 0) ? k : nodes - 1 - k;
      chase_ns[n].push_back(chase(buf[n].ptr, steps));
      read[n].push_back(read_gbs(buf[n].ptr, bytes));
    }
  }

  std::printf(
      "{\n  \"cpu\": %d, \"cpu_node\": 0, \"nodes\": %u, \"buffer_mib\": %zu, "
      "\"rounds\": %zu, \"chase_steps\": %zu,\n",
      cpu, nodes, mib, rounds, steps);
  for (unsigned n = 0; n < nodes; ++n) {
    std::printf(
        "  \"%s\": {\"node\": %u, \"pages_on_node0\": %zu, \"pages_on_node1\": %zu, "
        "\"chase_ns_median\": %.2f, \"read_gbs_median\": %.3f, \"chase_ns\": %s, "
        "\"read_gbs\": %s},\n",
        n == 0 ? "local" : "remote", n, on_node[n][0], on_node[n][1], median(chase_ns[n]),
        median(read[n]), list(chase_ns[n]).c_str(), list(read[n]).c_str());
  }
  std::printf("  \"numastat_delta\": {");
  for (unsigned n = 0; n < nodes; ++n) {
    std::printf("%s\"node%u\": {", n ? ", " : "", n);
    bool first = true;
    for (const auto& [k, v] : after[n]) {
      std::printf("%s\"%s\": %ld", first ? "" : ", ", k.c_str(), v - before[n][k]);
      first = false;
    }
    std::printf("}");
  }
  std::printf("},\n");
  if (nodes == 2)
    std::printf("  \"remote_over_local_chase\": %.3f, \"local_over_remote_read\": %.3f\n}\n",
                median(chase_ns[1]) / median(chase_ns[0]), median(read[0]) / median(read[1]));
  else
    std::printf("  \"note\": \"one NUMA node: no remote memory to measure\"\n}\n");
  for (unsigned n = 0; n < nodes; ++n) {
    src[n]->release(buf[n]);
    delete src[n];
  }
  return 0;
}
