// RegionSource: page-aligned pieces of a region the caller supplies (a DPDK memzone, a
// static buffer, a hugepage mapping made elsewhere). It never touches memory outside
// the region, nor the pieces it has handed out, nor the free pieces (a memzone's untouched
// pages stay unfaulted): its metadata is two bitmaps, one bit per granule each ("used"
// and "a piece starts here"), at the head of the region or in memory the caller gives.
// Freed pieces coalesce by construction: adjacent free granules are one run of clear bits.
//
// obtain is first fit from the lowest free granule, O(granules / 64) word scans in the
// worst case; release checks that the block is exactly a piece it handed out (so double,
// foreign and wrong-size releases are reported, not obeyed) in O(piece / 64). A 1 GiB
// region of 4 KiB granules has 64 KiB of bitmaps. One owner thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/check.h"
#include "ctxalloc/core/layout.h"
#include "ctxalloc/core/memory_source.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/source_error.h"
#include "ctxalloc/core/stats.h"
#include "ctxalloc/sources/kernel_info.h"

namespace ctxalloc {

template <class T>
struct TestPeer;

class RegionSource {
 public:
  /// Pieces of `region` (not owned; it must outlive the source) in multiples of
  /// `granularity` (a power of two, at least the page size), the bitmaps at its head.
  /// A region too small for its bitmaps and one granule fails every obtain
  /// (config_error() says so).
  explicit RegionSource(Block region, std::size_t granularity = page_size()) noexcept;

  /// The same with the bitmaps in `metadata` (at least metadata_bytes(region.size,
  /// granularity) bytes, 8-aligned, outside the region): the whole region is handed out,
  /// e.g. every 2 MiB page of a memzone.
  RegionSource(Block region, Block metadata, std::size_t granularity) noexcept;

  /// Bytes of bitmaps a region of region_size needs with caller-supplied metadata.
  static std::size_t metadata_bytes(std::size_t region_size, std::size_t granularity) noexcept;

  /// Gives the region back as it came (under ASan: unpoisoned).
  ~RegionSource();
  RegionSource(const RegionSource&) = delete;
  RegionSource& operator=(const RegionSource&) = delete;

  /// A piece of size rounded up to the granularity, granularity-aligned; the lowest that
  /// fits. Null (exhausted / too_large / bad_size in last_error()) otherwise.
  Block obtain(std::size_t size) noexcept { return obtain_aligned(size, 1); }
  /// The same, at an address aligned to align (a power of two).
  Block obtain_aligned(std::size_t size, std::size_t align) noexcept;
  /// Takes back a piece obtain returned (size as returned, or one that rounds up to it).
  void release(Block block) noexcept;

  /// Whether p lies in the part of the region that pieces come from.
  bool contains(const void* p) const noexcept;
  /// [first byte of the first granule, end of the last).
  Block usable() const noexcept { return Block{data_, count_ * granularity_}; }
  std::size_t granularity() const noexcept { return granularity_; }
  std::size_t capacity() const noexcept { return count_ * granularity_; }
  std::size_t free_bytes() const noexcept { return free_ * granularity_; }
  /// The longest run of free granules, in bytes (a scan of the bitmap).
  std::size_t largest_free() const noexcept;

  const SourceError& config_error() const noexcept { return config_error_; }
  const SourceError& last_error() const noexcept { return last_error_; }
  SourceStats stats() const noexcept;

  /// Walks the bitmaps: sentinel bits, start bits only on used granules, every used run
  /// begins with a start bit, counts against the counters, the free-search hint.
  CheckResult check_invariants() const;

 private:
  template <class>
  friend struct TestPeer;
  static constexpr std::size_t kNone = SIZE_MAX;

  void init(std::byte* data, std::size_t count, std::uint64_t* bitmaps) noexcept;
  std::size_t words() const noexcept { return (count_ + 63) / 64; }
  std::size_t next_clear(const std::uint64_t* map, std::size_t from) const noexcept;
  std::size_t next_set(const std::uint64_t* map, std::size_t from, std::size_t to) const noexcept;
  std::size_t find_run(std::size_t n, std::size_t step, std::size_t phase) const noexcept;
  std::size_t piece_length(std::size_t i) const noexcept;
  Block fail(const SourceError& e) noexcept;
  void refuse(Misuse what, const void* p) noexcept;

  std::byte* region_begin_;
  std::byte* region_end_;
  std::size_t granularity_;
  std::byte* data_ = nullptr;
  std::size_t count_ = 0;           // granules
  std::uint64_t* used_ = nullptr;   // bit i: granule i is handed out; bits past count_ set
  std::uint64_t* start_ = nullptr;  // bit i: a handed-out piece starts at granule i
  std::size_t free_ = 0;            // clear bits of used_ below count_
  std::size_t first_free_ = 0;      // no free granule below this one
  std::size_t meta_bytes_ = 0;
  bool meta_inside_ = true;
  SourceError config_error_;
  SourceError last_error_;
  Counter obtains_, releases_, failures_, misuses_, peak_;
};

static_assert(AlignedMemorySource<RegionSource>);
static_assert(ReportingMemorySource<RegionSource>);

}  // namespace ctxalloc
