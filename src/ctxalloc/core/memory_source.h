// The MemorySource concept: where allocators get their regions from (mmap, an arena of
// fixed blocks, a caller-supplied region, a DPDK memzone). A source is a crude allocator:
// few, large, page-granular requests, no size classes.
#pragma once

#include <concepts>
#include <cstddef>

#include "ctxalloc/core/layout.h"

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

}  // namespace ctxalloc
