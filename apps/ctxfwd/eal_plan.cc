// The hugepage rule: use hugepages when the free ones hold what the run needs and a
// hugetlbfs mount is writable; otherwise ask EAL for normal pages (--no-huge) with -m set
// to the need, because --no-huge alone gives only 64 MB. The choice is made before
// rte_eal_init because EAL cannot be started a second time in one process.
#include "eal_plan.h"

#include <dirent.h>

#include <iterator>
#include <string_view>

#include "ctxalloc/sources/kernel_info.h"

namespace ctxfwd {
namespace {

bool is_option(std::string_view tok, std::string_view name) {
  return tok == name ||
         (tok.starts_with(name) && tok.size() > name.size() && tok[name.size()] == '=');
}

std::string mib(std::uint64_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

EalArgScan scan_eal_args(std::span<const std::string> eal) {
  EalArgScan s;
  for (std::size_t i = 1; i < eal.size(); ++i) {
    const std::string_view t = eal[i];
    if (is_option(t, "--vdev") || is_option(t, "--allow") || t == "-a" ||
        (t.starts_with("-a") && t.size() > 2))
      s.devices = true;
    if (t == "--no-pci") s.no_pci = true;
    if (t == "--no-huge") s.no_huge = true;
    if (t == "-m" || (t.starts_with("-m") && t.size() > 2) || is_option(t, "--socket-mem"))
      s.memory = true;
    if (t == "--in-memory") s.in_memory = true;
    if (is_option(t, "--file-prefix")) s.file_prefix = true;
  }
  return s;
}

HugepageInfo probe_hugepages() {
  HugepageInfo h;
  std::size_t sizes[16];
  const std::size_t n = ctxalloc::hugepage_sizes_in("/sys", -1, sizes, std::size(sizes));
  std::uint64_t best = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t free_bytes = ctxalloc::hugepage_counts(sizes[i]).free * sizes[i];
    h.free_bytes += free_bytes;
    if (free_bytes > best) {
      best = free_bytes;
      h.page_bytes = sizes[i];
    }
  }
  h.mount_writable = ctxalloc::hugetlbfs_mount_writable();
  return h;
}

std::size_t dpdk_bound_pci_devices() {
  std::size_t n = 0;
  for (const char* drv : {"vfio-pci", "uio_pci_generic", "igb_uio"}) {
    const std::string dir = std::string("/sys/bus/pci/drivers/") + drv;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    // Bound devices appear as links named by their PCI address, "0000:3b:00.0".
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name.size() == 12 && name[4] == ':' && name[7] == ':' && name[10] == '.') ++n;
    }
    ::closedir(d);
  }
  return n;
}

std::uint64_t estimate_memory_mb(const MemoryNeed& need) {
  // An mbuf of the default pool: 2 KiB data + 128 B headroom + the 128 B rte_mbuf + the
  // mempool's per-object header, rounded up.
  constexpr std::uint64_t kMbufBytes = 2432;
  // A flow-table slot: rte_hash key slot and bucket share (~100 B with the 40 B key) plus
  // ctxfwd's entry (~200 B) and the flow allocator's context (~64 B).
  constexpr std::uint64_t kFlowSlotBytes = 384;
  std::uint64_t bytes = need.mbufs * kMbufBytes;
  const std::uint64_t flows = std::uint64_t{need.workers} * need.max_flows;
  bytes += flows * kFlowSlotBytes;
  if (need.flow_memory_from_dpdk) bytes += flows * need.flow_context_bytes;
  // Memzones are aligned to 4 MiB: one segment of slack each (a few per socket).
  bytes += need.ctxalloc_bytes + (need.ctxalloc_bytes != 0 ? std::uint64_t{16} << 20 : 0);
  // EAL's own structures, the rings, tx buffers and the heap's fragmentation.
  bytes += std::uint64_t{24} << 20;
  return (bytes + (1u << 20) - 1) >> 20;
}

