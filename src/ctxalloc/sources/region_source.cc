#include "ctxalloc/sources/region_source.h"

#include <bit>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/core/poison.h"

namespace ctxalloc {
namespace {

std::uintptr_t addr(const void* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p);
}

// Bits [from, from + n) of map set or cleared.
void set_bits(std::uint64_t* map, std::size_t from, std::size_t n, bool on) noexcept {
  while (n > 0) {
    const std::size_t bit = from % 64;
    const std::size_t take = n < 64 - bit ? n : 64 - bit;
    const std::uint64_t mask = low_bits(static_cast<unsigned>(take)) << bit;
    if (on) {
      map[from / 64] |= mask;
    } else {
      map[from / 64] &= ~mask;
    }
    from += take;
    n -= take;
  }
}

bool test_bit(const std::uint64_t* map, std::size_t i) noexcept {
  return (map[i / 64] >> (i % 64) & 1) != 0;
}

std::size_t bitmap_bytes(std::size_t count) noexcept {
  return 2 * 8 * ((count + 63) / 64);  // two bitmaps of whole words
}

}  // namespace

std::size_t RegionSource::metadata_bytes(std::size_t region_size,
                                         std::size_t granularity) noexcept {
  if (!is_pow2(granularity)) return 0;
  // One granule more than fits, in case the region does not start on a granule.
  return bitmap_bytes(region_size / granularity + 1);
}

RegionSource::RegionSource(Block region, std::size_t granularity) noexcept
    : region_begin_(region.ptr), region_end_(region.ptr + region.size), granularity_(granularity) {
  if (!is_pow2(granularity) || granularity < page_size() || region.ptr == nullptr) {
    config_error_ = SourceError::make(SourceErrc::bad_option, 0,
                                      "region_source: granularity %zu is not a power of two of at "
                                      "least the page size, or the region is null",
                                      granularity);
    return;
  }
  // The bitmaps come first (8-aligned), the granules after them: shrink the granule
  // count until both fit.
  std::byte* meta = region.ptr + padding_for(addr(region.ptr), 8);
  std::size_t count = 0;
  std::byte* data = nullptr;
  if (meta < region_end_) {
    const std::size_t room = static_cast<std::size_t>(region_end_ - meta);
    count = room / granularity;
    for (;;) {
      const std::uintptr_t d = align_up(addr(meta) + bitmap_bytes(count), granularity);
      const std::size_t fit = d < addr(region_end_) ? (addr(region_end_) - d) / granularity : 0;
      data = reinterpret_cast<std::byte*>(d);
      if (fit >= count) break;
      count = fit < count - 1 ? fit : count - 1;
    }
  }
  if (count == 0) {
    config_error_ = SourceError::make(SourceErrc::region_too_small, 0,
                                      "region_source: %zu bytes hold no %zu-byte granule after "
                                      "their bitmaps",
                                      region.size, granularity);
    return;
  }
  meta_bytes_ = bitmap_bytes(count);
  init(data, count, reinterpret_cast<std::uint64_t*>(meta));
}

RegionSource::RegionSource(Block region, Block metadata, std::size_t granularity) noexcept
    : region_begin_(region.ptr), region_end_(region.ptr + region.size), granularity_(granularity) {
  meta_inside_ = false;
  if (!is_pow2(granularity) || granularity < page_size() || region.ptr == nullptr ||
      metadata.ptr == nullptr || !is_aligned(metadata.ptr, 8)) {
    config_error_ = SourceError::make(SourceErrc::bad_option, 0,
                                      "region_source: bad granularity %zu, null region or "
                                      "metadata not 8-aligned",
                                      granularity);
    return;
  }
  const std::uintptr_t d = align_up(addr(region.ptr), granularity);
  const std::size_t count = d < addr(region_end_) ? (addr(region_end_) - d) / granularity : 0;
  const bool overlaps = metadata.ptr < region_end_ && metadata.end() > region.ptr;
  if (count == 0 || metadata.size < bitmap_bytes(count) || overlaps) {
    config_error_ =
        SourceError::make(SourceErrc::region_too_small, 0,
                          "region_source: %zu granules need %zu bytes of metadata "
                          "outside the region; got %zu%s",
                          count, bitmap_bytes(count), metadata.size, overlaps ? " inside it" : "");
    return;
  }
  meta_bytes_ = bitmap_bytes(count);
  init(reinterpret_cast<std::byte*>(d), count, reinterpret_cast<std::uint64_t*>(metadata.ptr));
}

