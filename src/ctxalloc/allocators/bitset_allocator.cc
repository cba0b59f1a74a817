// The bit-set allocator's slow paths: the region's layout, the search beyond the hint
// word, long and aligned runs, resizing, misuse and the invariant walk. The fast paths
// (a run inside the hint word, a free inside one word) are inline in the header.
#include "ctxalloc/allocators/bitset_allocator.h"

#include <bit>
#include <cstring>

#include "ctxalloc/allocators/detail/bitset_search.h"

namespace ctxalloc {
namespace {

using detail::kWordBits;

// Where the bit sets and the blocks of a region go.
struct Geometry {
  std::uint64_t* words = nullptr;  // 2 * nwords words: the free set, then the run-start set
  std::size_t nwords = 0;
  std::byte* blocks = nullptr;
  std::size_t nblocks = 0;
};

// Places n blocks in [begin, end): the bit sets at the first 8-byte boundary, n / 64 + 1
// words each (the extra bits past block n - 1 are sentinels), then the blocks at the
// next multiple of bs. False when they do not fit. Never overflows: n is bounded by the
// region's size divided by bs >= 8.
bool place(std::uintptr_t begin, std::uintptr_t end, std::size_t bs, std::size_t n,
           Geometry* g) noexcept {
  const std::uintptr_t meta = align_up(begin, 8);
  const std::size_t nwords = n / kWordBits + 1;
  if (meta > end || (end - meta) / 16 < nwords) return false;
  const std::uintptr_t meta_end = meta + 16 * nwords;
  const std::uintptr_t blocks = align_up(meta_end, bs);
  if (blocks < meta_end || blocks > end || (end - blocks) / bs < n) return false;
  g->words = reinterpret_cast<std::uint64_t*>(meta);
  g->nwords = nwords;
  g->blocks = reinterpret_cast<std::byte*>(blocks);
  g->nblocks = n;
  return true;
}

// The largest number of blocks the region holds, and where everything goes.
BitSetAllocator::ConfigError plan(Block region, std::size_t bs, Geometry* g) noexcept {
  using E = BitSetAllocator::ConfigError;
  if (!is_pow2(bs)) return E::block_size_not_pow2;
  if (bs < BitSetAllocator::kMinBlockSize) return E::block_size_too_small;
  const auto begin = reinterpret_cast<std::uintptr_t>(region.ptr);
  if (region.ptr == nullptr || region.size > UINTPTR_MAX - begin) return E::region_too_small;
  const std::uintptr_t end = begin + region.size;
  const std::uintptr_t meta = align_up(begin, 8);
  if (meta >= end || end - meta < 16 + bs) return E::region_too_small;
  const std::uintptr_t avail = end - meta;
  // Each block costs bs bytes plus 2 bits; 16 bytes of sentinel words and up to bs - 1
  // bytes of padding come on top. The estimate is within a few blocks of the answer.
  using u128 = unsigned __int128;
  auto n = static_cast<std::size_t>(u128{avail - 16 - (bs - 1)} * 4 / (u128{bs} * 4 + 1));
  while (n > 0 && !place(begin, end, bs, n, g))
    --n;
  while (place(begin, end, bs, n + 1, g))
    ++n;
  if (n == 0 || !place(begin, end, bs, n, g)) return E::region_too_small;
  return E::none;
}

}  // namespace

BitSetAllocator::ConfigError BitSetAllocator::validate(Block region,
                                                       std::size_t block_size) noexcept {
  Geometry g;
  return plan(region, block_size, &g);
}

const char* BitSetAllocator::to_string(ConfigError e) noexcept {
  switch (e) {
    case ConfigError::none:
      return "no error";
    case ConfigError::block_size_not_pow2:
      return "block size is not a power of two";
    case ConfigError::block_size_too_small:
      return "block size is below 8 bytes";
    case ConfigError::region_too_small:
      return "region holds no block beside its bit sets";
  }
  return "unknown error";
}

BitSetAllocator::BitSetAllocator(Block region, std::size_t block_size) noexcept
    : region_begin_(region.ptr), region_end_(region.ptr) {
  free_ = &empty_words_[0];
  start_ = &empty_words_[1];
  Geometry g;
  config_error_ = plan(region, block_size, &g);
  if (config_error_ != ConfigError::none) {
    misuse(Misuse::bad_argument, region.ptr, "construct");
    return;
  }
  region_end_ = region.ptr + region.size;
  free_ = g.words;
  start_ = g.words + g.nwords;
  nwords_ = g.nwords;
  blocks_ = g.blocks;
  nblocks_ = g.nblocks;
  block_size_ = block_size;
  block_mask_ = block_size - 1;
  shift_ = log2_floor(block_size);
  span_ = nblocks_ << shift_;
  const bool tool_paths = detail::pool_slow_paths();
  fast_align_ = tool_paths ? 0 : block_size_;
  fast_span_ = tool_paths ? 0 : span_;
  // Every block free; the bits past the last block are "not free" and "run start", so a
  // search never runs past the end and a run's length is always bounded within the set.
  std::memset(free_, 0, 2 * nwords_ * sizeof(std::uint64_t));
  detail::set_range(free_, 0, nblocks_);
  detail::set_range(start_, nblocks_, nwords_ * kWordBits - nblocks_);
  detail::poison(blocks_, span_);
}

BitSetAllocator::~BitSetAllocator() {
  detail::unpoison(blocks_, span_);
}

inline void BitSetAllocator::take_run(std::size_t i, std::size_t k) noexcept {
  const std::size_t w = i / kWordBits;
  const unsigned b = static_cast<unsigned>(i % kWordBits);
  if (k <= kWordBits) {  // at most two words: no loop
    const std::uint64_t m = detail::ones(static_cast<unsigned>(k));
    free_[w] &= ~(m << b);
    if (b + k > kWordBits) free_[w + 1] &= ~(m >> (kWordBits - b));
  } else {
    detail::clear_range(free_, i, k);
  }
  start_[w] |= std::uint64_t{1} << b;
}

inline Block BitSetAllocator::take(std::size_t i, std::size_t k) noexcept {
  take_run(i, k);
  hint_ = (i + k - 1) / kWordBits;
  note_taken(k);
  return handed_out(blocks_ + (i << shift_), k << shift_);
}

Block BitSetAllocator::allocate_slow(Layout layout) noexcept {
  if (auto answer = allocate_prologue(layout, [&] { return bad_argument(nullptr, "allocate"); }))
    return *answer;
  if (layout.size > span_) return refuse();  // also every size near SIZE_MAX
  const std::size_t k = ((layout.size - 1) >> shift_) + 1;
  const std::size_t i = find_run(k, layout.align);
  if (i == npos) return refuse();
  return take(i, k);
}

Block BitSetAllocator::allocate_short(unsigned k) noexcept {
  if (k > free_block_count()) return refuse();  // exhaustion costs no search
  const std::size_t hint = hint_;
  // The hint word holds no run of k (the caller looked), but the free stretch at its top
  // may go on into the next word: carry it. Then wrap around once.
  const std::size_t carry = detail::leading_ones(free_[hint]);
  std::size_t i = detail::find_short_run(free_, nwords_, hint + 1, nwords_, k, carry);
  if (i == npos) i = detail::find_short_run(free_, nwords_, 0, hint, k);
  if (i == npos) return refuse();
  return take(i, k);
}

std::size_t BitSetAllocator::find_run(std::size_t k, std::size_t align) const noexcept {
  if (k > free_block_count()) return npos;
  // Alignment in blocks, and the block indices it allows: i with
  // (blocks_ + i * block_size) % align == 0, i.e. i % period == phase.
  const std::size_t period = align > block_size_ ? align >> shift_ : 1;
  const std::size_t phase =
      (0 - (reinterpret_cast<std::uintptr_t>(blocks_) >> shift_)) & (period - 1);
  const std::size_t hint = hint_;
  if (k <= kWordBits && period <= kWordBits) {
    const auto kk = static_cast<unsigned>(k);
    std::size_t i =
        detail::find_aligned_short_run(free_, nwords_, hint, nwords_, kk, period, phase);
    if (i == npos) i = detail::find_aligned_short_run(free_, nwords_, 0, hint, kk, period, phase);
    return i;
  }
  const std::size_t hint_block = hint * kWordBits;
  std::size_t i = detail::find_long_run(free_, nwords_, hint_block, nblocks_, k, period, phase);
  if (i == npos) i = detail::find_long_run(free_, nwords_, 0, hint_block, k, period, phase);
  return i;
}

inline void BitSetAllocator::release_run(std::size_t i, std::size_t len) noexcept {
  detail::set_range(free_, i, len);
  start_[i / kWordBits] &= ~(std::uint64_t{1} << (i % kWordBits));
  note_released(len);
  hint_ = rehint(i / kWordBits);
  detail::poison(blocks_ + (i << shift_), len << shift_);
}

std::size_t BitSetAllocator::live_run(Block block, const char* op, bool freeing,
                                      std::size_t* len) noexcept {
  const std::uintptr_t off =
      reinterpret_cast<std::uintptr_t>(block.ptr) - reinterpret_cast<std::uintptr_t>(blocks_);
  if (off >= span_ || (off & block_mask_) != 0) {
    misuse(Misuse::foreign_pointer, block.ptr, op);
    return npos;
  }
  const std::size_t i = off >> shift_;
  if (!is_run_start(i)) {
    // A free block was freed before (or never handed out); a used one is inside a run.
    const bool is_free = ((free_[i / kWordBits] >> (i % kWordBits)) & 1) != 0;
    misuse(freeing && is_free ? Misuse::double_free : Misuse::foreign_pointer, block.ptr, op);
    return npos;
  }
  *len = run_length(i);
  if (!size_matches(block.size, *len)) {
    misuse(Misuse::wrong_size, block.ptr, op);
    return npos;
  }
  return i;
}

void BitSetAllocator::deallocate_slow(Block block, std::size_t align) noexcept {
  // A valid free the fast path left over: a run that goes on into the next word, any
  // free under the tool paths, and (checked builds) a live run freed with the wrong
  // alignment.
  const std::uintptr_t off =
      reinterpret_cast<std::uintptr_t>(block.ptr) - reinterpret_cast<std::uintptr_t>(blocks_);
  if (off < span_ && (off & block_mask_) == 0 && is_run_start(off >> shift_)) {
    const std::size_t i = off >> shift_;
    const std::size_t len = run_length(i);
    if (size_matches(block.size, len)) {
      if (CTXALLOC_CHECKS && misaligned(block.ptr, align)) {
        misuse(Misuse::wrong_alignment, block.ptr, "deallocate");
        return;
      }
      release_run(i, len);
      return;
    }
  }
  if (block.ptr == nullptr) return;  // like free(NULL)
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return;
  std::size_t len = 0;
  live_run(block, "deallocate", true, &len);  // reports the misuse; frees nothing
}

Block BitSetAllocator::grow(Block block, Layout new_layout, Move move) noexcept {
  if (!new_layout.valid() || new_layout.size < block.size) return bad_argument(block.ptr, "grow");
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) {
    if (move == Move::forbidden) return refuse();
    return allocate(new_layout);
  }
  std::size_t len = 0;
  const std::size_t i = live_run(block, "grow", false, &len);
  if (i == npos) return refuse();
  if (is_aligned(block.ptr, new_layout.align)) {
    if (new_layout.size <= len << shift_) {  // the run already holds it
      note_grown(len, len);
      return Block{block.ptr, len << shift_};
    }
    if (new_layout.size <= span_) {
      const std::size_t need = ((new_layout.size - 1) >> shift_) + 1;
      if (i + need <= nblocks_ && detail::find_clear(free_, nwords_, i + len) >= i + need) {
        detail::clear_range(free_, i + len, need - len);
        detail::unpoison_fresh(block.ptr + (len << shift_), (need - len) << shift_);
        note_grown(len, need);
        return Block{block.ptr, need << shift_};
      }
    }
  }
  if (move == Move::forbidden) return refuse();
  // The new run is secured before the old one is given up, so a failure (counted by
  // allocate) loses nothing. A block.size of 0 means "not known": keep the whole run.
  const Block fresh = allocate(new_layout);
  if (fresh.ptr == nullptr) return fresh;
  const std::size_t keep = block.size != 0 ? block.size : len << shift_;
  std::memcpy(fresh.ptr, block.ptr, keep < fresh.size ? keep : fresh.size);
  release_run(i, len);
  counters_.grows.add(1);
  return fresh;
}

