// SegmentSource: the process's supply of 4 MiB segments (SegmentMap::kSegmentSize,
// aligned to it) for one NUMA node, shared by the thread heaps and the global heap of that
// node. Thread-safe: a mutex around an mmap source, which is fine because segments are
// taken and given back rarely (a thread heap takes one per 4 MiB it grows). A few
// released segments are cached, so that thread churn does not map and unmap 4 MiB per
// thread.
#pragma once

#include <cstddef>
#include <mutex>

#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/core/stats.h"
#include "ctxalloc/sources/mmap_source.h"

namespace ctxalloc {

/// Where a SegmentSource gets memory when it is not from mmap (a DPDK memzone on an
/// lcore's socket, hugetlbfs with mbind...): `obtain(context, bytes)` returns `bytes`
/// (a multiple of 4 MiB) aligned to 4 MiB, or a null Block; `release` takes it back.
/// Called under the source's lock, rarely.
struct SegmentBackend {
  void* context = nullptr;
  Block (*obtain)(void* context, std::size_t bytes) noexcept = nullptr;
  void (*release)(void* context, Block block) noexcept = nullptr;
};

class SegmentSource {
 public:
  static constexpr std::size_t kSegmentSize = SegmentMap::kSegmentSize;
  static constexpr std::size_t kCacheSlots = 8;

  /// Segments mapped with these options (NUMA policy, hugepages, populate...); at most
  /// limit_bytes of them out at once (0: no limit).
  explicit SegmentSource(const MapOptions& options = {}, std::size_t limit_bytes = 0) noexcept;
  /// Segments from a backend (see SegmentBackend), at most limit_bytes out at once.
  explicit SegmentSource(const SegmentBackend& backend, std::size_t limit_bytes = 0) noexcept;
  ~SegmentSource();
  SegmentSource(const SegmentSource&) = delete;
  SegmentSource& operator=(const SegmentSource&) = delete;

  /// `count` contiguous segments (count * 4 MiB, aligned to 4 MiB), or a null Block.
  Block obtain(std::size_t count = 1) noexcept;
  /// Gives back a Block obtain returned.
  void release(Block segments) noexcept;

  /// Gives the cached segments back to the backend (or the kernel).
  void trim() noexcept;

  /// A SegmentProvider (for a SizeClassAllocator) over this source, one segment a time.
  SegmentProvider provider() noexcept;

  /// Bytes of segments out now, and the most there ever were.
  std::size_t bytes_out() const noexcept { return out_.get(); }
  std::size_t peak_bytes_out() const noexcept { return peak_.get(); }
  std::size_t limit_bytes() const noexcept { return limit_; }
  const MapOptions& options() const noexcept { return source_.options(); }

 private:
  Block take(std::size_t bytes) noexcept;  // from the backend or mmap; lock_ held
  void give(Block b) noexcept;             // to the backend or mmap; lock_ held

  std::mutex lock_;
  MemoryMapSource source_;  // used when backend_.obtain is null
  SegmentBackend backend_;
  std::size_t limit_;
  Block cache_[kCacheSlots] = {};
  std::size_t cached_ = 0;
  Counter out_;
  Counter peak_;
};

}  // namespace ctxalloc