void RegionSource::init(std::byte* data, std::size_t count, std::uint64_t* bitmaps) noexcept {
  data_ = data;
  count_ = count;
  used_ = bitmaps;
  start_ = bitmaps + words();
  for (std::size_t w = 0; w < 2 * words(); ++w)
    bitmaps[w] = 0;
  // Bits past the last granule are "used": searches stop there without a bounds test.
  if (count % 64 != 0) used_[words() - 1] = ~low_bits(static_cast<unsigned>(count % 64));
  free_ = count;
  detail::poison(data_, capacity());
}

RegionSource::~RegionSource() {
  if (data_ != nullptr) detail::unpoison(data_, capacity());
}

std::size_t RegionSource::next_clear(const std::uint64_t* map, std::size_t from) const noexcept {
  if (from >= count_) return count_;
  std::size_t w = from / 64;
  std::uint64_t bits = ~map[w] & ~low_bits(static_cast<unsigned>(from % 64));
  while (bits == 0) {
    if (++w == words()) return count_;
    bits = ~map[w];
  }
  const std::size_t i = w * 64 + lowest_bit_index(bits);
  return i < count_ ? i : count_;
}

std::size_t RegionSource::next_set(const std::uint64_t* map, std::size_t from,
                                   std::size_t to) const noexcept {
  if (from >= to) return to;
  std::size_t w = from / 64;
  std::uint64_t bits = map[w] & ~low_bits(static_cast<unsigned>(from % 64));
  const std::size_t last = (to - 1) / 64;
  while (bits == 0) {
    if (++w > last) return to;
    bits = map[w];
  }
  const std::size_t i = w * 64 + lowest_bit_index(bits);
  return i < to ? i : to;
}

// The lowest granule j >= first_free_ with j % step == phase whose n granules are free.
// Each failed candidate jumps past the used granule that spoiled it.
std::size_t RegionSource::find_run(std::size_t n, std::size_t step,
                                   std::size_t phase) const noexcept {
  std::size_t i = first_free_;
  for (;;) {
    i = next_clear(used_, i);
    if (i >= count_) return kNone;
    const std::size_t j = i + (phase + step - i % step) % step;
    if (j >= count_ || n > count_ - j) return kNone;
    const std::size_t blocker = next_set(used_, j, j + n);
    if (blocker == j + n) return j;
    i = blocker + 1;
  }
}

Block RegionSource::fail(const SourceError& e) noexcept {
  last_error_ = e;
  failures_.add(1);
  return Block{};
}

Block RegionSource::obtain_aligned(std::size_t size, std::size_t align) noexcept {
  if (!config_error_.ok()) return fail(config_error_);
  if (!is_pow2(align))
    return fail(SourceError::make(SourceErrc::bad_alignment, 0,
                                  "region_source: alignment %zu is not a power of two", align));
  if (size == 0) return fail(SourceError::make(SourceErrc::bad_size, 0, "region_source: size 0"));
  const std::size_t n = size / granularity_ + (size % granularity_ != 0 ? 1 : 0);
  if (n > free_)
    return fail(SourceError::make(n > count_ ? SourceErrc::too_large : SourceErrc::exhausted, 0,
                                  "region_source: %zu bytes need %zu granules, %zu of %zu are free",
                                  size, n, free_, count_));
  // Alignments above the granule: granule j is aligned when j % step == phase.
  std::size_t step = 1, phase = 0;
  if (align > granularity_) {
    step = align / granularity_;
    phase = padding_for(addr(data_), align) / granularity_ % step;
  }
  const std::size_t j = find_run(n, step, phase);
  if (j == kNone)
    return fail(SourceError::make(SourceErrc::exhausted, 0,
                                  "region_source: no run of %zu free granules aligned to %zu "
                                  "(%zu of %zu free, fragmented)",
                                  n, align, free_, count_));
  set_bits(used_, j, n, true);
  set_bits(start_, j, 1, true);
  free_ -= n;
  if (j == first_free_) first_free_ = next_clear(used_, j + n);
  obtains_.add(1);
  peak_.raise_to((count_ - free_) * granularity_);
  std::byte* p = data_ + j * granularity_;
  detail::unpoison(p, n * granularity_);
  return Block{p, n * granularity_};
}

// Granules from i up to the next piece's start or the next free granule.
std::size_t RegionSource::piece_length(std::size_t i) const noexcept {
  const std::size_t next_piece = next_set(start_, i + 1, count_);
  const std::size_t next_free = next_clear(used_, i + 1);
  return (next_piece < next_free ? next_piece : next_free) - i;
}

void RegionSource::refuse(Misuse what, const void* p) noexcept {
  misuses_.add(1);
  last_error_ = SourceError::make(SourceErrc::misuse, 0, "region_source: release of %p refused: %s",
                                  p, to_string(what));
  report_misuse(what, "region_source", "release", p);
}

