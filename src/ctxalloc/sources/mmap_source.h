// MemoryMapSource: memory straight from the kernel, one mmap per block, with the options
// a packet-processing application wants: hugepages of a chosen size (falling back to
// transparent hugepages when none are reserved), a NUMA policy, pages faulted in and
// locked up front, and exclusion from core dumps. It records every block it hands out
// (in an index of its own, in mmap'd pages), so a double or foreign release is caught
// and reported instead of unmapping someone else's memory. What the kernel really gave
// is read back on demand (report(): /proc/self/smaps; read_numa_policy()).
//
// One owner thread (wrap it in a SharedSource to share it). Each obtain costs a few
// system calls (mmap; mbind, madvise, mlock when asked for) and O(log n) in the index.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/memory_source.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/source_error.h"
#include "ctxalloc/core/stats.h"
#include "ctxalloc/sources/detail/mapping_index.h"
#include "ctxalloc/sources/kernel_info.h"
#include "ctxalloc/sources/numa_policy.h"

namespace ctxalloc {

/// The pages to back blocks with.
enum class HugePages : std::uint8_t {
  none,         ///< base pages (4 KiB)
  transparent,  ///< base pages advised for transparent hugepages (MADV_HUGEPAGE); blocks
                ///< of 2 MiB and more are 2 MiB-aligned so the kernel can use them
  size_2m,      ///< hugetlb pages of 2 MiB (MAP_HUGETLB | 21 << MAP_HUGE_SHIFT)
  size_1g,      ///< hugetlb pages of 1 GiB (MAP_HUGETLB | 30 << MAP_HUGE_SHIFT)
};

/// What to do when hugetlb pages of the size asked for cannot be had.
enum class HugeFallback : std::uint8_t {
  transparent,  ///< map base pages advised for transparent hugepages, and count it
  fail,         ///< fail the obtain (hugepages_unavailable / huge_size_unsupported)
};

/// What a block was really mapped with (the kernel's own view: report()).
enum class MapOutcome : std::uint8_t {
  base_pages,                ///< base pages, as asked
  transparent,               ///< advised for transparent hugepages, as asked
  hugetlb,                   ///< hugetlb pages of the size asked for
  fell_back_to_transparent,  ///< hugetlb refused; base pages advised for THP instead
  fell_back_to_base,         ///< THP could not even be advised (a kernel without THP)
};

const char* to_string(HugePages h) noexcept;
const char* to_string(MapOutcome o) noexcept;

struct MapOptions {
  HugePages huge = HugePages::none;
  HugeFallback fallback = HugeFallback::transparent;
  bool populate = false;    ///< fault every page in at obtain (after the NUMA policy is set)
  bool lock = false;        ///< mlock: resident and never swapped (needs RLIMIT_MEMLOCK or root)
  bool no_reserve = false;  ///< MAP_NORESERVE: no swap/commit accounting (base pages only)
  bool dontdump = false;    ///< MADV_DONTDUMP: left out of core dumps
  NumaPolicy numa;          ///< mbind before any page is faulted in
};

/// Counters particular to the mmap source.
struct MapStats {
  std::uint64_t hugetlb = 0;                   ///< blocks backed by hugetlb pages
  std::uint64_t transparent = 0;               ///< blocks advised for THP as asked
  std::uint64_t fallbacks_to_transparent = 0;  ///< hugetlb refused, THP advised instead
  std::uint64_t fallbacks_to_base = 0;         ///< THP not even advisable
  std::uint64_t resized_in_place = 0;          ///< resize without moving
  std::uint64_t moved_by_remap = 0;            ///< moved by mremap: page tables, no copy
  std::uint64_t moved_by_copy = 0;             ///< hugetlb blocks grown by map + copy + unmap
};

class MemoryMapSource {
 public:
  /// A source with these options, checked at once (config_error() says what is wrong;
  /// every obtain then fails with that error).
  explicit MemoryMapSource(const MapOptions& options = {}) noexcept;
  /// Unmaps every block still held.
  ~MemoryMapSource();
  MemoryMapSource(const MemoryMapSource&) = delete;
  MemoryMapSource& operator=(const MemoryMapSource&) = delete;

  /// Checks options against this system without mapping anything: NUMA nodes that do not
  /// exist, contradictory flags, no_reserve with hugetlb pages (a shortage would turn
  /// into SIGBUS at first touch instead of a failed obtain).
  static SourceError validate(const MapOptions& options) noexcept;

