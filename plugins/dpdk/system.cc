// sysfs: nodes, CPUs, hugepages; a config against them; hugepage reservation.
#include "ctxalloc/dpdk/system.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "detail/config_rules.h"
#include "detail/units.h"

namespace ctxalloc::dpdk {
namespace {

namespace fs = std::filesystem;

constexpr unsigned kMaxCpuId = 1 << 16;

std::optional<std::string> read_text(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return std::nullopt;
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

std::optional<std::uint64_t> read_number(const fs::path& p) {
  const auto s = read_text(p);
  if (!s) return std::nullopt;
  const auto n = detail::parse_count(*s, UINT64_MAX);
  if (!n.ok()) return std::nullopt;
  return n.value();
}

std::vector<unsigned> read_list(const fs::path& p) {
  const auto s = read_text(p);
  if (!s || s->empty()) return {};
  const auto ids = detail::parse_id_list(*s, kMaxCpuId);
  return ids.ok() ? ids.value() : std::vector<unsigned>{};
}

// "hugepages-2048kB" -> 2 MiB.
std::optional<std::uint64_t> page_size_of_dir(const std::string& name) {
  if (!name.starts_with("hugepages-") || !name.ends_with("kB")) return std::nullopt;
  const auto kb = detail::parse_count(name.substr(10, name.size() - 12), UINT64_MAX >> 10);
  if (!kb.ok()) return std::nullopt;
  return kb.value() << 10;
}

std::string page_dir(std::uint64_t page_size) {
  return "hugepages-" + std::to_string(page_size >> 10) + "kB";
}

std::vector<HugepageCount> read_hugepages(const fs::path& dir) {
  std::vector<HugepageCount> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto size = page_size_of_dir(e.path().filename().string());
    if (!size) continue;
    HugepageCount c;
    c.page_size = *size;
    c.total = read_number(e.path() / "nr_hugepages").value_or(0);
    c.free = read_number(e.path() / "free_hugepages").value_or(0);
    out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const HugepageCount& a, const HugepageCount& b) {
    return a.page_size < b.page_size;
  });
  return out;
}

fs::path node_dir(const std::string& root, unsigned id) {
  return fs::path(root) / "devices/system/node" / ("node" + std::to_string(id));
}

}  // namespace

const HugepageCount* NodeInfo::pages_of(std::uint64_t page_size) const noexcept {
  for (const HugepageCount& c : hugepages)
    if (c.page_size == page_size) return &c;
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
  for (const HugepageCount& c : read_hugepages(fs::path(root) / "kernel/mm/hugepages"))
    sys.page_sizes.push_back(c.page_size);
  const std::vector<unsigned> nodes = read_list(fs::path(root) / "devices/system/node/online");
  if (nodes.empty()) {
    // A kernel without NUMA: one node with every CPU and the system-wide hugepages.
    NodeInfo n;
    n.cpus = sys.online_cpus;
    n.hugepages = read_hugepages(fs::path(root) / "kernel/mm/hugepages");
    sys.nodes.push_back(std::move(n));
    return sys;
  }
  for (unsigned id : nodes) {
    NodeInfo n;
    n.id = id;
    n.cpus = read_list(node_dir(root, id) / "cpulist");
    n.hugepages = read_hugepages(node_dir(root, id) / "hugepages");
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
    const HugepageCount* have = node.pages_of(s.hugepage_size);
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
  if (!fs::exists(file)) {
    // Without NUMA the node folder is absent: node 0 is the whole system.
    const fs::path global =
        fs::path(root) / "kernel/mm/hugepages" / page_dir(s.hugepage_size) / "nr_hugepages";
    if (s.id != 0 || !fs::exists(global))
      return {false, what + "could not: the kernel offers no such pages (" + file.string() + ")"};
    file = global;
  }
  const std::uint64_t before = read_number(file).value_or(0);
  if (before >= s.hugepages) {
    return {true, what + std::to_string(before) + " reserved already, the file asks for " +
                      std::to_string(s.hugepages) + ": nothing to do"};
  }
  if (const int err = write_number(file, s.hugepages); err != 0) {
    return {false, what + "could not raise " + std::to_string(before) + " to " +
                       std::to_string(s.hugepages) + ": " + std::strerror(err) +
                       (err == EACCES || err == EPERM ? " (run as root)" : "")};
  }
  const std::uint64_t after = read_number(file).value_or(0);
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
