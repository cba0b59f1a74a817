// What the kernel says about memory and the machine: the page size, hugepages per size
// (in the whole system and per NUMA node), the sizes offered, hugetlbfs mounts, the
// transparent hugepage mode, what really backs a mapping (/proc/self/smaps), and the
// kernel's id lists (cpulist, online). The one reader of these files for the library,
// the DPDK plugin (plugins/dpdk/system.cc) and ctxfwd (apps/ctxfwd/eal_plan.cc). Sources
// report what they got from here instead of assuming that a flag took effect. Reading
// costs system calls (smaps walks every mapping of the process), so it is done on demand,
// never on an obtain's success path. Nothing here allocates (open/read into fixed
// buffers): it may run inside malloc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctxalloc {

/// The base page size (sysconf), read once.
std::size_t page_size() noexcept;

/// Counts of hugepages of one size, in the whole system
/// (/sys/kernel/mm/hugepages/hugepages-<kB>kB/) or on one NUMA node
/// (/sys/devices/system/node/node<N>/hugepages/hugepages-<kB>kB/).
struct HugePageCounts {
  std::size_t page_bytes = 0;  ///< the page size counted
  bool supported = false;      ///< the kernel knows this size (on this node)
  std::uint64_t total = 0;     ///< nr_hugepages: reserved in the pool
  std::uint64_t free = 0;      ///< free_hugepages (includes reserved but not yet faulted)
  std::uint64_t reserved = 0;  ///< resv_hugepages: promised to mappings (system-wide only)
  std::uint64_t surplus = 0;   ///< surplus_hugepages (overcommitted)
  /// Pages a new mapping can still get.
  std::uint64_t available() const noexcept { return free > reserved ? free - reserved : 0; }
};

/// The kernel's hugepage pool of `page_bytes` (2 MiB, 1 GiB), system-wide.
HugePageCounts hugepage_counts(std::size_t page_bytes) noexcept;

/// The same under a sysfs root ("/sys"; tests pass a fake tree): system-wide for node < 0,
/// else NUMA node `node`'s pool (which has no resv_hugepages: reserved stays 0).
HugePageCounts hugepage_counts_in(const char* sysfs_root, std::size_t page_bytes,
                                  int node) noexcept;

/// The hugepage sizes the kernel offers, ascending: the hugepages-<kB>kB folders under
/// <sysfs_root>/kernel/mm/hugepages (node < 0) or under node<N>/hugepages. Writes at most
/// `cap` sizes and returns how many were written.
std::size_t hugepage_sizes_in(const char* sysfs_root, int node, std::size_t* sizes,
                              std::size_t cap) noexcept;

/// Whether a hugetlbfs mount listed in `mounts_path` (/proc/mounts format) lets this
/// process create files (access W_OK): where DPDK's EAL keeps its hugepage files.
bool hugetlbfs_mount_writable(const char* mounts_path = "/proc/mounts") noexcept;

/// Reads a small file (a sysfs number or list) into buf, NUL-terminated; false when it
/// cannot be read or is empty. Longer contents are cut at cap - 1 bytes.
bool read_small_file(const char* path, char* buf, std::size_t cap) noexcept;

namespace detail {
/// Parses a decimal number at *s, advancing *s; false when there is no digit or it
/// exceeds 2^31.
bool parse_uint(const char** s, unsigned* out) noexcept;
}  // namespace detail

/// Calls f(first, last) for every range of a kernel id list such as "0-3,8,10-11\n" (the
/// format of cpulist, cpu/online and node/online); false when the text is malformed
/// (ranges parsed before the error were reported). An empty list is well formed.
template <class F>
bool parse_id_ranges(const char* text, F&& f) noexcept {
  const char* s = text;
  while (*s == ' ')
    ++s;
  if (*s == '\n' || *s == '\0') return true;
  for (;;) {
    unsigned first = 0;
    if (!detail::parse_uint(&s, &first)) return false;
    unsigned last = first;
    if (*s == '-') {
      ++s;
      if (!detail::parse_uint(&s, &last) || last < first) return false;
    }
    f(first, last);
    if (*s == ',') {
      ++s;
      continue;
    }
    return *s == '\n' || *s == '\0';
  }
}

/// /sys/kernel/mm/transparent_hugepage/enabled.
enum class ThpMode : std::uint8_t { unsupported, always, madvise, never };
ThpMode thp_mode() noexcept;
const char* to_string(ThpMode m) noexcept;

/// What backs a mapping.
enum class PageKind : std::uint8_t { unknown, base, transparent, hugetlb };
const char* to_string(PageKind k) noexcept;

/// The kernel's view of the mapping (VMA) holding an address, from /proc/self/smaps.
/// Adjacent mappings with equal flags and policy are merged by the kernel into one VMA,
/// so the figures may cover neighbours too: [vma_begin, vma_end) says what they cover.
struct MappingReport {
  bool found = false;  ///< false: no mapping holds the address (or smaps unreadable)
  std::uintptr_t vma_begin = 0;
  std::uintptr_t vma_end = 0;
  std::size_t kernel_page_size = 0;  ///< KernelPageSize: 4 KiB, or the hugetlb page size
  std::size_t mmu_page_size = 0;     ///< MMUPageSize
  std::size_t rss = 0;               ///< bytes resident
  std::size_t anon_huge_bytes = 0;   ///< AnonHugePages: bytes in transparent hugepages
  std::size_t hugetlb_bytes = 0;     ///< Private_Hugetlb + Shared_Hugetlb
  std::size_t locked_bytes = 0;      ///< Locked
  std::size_t swap = 0;              ///< Swap
  bool thp_eligible = false;         ///< THPeligible: 1
  // VmFlags
  bool hugetlb_flag = false;    ///< ht: a hugetlb mapping
  bool thp_advised = false;     ///< hg: MADV_HUGEPAGE
  bool locked_flag = false;     ///< lo: mlock'ed
  bool dontdump_flag = false;   ///< dd: MADV_DONTDUMP
  bool noreserve_flag = false;  ///< nr: MAP_NORESERVE

  /// hugetlb when the kernel page size is above the base page, transparent when some
  /// bytes sit in transparent hugepages, else base.
  PageKind backing() const noexcept;
};

/// The mapping holding p, read from /proc/self/smaps.
MappingReport inspect_mapping(const void* p) noexcept;

/// The same, from a file in smaps format (tests feed it recorded text).
MappingReport inspect_mapping_in(const char* smaps_path, const void* p) noexcept;

}  // namespace ctxalloc