  /// A block of at least size bytes, rounded up to granularity(); aligned to the page
  /// size (hugetlb: the hugepage size; transparent: 2 MiB from 2 MiB on). Null on failure,
  /// with the reason in last_error().
  Block obtain(std::size_t size) noexcept { return obtain_aligned(size, 1); }

  /// The same, aligned to align (a power of two; above the page size the source maps
  /// size + align of address space without committing it and trims the rest).
  Block obtain_aligned(std::size_t size, std::size_t align) noexcept;

  /// Unmaps a block obtain returned (size as returned, or anything that rounds up to it).
  /// A block the source does not hold is reported (misuse) and left alone.
  void release(Block block) noexcept;

  /// Resizes a held block to new_size (> 0, rounded up to its unit), keeping its bytes
  /// and its alignment `align`: shrinking unmaps the tail; growing extends in place
  /// (mremap) or, with Move::allowed, moves it by mremap (page tables move, bytes are not
  /// copied); hugetlb blocks, which mremap cannot grow, are extended by a fixed mapping
  /// just past their end or moved by copying. Null on failure; the block is then as it was.
  Block resize(Block block, std::size_t new_size, std::size_t align, Move move) noexcept;

  /// Calls f(Block) for every block held, in address order. Owner thread only.
  template <class F>
  void for_each_block(F&& f) const {
    for (const detail::Mapping* m = index_.first(); m != nullptr; m = index_.next(m)) {
      f(Block{m->start, m->size});
    }
  }

  /// The held block that contains p (any byte of it), or a null Block. O(log n).
  Block block_of(const void* p) const noexcept;
  bool holds(const void* p) const noexcept { return block_of(p).ptr != nullptr; }
  /// Why p is not the start of a held block: double_free when it was released lately
  /// (and is not inside a held block now), else foreign_pointer.
  Misuse misuse_kind(const void* p) const noexcept;
  /// How the block containing p was mapped (base_pages when p is not held).
  MapOutcome outcome_of(const void* p) const noexcept;

  /// The kernel's report on the mapping holding p (/proc/self/smaps). Costs a read of
  /// smaps, which grows with the process's mapping count: for tests and diagnostics.
  MappingReport report(const void* p) const noexcept { return inspect_mapping(p); }

  /// Size granularity of blocks: the hugepage size asked for, else the page size.
  std::size_t granularity() const noexcept { return unit_; }
  const MapOptions& options() const noexcept { return options_; }
  /// ok() when the options passed validate().
  const SourceError& config_error() const noexcept { return config_error_; }
  /// Why the last failed obtain/resize/release failed.
  const SourceError& last_error() const noexcept { return last_error_; }
  /// What the last successful obtain got.
  MapOutcome last_outcome() const noexcept { return last_outcome_; }

  SourceStats stats() const noexcept;
  MapStats map_stats() const noexcept;

  /// Walks the index (order, overlap, alignment, red-black rules, pool) and asks the
  /// kernel that every recorded block is still mapped (msync). Owner thread only.
  CheckResult check_invariants() const;

 private:
  template <class>
  friend struct TestPeer;

  SourceError map_new(std::size_t size, std::size_t align, detail::Mapping* out) noexcept;
  SourceError prepare(const detail::Mapping& m, std::size_t offset) noexcept;
  SourceError populate(std::byte* p, std::size_t len) noexcept;
  std::size_t natural_align(std::size_t rounded) const noexcept;
  bool grow_in_place(detail::Mapping* m, std::size_t rounded) noexcept;
  SourceError move(detail::Mapping* m, std::size_t rounded, std::size_t align) noexcept;
  void count_outcome(MapOutcome o) noexcept;
  Block fail(const SourceError& e) noexcept;
  void refuse_release(Misuse what, const void* p, const char* op) noexcept;
  void remember_released(const void* p) noexcept;
  bool recently_released(const void* p) const noexcept;

  MapOptions options_;
  std::size_t unit_;
  SourceError config_error_;
  SourceError last_error_;
  MapOutcome last_outcome_ = MapOutcome::base_pages;
  detail::MappingIndex index_;
  Counter obtains_, releases_, failures_, misuses_, held_, peak_;
  Counter hugetlb_, transparent_, fallback_thp_, fallback_base_;
  Counter resized_in_place_, moved_by_remap_, moved_by_copy_;
  // The last few released starts: a release of one of them that is not held again is a
  // double release rather than a foreign pointer (only the message differs).
  static constexpr unsigned kRecent = 8;
  const void* recent_[kRecent] = {};
  unsigned recent_next_ = 0;
};

static_assert(AlignedMemorySource<MemoryMapSource>);
static_assert(ReportingMemorySource<MemoryMapSource>);

}  // namespace ctxalloc
