// The MemorySource concept: where allocators get their regions from (mmap, an arena of
// fixed blocks, a caller-supplied region, a DPDK memzone). A source is a crude allocator:
// few, large, page-granular requests, no size classes. docs/sources.md describes the
// sources ctxalloc has.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/layout.h"
#include "ctxalloc/core/source_error.h"

namespace ctxalloc {

/// `s.obtain(size)`: a block of at least `size` bytes (rounded up to the source's
/// granularity, reported in Block::size), aligned to at least the page size unless the
/// source documents otherwise; a null Block when the source is exhausted or size is 0.
/// `s.release(block)`: gives back a block exactly as obtain returned it.
template <class S>
concept MemorySource = requires(S& s, std::size_t size, Block block) {
  { s.obtain(size) }
  noexcept->std::same_as<Block>;
  { s.release(block) }
  noexcept->std::same_as<void>;
};

/// A source that can also hand out blocks aligned to a power of two above its natural
/// alignment (`s.obtain_aligned(size, align)`), so that the owner of a pointer can be
/// found by masking it (segments of 2-4 MiB, arena slabs aligned to their block size).
template <class S>
concept AlignedMemorySource = MemorySource<S> &&
    requires(S& s, std::size_t size, std::size_t align) {
  { s.obtain_aligned(size, align) }
  noexcept->std::same_as<Block>;
};

/// What every ctxalloc source reports about itself.
struct SourceStats {
  std::uint64_t obtains = 0;         ///< successful obtain calls
  std::uint64_t releases = 0;        ///< successful release calls
  std::uint64_t failures = 0;        ///< obtain calls that returned a null Block
  std::uint64_t misuses = 0;         ///< refused releases (double, foreign, wrong size)
  std::uint64_t bytes_held = 0;      ///< bytes in blocks handed out and not yet released
  std::uint64_t peak_bytes = 0;      ///< highest bytes_held seen
  std::uint64_t capacity = 0;        ///< bytes the source can hand out in all (0: unbounded)
  std::uint64_t upstream_bytes = 0;  ///< bytes it holds from its parent or the kernel,
                                     ///< its own metadata included

  /// Blocks handed out and not yet released.
  std::uint64_t live_blocks() const noexcept { return obtains - releases; }
};

/// A source that says what it holds and why its last call failed: `s.stats()` and
/// `s.last_error()` (the reason of the most recent failed obtain or refused release; not
/// cleared by success, like errno).
template <class S>
concept ReportingMemorySource = MemorySource<S> && requires(const S& cs) {
  { cs.stats() }
  noexcept->std::same_as<SourceStats>;
  { cs.last_error() }
  noexcept->std::convertible_to<SourceError>;
};

}  // namespace ctxalloc
