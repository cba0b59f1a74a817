// sysfs: nodes, CPUs, hugepages; a config against them; hugepage reservation.
#include "ctxalloc/dpdk/system.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>

#include "detail/config_rules.h"
#include "detail/units.h"

namespace ctxalloc::dpdk {
namespace {

namespace fs = std::filesystem;

constexpr unsigned kMaxCpuId = 1 << 16;

// A sysfs id list (cpu/online, node/online, node<N>/cpulist) as sorted ids; empty when the
// file is missing or malformed, or names an id at or above kMaxCpuId.
std::vector<unsigned> read_list(const fs::path& p) {
  char text[4096];
  std::vector<unsigned> ids;
  if (!read_small_file(p.c_str(), text, sizeof text)) return ids;
  bool in_range = true;
  const bool ok = parse_id_ranges(text, [&](unsigned first, unsigned last) {
    if (last >= kMaxCpuId) in_range = false;
    for (unsigned i = first; i <= last && i < kMaxCpuId; ++i)
      ids.push_back(i);
  });
  if (!ok || !in_range) return {};
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

// The hugepage pools of one node (node < 0: the whole system), by ascending page size.
std::vector<HugePageCounts> read_hugepages(const std::string& root, int node) {
  std::size_t sizes[16];
  const std::size_t n = hugepage_sizes_in(root.c_str(), node, sizes, std::size(sizes));
  std::vector<HugePageCounts> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(hugepage_counts_in(root.c_str(), sizes[i], node));
  return out;
}

std::string page_dir(std::uint64_t page_size) {
  return "hugepages-" + std::to_string(page_size >> 10) + "kB";
}

fs::path node_dir(const std::string& root, unsigned id) {
  return fs::path(root) / "devices/system/node" / ("node" + std::to_string(id));
}

}  // namespace

const HugePageCounts* NodeInfo::pages_of(std::uint64_t page_size) const noexcept {
  for (const HugePageCounts& c : hugepages)
    if (c.page_bytes == page_size) return &c;
  return nullptr;
}

const NodeInfo* SystemInfo::node(unsigned id) const noexcept {
  for (const NodeInfo& n : nodes)
    if (n.id == id) return &n;
  return nullptr;
}

int SystemInfo::node_of_cpu(unsigned cpu) const noexcept {
  for (const NodeInfo& n : nodes)
    if (std::find(n.cpus.begin(), n.cpus.end(), cpu) != n.cpus.end()) return static_cast<int>(n.id);
  return -1;
}

std::string sysfs_root() {
  const char* env = std::getenv("CTXALLOC_SYSFS");
  return env != nullptr && *env != '\0' ? env : "/sys";
}

SystemInfo probe_system(const std::string& root) {
  SystemInfo sys;
  sys.root = root;
  sys.online_cpus = read_list(fs::path(root) / "devices/system/cpu/online");
  for (const HugePageCounts& c : read_hugepages(root, -1))
    sys.page_sizes.push_back(c.page_bytes);
  const std::vector<unsigned> nodes = read_list(fs::path(root) / "devices/system/node/online");
  if (nodes.empty()) {
    // A kernel without NUMA: one node with every CPU and the system-wide hugepages.
    NodeInfo n;
    n.cpus = sys.online_cpus;
    n.hugepages = read_hugepages(root, -1);
    sys.nodes.push_back(std::move(n));
    return sys;
  }
  for (unsigned id : nodes) {
    NodeInfo n;
    n.id = id;
    n.cpus = read_list(node_dir(root, id) / "cpulist");
    n.hugepages = read_hugepages(root, static_cast<int>(id));
    sys.nodes.push_back(std::move(n));
  }
  return sys;
}

namespace {

class SystemCheck {
 public:
  SystemCheck(const Config& c, const SystemInfo& sys, std::vector<Diagnostic>& warnings)
      : c_(c), sys_(sys), warnings_(warnings) {}

  std::vector<Diagnostic> run() {
    for (const SocketConfig& s : c_.sockets) {
      const NodeInfo* node = sys_.node(s.id);
      if (node == nullptr) {
        error(s, s.line, "",
              "NUMA node " + std::to_string(s.id) +
                  " does not exist on this machine (nodes: " + node_list() + ")");
        continue;
      }
      check_lcores(s);
      check_hugepages(s, *node);
    }
    return std::move(errors_);
  }

 private:
  void check_lcores(const SocketConfig& s) {
    std::vector<unsigned> offline;
    for (unsigned l : s.lcores) {
      const bool online =
          std::find(sys_.online_cpus.begin(), sys_.online_cpus.end(), l) != sys_.online_cpus.end();
      if (!online) {
        offline.push_back(l);
        continue;
      }
      const int on = sys_.node_of_cpu(l);
      if (on >= 0 && static_cast<unsigned>(on) != s.id) {
        error(s, s.lcores_line, "lcores",
              "lcore " + std::to_string(l) + " is on NUMA node " + std::to_string(on) + ", not " +
                  std::to_string(s.id));
      }
    }
    if (!offline.empty()) {
      error(s, s.lcores_line, "lcores",
            "lcores " + detail::format_id_list(offline) +
                ": no such CPUs online on this machine (online: " +
                detail::format_id_list(sys_.online_cpus) + ")");
    }
  }

