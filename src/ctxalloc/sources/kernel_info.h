// What the kernel says about memory: the page size, free hugepages per size, the
// transparent hugepage mode, and what really backs a mapping (/proc/self/smaps). Sources
// report what they got from here instead of assuming that a flag took effect. Reading
// these files costs system calls (smaps walks every mapping of the process), so it is
// done on demand, never on an obtain's success path.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctxalloc {

/// The base page size (sysconf), read once.
std::size_t page_size() noexcept;

/// Counts of hugepages of one size, from /sys/kernel/mm/hugepages/hugepages-<kB>kB/.
struct HugePageCounts {
  bool supported = false;      ///< the kernel knows this size
  std::uint64_t total = 0;     ///< nr_hugepages: reserved in the pool
  std::uint64_t free = 0;      ///< free_hugepages (includes reserved but not yet faulted)
  std::uint64_t reserved = 0;  ///< resv_hugepages: promised to mappings, not yet faulted
  std::uint64_t surplus = 0;   ///< surplus_hugepages (overcommitted)
  /// Pages a new mapping can still get.
  std::uint64_t available() const noexcept { return free > reserved ? free - reserved : 0; }
};

/// The kernel's hugepage pool of `page_bytes` (2 MiB, 1 GiB).
HugePageCounts hugepage_counts(std::size_t page_bytes) noexcept;

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