Block BitSetAllocator::shrink(Block block, Layout new_layout, Move move) noexcept {
  if (!new_layout.valid() || new_layout.size > block.size) {
    return bad_argument(block.ptr, "shrink");
  }
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return block;
  std::size_t len = 0;
  const std::size_t i = live_run(block, "shrink", false, &len);
  if (i == npos) return refuse();
  if (new_layout.size == 0) {
    release_run(i, len);
    return allocate(new_layout);
  }
  if (!is_aligned(block.ptr, new_layout.align)) {
    if (move == Move::forbidden) return refuse();
    const Block fresh = allocate(new_layout);
    if (fresh.ptr == nullptr) return fresh;
    std::memcpy(fresh.ptr, block.ptr, new_layout.size);
    release_run(i, len);
    counters_.shrinks.add(1);
    return fresh;
  }
  const std::size_t need = ((new_layout.size - 1) >> shift_) + 1;
  if (need < len) {
    detail::set_range(free_, i + need, len - need);
    hint_ = (i + need) / kWordBits;
    detail::poison(block.ptr + (need << shift_), (len - need) << shift_);
  }
  note_shrunk(len, need);
  return Block{block.ptr, need << shift_};
}

Block BitSetAllocator::refuse() noexcept {
  counters_.failures.add(1);
  return Block{};
}