  void check_hugepages(const SocketConfig& s, const NodeInfo& node) {
    if (s.hugepages == 0) return;
    const bool required = c_.hugepages == HugepagePolicy::require;
    if (std::find(sys_.page_sizes.begin(), sys_.page_sizes.end(), s.hugepage_size) ==
        sys_.page_sizes.end()) {
      std::string sizes;
      for (std::uint64_t p : sys_.page_sizes)
        sizes += (sizes.empty() ? "" : ", ") + format_bytes(p);
      report(required, s, s.hugepage_size_line, "hugepage_size",
             "the kernel has no " + format_bytes(s.hugepage_size) +
                 " hugepages (it has: " + (sizes.empty() ? "none" : sizes) + ")");
      return;
    }
    const HugePageCounts* have = node.pages_of(s.hugepage_size);
    const std::uint64_t total = have ? have->total : 0;
    if (total < s.hugepages) {
      report(required, s, s.hugepages_line, "hugepages",
             "node " + std::to_string(s.id) + " has " + std::to_string(total) + " x " +
                 format_bytes(s.hugepage_size) + " hugepages reserved, the file asks for " +
                 std::to_string(s.hugepages) + " (ctxalloc-config reserve FILE raises it)");
    }
  }

  std::string node_list() const {
    std::vector<unsigned> ids;
    for (const NodeInfo& n : sys_.nodes)
      ids.push_back(n.id);
    return detail::format_id_list(ids);
  }

  void report(bool as_error, const SocketConfig& s, unsigned line, std::string key,
              std::string msg) {
    Diagnostic d{c_.source, line, detail::socket_section(s.id), std::move(key), std::move(msg)};
    (as_error ? errors_ : warnings_).push_back(std::move(d));
  }
  void error(const SocketConfig& s, unsigned line, std::string key, std::string msg) {
    report(true, s, line, std::move(key), std::move(msg));
  }

  const Config& c_;
  const SystemInfo& sys_;
  std::vector<Diagnostic>& warnings_;
  std::vector<Diagnostic> errors_;
};

// Writes a number to a sysfs file; returns 0 or an errno.
int write_number(const fs::path& p, std::uint64_t v) {
  FILE* f = std::fopen(p.c_str(), "w");
  if (f == nullptr) return errno;
  const int wrote = std::fprintf(f, "%llu\n", static_cast<unsigned long long>(v));
  const int err = wrote < 0 ? errno : 0;
  if (std::fclose(f) != 0 && err == 0) return errno;
  return err;
}

ReserveStep reserve_on_socket(const SocketConfig& s, const std::string& root) {
  const std::string what =
      "node " + std::to_string(s.id) + ", " + format_bytes(s.hugepage_size) + " pages: ";
  if (!fs::exists(node_dir(root, s.id)) && s.id != 0)
    return {false, what + "could not: NUMA node " + std::to_string(s.id) + " does not exist"};
  fs::path file = node_dir(root, s.id) / "hugepages" / page_dir(s.hugepage_size) / "nr_hugepages";
  int node = static_cast<int>(s.id);
  if (!fs::exists(file)) {
    // Without NUMA the node folder is absent: node 0 is the whole system.
    const fs::path global =
        fs::path(root) / "kernel/mm/hugepages" / page_dir(s.hugepage_size) / "nr_hugepages";
    if (s.id != 0 || !fs::exists(global))
      return {false, what + "could not: the kernel offers no such pages (" + file.string() + ")"};
    file = global;
    node = -1;
  }
  auto reserved = [&] { return hugepage_counts_in(root.c_str(), s.hugepage_size, node).total; };
  const std::uint64_t before = reserved();
  if (before >= s.hugepages) {
    return {true, what + std::to_string(before) + " reserved already, the file asks for " +
                      std::to_string(s.hugepages) + ": nothing to do"};
  }
  if (const int err = write_number(file, s.hugepages); err != 0) {
    return {false, what + "could not raise " + std::to_string(before) + " to " +
                       std::to_string(s.hugepages) + ": " + std::strerror(err) +
                       (err == EACCES || err == EPERM ? " (run as root)" : "")};
  }
  const std::uint64_t after = reserved();
  if (after < s.hugepages) {
    return {false, what + "asked the kernel for " + std::to_string(s.hugepages) + ", it reserved " +
                       std::to_string(after) + " (was " + std::to_string(before) +
                       "): not enough free memory on the node"};
  }
  return {true, what + "raised from " + std::to_string(before) + " to " + std::to_string(after)};
}

}  // namespace

std::vector<Diagnostic> check_against_system(const Config& c, const SystemInfo& sys,
                                             std::vector<Diagnostic>& warnings) {
  return SystemCheck(c, sys, warnings).run();
}

std::vector<ReserveStep> reserve_hugepages(const Config& c, const std::string& root) {
  std::vector<ReserveStep> steps;
  if (c.hugepages == HugepagePolicy::none) {
    steps.push_back({true, "the file asks for no hugepages ([ctxalloc] hugepages = none)"});
    return steps;
  }
  for (const SocketConfig& s : c.sockets) {
    if (s.hugepages == 0) {
      steps.push_back({true, "node " + std::to_string(s.id) + ": the file asks for no hugepages"});
      continue;
    }
    steps.push_back(reserve_on_socket(s, root));
  }
  return steps;
}

}  // namespace ctxalloc::dpdk