std::string plan_eal(std::span<const std::string> eal, const EalArgScan& scan, bool embedded,
                     const EmbeddedDevices& devices, const HugepageInfo& huge,
                     std::uint64_t need_mb, long pid, EalPlan& out) {
  out = EalPlan{};
  out.args.assign(eal.begin(), eal.end());
  if (out.args.empty()) out.args.emplace_back("ctxfwd");
  out.embedded = embedded;
  if (embedded) {
    for (const std::string* p : {&devices.rx_pcap, &devices.tx_pcap})
      if (p->find_first_of(",=") != std::string::npos)
        return "the path '" + *p + "' holds ',' or '=', which EAL's device arguments cannot carry";
    std::string pcap = "--vdev=net_pcap0,rx_pcap=" + devices.rx_pcap;
    if (devices.tx_pcap.empty()) {
      pcap += ",infinite_rx=1";
      out.args.push_back(pcap);
      out.args.emplace_back("--vdev=net_null0,no-rx=1");
      out.notes.push_back("embedded default: port 0 net_pcap rx " + devices.rx_pcap +
                          " (replayed forever) -> port 1 net_null");
    } else {
      pcap += ",tx_pcap=" + devices.tx_pcap;
      out.args.push_back(pcap);
      out.notes.push_back("embedded default: port 0 net_pcap rx " + devices.rx_pcap +
                          " (once) -> tx " + devices.tx_pcap);
    }
    if (!scan.no_pci) out.args.emplace_back("--no-pci");
    if (!scan.file_prefix) {
      out.args.push_back("--file-prefix=ctxfwd-" + std::to_string(pid));
      out.own_file_prefix = true;
    }
  }

  const std::string need = std::to_string(need_mb);
  if (scan.no_huge) {
    out.hugepages = false;
    if (!scan.memory) {
      out.args.emplace_back("-m");
      out.args.push_back(need);
    }
    out.notes.push_back("memory: normal pages (--no-huge given)" +
                        (scan.memory ? std::string() : ", -m " + need + " added"));
    return {};
  }
  if (scan.memory || scan.in_memory) {
    out.hugepages = true;
    // Our one-off prefix: nothing of it may stay in the hugetlbfs mount (files left there
    // keep their pages from every later process).
    if (out.own_file_prefix && !scan.in_memory) out.args.emplace_back("--huge-unlink");
    out.notes.push_back("memory: hugepages, as the EAL arguments ask (" + mib(huge.free_bytes) +
                        " free)");
    return {};
  }
  const std::uint64_t need_bytes = need_mb << 20;
  if (huge.free_bytes >= need_bytes && huge.mount_writable) {
    out.hugepages = true;
    // The embedded default's hugepage files get a one-off prefix: unlink them once mapped
    // so that nothing is left behind in the hugetlbfs mount.
    if (embedded) out.args.emplace_back("--huge-unlink");
    // Reserved at start (-m): DPDK 22.11's on-demand growth refused the per-lcore heaps'
    // large aligned memzones here (32 MiB aligned to 4 MiB) although pages were free.
    out.args.emplace_back("-m");
    out.args.push_back(need);
    out.notes.push_back("memory: hugepages, -m " + need + " (" + mib(huge.free_bytes) +
                        " free in pages of " + std::to_string(huge.page_bytes >> 10) +
                        " KiB, about " + need + " MiB needed)");
    return {};
  }
  out.hugepages = false;
  out.args.emplace_back("--no-huge");
  out.args.emplace_back("-m");
  out.args.push_back(need);
  const std::string why =
      huge.free_bytes < need_bytes
          ? mib(huge.free_bytes) + " of hugepages free, about " + need + " MiB needed"
          : "no writable hugetlbfs mount";
  out.notes.push_back("memory: normal pages, --no-huge -m " + need + " (" + why + ")");
  return {};
}

}  // namespace ctxfwd