Block BitSetAllocator::bad_argument(const void* p, const char* op) noexcept {
  counters_.failures.add(1);
  misuse(Misuse::bad_argument, p, op);
  return Block{};
}

void BitSetAllocator::misuse(Misuse what, const void* p, const char* op) noexcept {
  counters_.misuses.add(1);
  report_misuse(what, "bitset", op, p);
}

CheckResult BitSetAllocator::check_invariants() const {
  const Stats s = counters_.snapshot();
  CTXALLOC_INVARIANT(s.deallocations <= s.allocations, "bitset: ", s.deallocations,
                     " deallocations exceed ", s.allocations, " allocations");
  if (config_error_ != ConfigError::none) {
    CTXALLOC_INVARIANT(nblocks_ == 0 && span_ == 0 && blocks_in_use_.get() == 0,
                       "bitset: unconfigured (", to_string(config_error_),
                       ") yet it manages blocks");
    return CheckResult::ok();
  }
  // Geometry: the bit sets at the start of the region, then the blocks, all inside it.
  CTXALLOC_INVARIANT(nwords_ == nblocks_ / kWordBits + 1, "bitset: ", nwords_,
                     " words per bit set for ", nblocks_, " blocks");
  CTXALLOC_INVARIANT(reinterpret_cast<const std::byte*>(free_) >= region_begin_ &&
                         start_ == free_ + nwords_ &&
                         reinterpret_cast<const std::byte*>(start_ + nwords_) <= blocks_,
                     "bitset: bit sets at ", free_, " not between region start ", region_begin_,
                     " and the blocks at ", blocks_);
  CTXALLOC_INVARIANT(is_aligned(blocks_, block_size_) && blocks_ + span_ <= region_end_ &&
                         span_ == nblocks_ << shift_,
                     "bitset: blocks [", blocks_, ", +", span_,
                     ") misaligned or past the region end ", region_end_);
  CTXALLOC_INVARIANT(hint_ < nwords_, "bitset: hint word ", hint_, " past the last word ",
                     nwords_ - 1);
  std::size_t used_blocks = 0;
  std::size_t runs = 0;
  std::uint64_t carry = 0;  // whether the block before this word is in use
  for (std::size_t w = 0; w < nwords_; ++w) {
    const std::size_t base = w * kWordBits;
    const std::size_t here = nblocks_ > base ? nblocks_ - base : 0;
    const std::uint64_t valid = low_bits(static_cast<unsigned>(here < 64 ? here : 64));
    const std::uint64_t f = free_[w];
    const std::uint64_t st = start_[w];
    CTXALLOC_INVARIANT((f & ~valid) == 0, "bitset: block ", base + lowest_bit_index(f & ~valid),
                       " past the last block ", nblocks_ - 1, " is marked free");
    CTXALLOC_INVARIANT((st | valid) == ~std::uint64_t{0}, "bitset: sentinel run-start bit ",
                       base + lowest_bit_index(~(st | valid)), " past the last block is clear");
    CTXALLOC_INVARIANT((st & f) == 0, "bitset: block ", base + lowest_bit_index(st & f),
                       " is free but marked as the start of a run");
    const std::uint64_t used = ~f & valid;
    const std::uint64_t orphans = used & ~(st & valid) & ~((used << 1) | carry);
    CTXALLOC_INVARIANT(orphans == 0, "bitset: block ", base + lowest_bit_index(orphans),
                       " is in use but belongs to no run (no run start before it)");
    used_blocks += static_cast<std::size_t>(std::popcount(used));
    runs += static_cast<std::size_t>(std::popcount(st & valid));
    carry = used >> 63;
  }
  const std::uint64_t counted = blocks_in_use_.get();
  CTXALLOC_INVARIANT(used_blocks == counted, "bitset: ", used_blocks,
                     " blocks in use but the counter says ", counted, " (", counted << shift_,
                     " bytes in use)");
  CTXALLOC_INVARIANT(runs == s.live_blocks(), "bitset: ", runs, " live runs but stats count ",
                     s.live_blocks(), " live blocks");
  CTXALLOC_INVARIANT(counted != 0 || hint_ == 0, "bitset: empty, but the search starts at word ",
                     hint_, " (an emptied allocator must be a fresh one)");
  const std::uint64_t peak = peak_blocks_.get();
  CTXALLOC_INVARIANT(peak >= counted && peak <= nblocks_, "bitset: peak ", peak,
                     " blocks outside [blocks in use ", counted, ", capacity ", nblocks_, "]");
  return CheckResult::ok();
}

}  // namespace ctxalloc
