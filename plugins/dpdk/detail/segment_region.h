// SegmentRegion: the memory of one lcore's thread heap or of one socket's global heap,
// reserved once at set-up on the right NUMA socket and handed to a SegmentSource in
// 4 MiB segments through a SegmentBackend. The backend only gives memory: the switchable
// layer registers the segments it takes (SegmentMap), never the region itself.
//
// Why a region reserved up front rather than a memzone per segment: the budget the
// configuration gives (thread_size + ready blocks, global_heap) is then held from the
// start (a later shortage of hugepages cannot starve a running lcore), a segment taken
// on the allocation path costs a bit-set search instead of DPDK's memzone lock and heap
// walk, and one process uses two memzones per lcore and socket at most instead of one
// per 4 MiB (RTE_MAX_MEMZONE is 2560).
//
// Two kinds of memory:
//  - hugepages: a memzone on the socket (rte_memzone_reserve_aligned, 4 MiB-aligned),
//    from DPDK's hugepage memory, already faulted in and pinned;
//  - normal pages (EAL --no-huge, or hugepages = none): an anonymous mapping bound to the
//    socket's node (mbind MPOL_BIND, when the kernel has NUMA) and faulted in at once.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/check.h"
#include "ctxalloc/switchable/segment_source.h"

struct rte_memzone;

namespace ctxalloc::dpdk::detail {

enum class PageKind : std::uint8_t { none, hugepages, normal_pages };

/// "hugepages", "normal_pages" ("none" before a reservation).
const char* to_string(PageKind k) noexcept;

/// What to reserve.
struct RegionRequest {
  const char* name = "";  ///< memzone name: unique, < 32 characters
  unsigned socket = 0;    ///< NUMA socket the memory must be on
  std::size_t bytes = 0;  ///< a multiple of 4 MiB
  PageKind kind = PageKind::normal_pages;
  std::size_t hugepage_size = 0;   ///< the page size asked for (0: any)
  bool other_page_size_ok = true;  ///< another hugepage size will do (hugepages = prefer)
};

class SegmentRegion {
 public:
  static constexpr std::size_t kSegment = SegmentSource::kSegmentSize;
  /// Segments one region can hold (a 16 GiB region); the bit set is fixed-size so that
  /// the region needs no allocation.
  static constexpr std::size_t kMaxSegments = 4096;

  SegmentRegion() noexcept = default;
  ~SegmentRegion() { free(); }
  SegmentRegion(const SegmentRegion&) = delete;
  SegmentRegion& operator=(const SegmentRegion&) = delete;

  /// Reserves the memory. 0, or a negative errno with `why` (a static string) set:
  /// -EINVAL (size not whole segments or above kMaxSegments), -ENOMEM (DPDK or the
  /// kernel refused), -EFAULT (a memzone on another socket than asked).
  int reserve(const RegionRequest& r, const char** why) noexcept;
  /// Gives the memory back; segments still out are the caller's error (free_segments()
  /// tells). Nothing happens without a reservation.
  void free() noexcept;

  /// The backend a SegmentSource takes segments from (context: this region).
  SegmentBackend backend() noexcept;

  /// `bytes` (whole segments) contiguous, 4 MiB-aligned, or a null Block. First fit over
  /// the bit set: O(segments), on the rare path where a heap grows by a segment.
  Block obtain(std::size_t bytes) noexcept;
  /// Gives back a Block obtain returned; anything else is reported (misuse) and ignored.
  void release(Block b) noexcept;

  bool reserved() const noexcept { return base_ != nullptr; }
  std::byte* base() const noexcept { return base_; }
  std::size_t bytes() const noexcept { return segments_ * kSegment; }
  std::size_t segments() const noexcept { return segments_; }
  std::size_t free_segments() const noexcept { return segments_ - out_; }
  PageKind kind() const noexcept { return kind_; }
  unsigned socket() const noexcept { return socket_; }
  /// The page size backing the region (the memzone's hugepage size, or the base page).
  std::size_t page_size() const noexcept { return page_size_; }
  /// Whether the normal-page mapping is bound to its node (false without NUMA).
  bool numa_bound() const noexcept { return numa_bound_; }
  bool contains(const void* p) const noexcept { return p >= base_ && p < base_ + bytes(); }

  /// Walks the bit set: as many segments marked out as counted, none past the end, and a
  /// base aligned to a segment.
  CheckResult check_invariants() const;

 private:
  template <class>
  friend struct ::ctxalloc::TestPeer;

  int reserve_memzone(const RegionRequest& r, const char** why) noexcept;
  int reserve_pages(const RegionRequest& r, const char** why) noexcept;
  bool test(std::size_t i) const noexcept { return (bits_[i / 64] >> (i % 64)) & 1U; }
  void set(std::size_t first, std::size_t n, bool on) noexcept;

  const rte_memzone* memzone_ = nullptr;  // hugepages; else base_ is an mmap of bytes()
  std::byte* base_ = nullptr;
  std::size_t segments_ = 0;
  std::size_t out_ = 0;  // segments handed out
  PageKind kind_ = PageKind::none;
  unsigned socket_ = 0;
  std::size_t page_size_ = 0;
  bool numa_bound_ = false;
  std::uint64_t bits_[kMaxSegments / 64] = {};  // 1: the segment is out
};

}  // namespace ctxalloc::dpdk::detail