void RegionSource::release(Block block) noexcept {
  if (block.ptr == nullptr) return;
  if (!contains(block.ptr) || (addr(block.ptr) - addr(data_)) % granularity_ != 0) {
    refuse(Misuse::foreign_pointer, block.ptr);
    return;
  }
  const std::size_t i = static_cast<std::size_t>(block.ptr - data_) / granularity_;
  if (!test_bit(used_, i)) return refuse(Misuse::double_free, block.ptr);
  if (!test_bit(start_, i)) return refuse(Misuse::foreign_pointer, block.ptr);  // inside a piece
  const std::size_t n = piece_length(i);
  const std::size_t claimed = block.size / granularity_ + (block.size % granularity_ != 0 ? 1 : 0);
  if (claimed != n) return refuse(Misuse::wrong_size, block.ptr);
  detail::poison(block.ptr, n * granularity_);
  set_bits(used_, i, n, false);
  set_bits(start_, i, 1, false);
  free_ += n;
  if (i < first_free_) first_free_ = i;
  releases_.add(1);
}

bool RegionSource::contains(const void* p) const noexcept {
  const auto* b = static_cast<const std::byte*>(p);
  return data_ != nullptr && b >= data_ && b < data_ + capacity();
}

std::size_t RegionSource::largest_free() const noexcept {
  std::size_t best = 0;
  for (std::size_t i = next_clear(used_, 0); i < count_;) {
    const std::size_t end = next_set(used_, i, count_);
    if (end - i > best) best = end - i;
    i = next_clear(used_, end);
  }
  return best * granularity_;
}

SourceStats RegionSource::stats() const noexcept {
  SourceStats s;
  s.obtains = obtains_.get();
  s.releases = releases_.get();
  s.failures = failures_.get();
  s.misuses = misuses_.get();
  s.bytes_held = (count_ - free_) * granularity_;
  s.peak_bytes = peak_.get();
  s.capacity = capacity();
  s.upstream_bytes =
      static_cast<std::size_t>(region_end_ - region_begin_) + (meta_inside_ ? 0 : meta_bytes_);
  return s;
}

CheckResult RegionSource::check_invariants() const {
  if (data_ == nullptr) return CheckResult::ok();  // unusable region: nothing to walk
  CTXALLOC_INVARIANT(is_aligned(data_, granularity_) && data_ >= region_begin_ &&
                         data_ + capacity() <= region_end_,
                     "region_source: granules [", data_, ", +", capacity(),
                     ") misplaced in the region [", region_begin_, ", ", region_end_, ")");
  if (meta_inside_)
    CTXALLOC_INVARIANT(reinterpret_cast<std::byte*>(used_) + meta_bytes_ <= data_,
                       "region_source: bitmaps run into the first granule");
  std::size_t used = 0, pieces = 0;
  for (std::size_t w = 0; w < words(); ++w) {
    const std::size_t valid = w + 1 < words() || count_ % 64 == 0 ? 64 : count_ % 64;
    const std::uint64_t pad = ~low_bits(static_cast<unsigned>(valid));
    CTXALLOC_INVARIANT((used_[w] & pad) == pad, "region_source: sentinel bits past granule ",
                       count_, " are clear");
    CTXALLOC_INVARIANT((start_[w] & ~used_[w]) == 0,
                       "region_source: a piece starts on a free "
                       "granule in word ",
                       w);
    // A used granule whose predecessor is free must start a piece.
    const std::uint64_t prev_used = used_[w] << 1 | (w > 0 ? used_[w - 1] >> 63 : 0);
    const std::uint64_t run_starts = used_[w] & ~prev_used & ~pad;
    CTXALLOC_INVARIANT((run_starts & ~start_[w]) == 0, "region_source: used granules in word ", w,
                       " belong to no piece");
    used += static_cast<std::size_t>(std::popcount(used_[w] & ~pad));
    pieces += static_cast<std::size_t>(std::popcount(start_[w]));
  }
  CTXALLOC_INVARIANT(used == count_ - free_, "region_source: ", used,
                     " granules marked used, the free count says ", count_ - free_);
  CTXALLOC_INVARIANT(pieces == obtains_.get() - releases_.get(), "region_source: ", pieces,
                     " pieces marked, the counters say ", obtains_.get() - releases_.get());
  CTXALLOC_INVARIANT(next_clear(used_, 0) >= first_free_ || free_ == 0, "region_source: granule ",
                     next_clear(used_, 0), " is free below the search hint ", first_free_);
  return CheckResult::ok();
}

}  // namespace ctxalloc
