// BitSetAllocator: one region cut into blocks of one power-of-two size, with a bit per
// block kept at the start of the region itself. Allocation is a next-fit search over
// 64-bit words from a cached hint word, wrapping once; a request of k blocks takes a run
// of k free blocks, aligned as asked. The hint is the word where blocks were last taken
// or given back, so a freed run is found first, while its cache lines are still warm.
//
// Freeing needs no size from the caller: a second bit set marks the first block of each
// live run, so the run's length, double frees and pointers into the middle of a run all
// come from the bits. One owner thread; stats() may be read from any. docs/design.md
// describes the layout, docs/BENCHMARKS.md ("bitset") what the operations cost.
//
// Memory tools: free blocks are poisoned (AddressSanitizer) or marked no-access (valgrind's
// memcheck). Under memcheck every request takes the slow paths, which mark; elsewhere
// the fast paths pay nothing for it (their limits, fast_align_ and fast_span_).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/allocators/detail/bit_span.h"
#include "ctxalloc/config.h"
#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/poison.h"

namespace ctxalloc {

class BitSetAllocator {
 public:
  /// Why a region and block size cannot make an allocator (see validate()).
  enum class ConfigError : std::uint8_t {
    none,
    block_size_not_pow2,   ///< the block size is not a power of two
    block_size_too_small,  ///< below kMinBlockSize
    region_too_small,      ///< not even one block fits beside its bit sets (or a null region)
  };

  /// The smallest block: a block must be able to hold a pointer, and 8-byte granularity
  /// keeps AddressSanitizer's poisoning exact.
  static constexpr std::size_t kMinBlockSize = 8;

  /// Whether BitSetAllocator(region, block_size) would manage at least one block.
  static ConfigError validate(Block region, std::size_t block_size) noexcept;

  /// "block size is not a power of two", ...
  static const char* to_string(ConfigError e) noexcept;

  /// An allocator over [region.ptr, region.ptr + region.size), which it does not own.
  /// The two bit sets take the start of the region; the blocks follow, aligned to
  /// block_size, as many as fit. Precondition: validate(region, block_size) is
  /// ConfigError::none. Otherwise the constructor reports Misuse::bad_argument (which
  /// aborts in builds with checks) and the allocator manages nothing: every allocation
  /// fails and config_error() says why.
  BitSetAllocator(Block region, std::size_t block_size) noexcept;

  /// Un-poisons the blocks (AddressSanitizer builds) so the owner may reuse the region.
  ~BitSetAllocator();

  BitSetAllocator(const BitSetAllocator&) = delete;
  BitSetAllocator& operator=(const BitSetAllocator&) = delete;

  /// A run of ceil(size / block size) blocks aligned to layout.align; the reported size
  /// is the whole run. Fast paths, for at most the block's alignment, in the hint word:
  /// one block is tzcnt, blsr and blsi; a run of 2..64 blocks is log2(k) shift-and
  /// steps, a tzcnt and a mask. When the hint word has no room, the search goes on word
  /// by word (allocate_short); longer runs and larger alignments take the slow path.
  Block allocate(Layout layout) noexcept {
    if (CTXALLOC_CHECKS && !layout.valid()) return allocate_slow(layout);
    // Members are read into locals first: the bit-set stores below are 64-bit integers,
    // which the compiler must assume could alias the size_t members.
    const std::size_t w = hint_;
    std::uint64_t* const free = free_;
    const std::uint64_t x = free[w];
    if (layout.align <= fast_align_) [[likely]] {
      const unsigned shift = shift_;
      // Blocks beyond the first; size 0 wraps to a huge value and goes to the slow path.
      const std::size_t more = (layout.size - 1) >> shift;
      if (more == 0) {
        if (x != 0) [[likely]] {
          free[w] = clear_lowest_bit(x);
          start_[w] |= lowest_bit(x);
          note_taken(1);
          const std::size_t i = w * detail::kWordBits + lowest_bit_index(x);
          return handed_out_fast(blocks_ + (i << shift), block_size_);
        }
        return allocate_short(1);
      }
      if (more < detail::kWordBits) {
        const auto k = static_cast<unsigned>(more + 1);
        const std::uint64_t y = detail::run_starts_2_to_64(x, k);
        if (y != 0) [[likely]] {
          const unsigned b = lowest_bit_index(y);
          free[w] = x & ~(detail::ones(k) << b);
          start_[w] |= lowest_bit(y);
          note_taken(k);
          const std::size_t i = w * detail::kWordBits + b;
          return handed_out_fast(blocks_ + (i << shift), std::size_t{k} << shift);
        }
        return allocate_short(k);
      }
    }
    return allocate_slow(layout);
  }

  /// As allocate, and the whole reported size is zero (freed blocks keep old bytes).
  Block allocate_zeroed(Layout layout) noexcept {
    return detail::allocate_zeroed_by_fill(*this, layout);
  }

  /// Frees the run that starts at block.ptr. The run's length comes from the bit sets;
  /// block.size is only checked (any size from the one asked for to the one reported,
  /// or 0 for "not known", as free(p) needs). A double free, a pointer into the middle
  /// of a run or outside the blocks, and a size that does not match are reported as
  /// misuse and change nothing. Fast path: one run inside one word (one tzcnt).
  void deallocate(Block block, std::size_t align) noexcept {
    // Checked builds send a free with an alignment the block does not have to the slow
    // path, which tells it from a foreign pointer.
    if (CTXALLOC_CHECKS && misaligned(block.ptr, align)) return deallocate_slow(block, align);
    const unsigned shift = shift_;
    const std::uintptr_t off =
        reinterpret_cast<std::uintptr_t>(block.ptr) - reinterpret_cast<std::uintptr_t>(blocks_);
    const std::size_t i = off >> shift;
    const std::size_t w = i / detail::kWordBits;
    const unsigned b = static_cast<unsigned>(i % detail::kWordBits);
    // Outside the blocks or off a block boundary: the slow path sorts it out.
    if (off < fast_span_ && (off & block_mask_) == 0) [[likely]] {
      std::uint64_t* const free = free_;
      std::uint64_t* const start = start_;
      const std::uint64_t s = start[w];
      const std::uint64_t f = free[w];
      // The run ends before the next block that is free or starts a run; the sentinel
      // bits past the last block guarantee there is one. When it lies in this word, the
      // run's bits are blsmsk of what follows block i, and its length is one tzcnt.
      const std::uint64_t after = ((f | s) >> b) >> 1;
      const unsigned last = lowest_bit_index(after);  // the run's length - 1
      if (((s >> b) & 1) != 0 && after != 0 && ((block.size - 1) >> shift) == last) [[likely]] {
        free[w] = f | (mask_through_lowest_bit(after) << b);
        start[w] = s & ~(std::uint64_t{1} << b);
        note_released(last + 1);
        hint_ = rehint(w);  // the next search starts at this warm run
        detail::asan_poison(block.ptr, std::size_t{last + 1} << shift);
        return;
      }
    }
    deallocate_slow(block, align);
  }

  /// In place when the blocks after the run are free (or the run already holds
  /// new_layout.size); otherwise, with Move::allowed, a new run is secured first, the
  /// bytes copied, then the old run freed. On failure the block is untouched and live.
  Block grow(Block block, Layout new_layout, Move move) noexcept;

  /// Frees the tail blocks in place (always, unless new_layout.align is larger than the
  /// block's own alignment: then it moves, or fails under Move::forbidden). Shrinking
  /// to 0 frees the block and returns a zero-size block.
  Block shrink(Block block, Layout new_layout, Move move) noexcept;

  /// Whether p lies in the region (bit sets included: a pointer there is this
  /// allocator's to reject).
  bool contains(const void* p) const noexcept {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= region_begin_ && b < region_end_;
  }

  /// Bytes of the live run that starts at p (a multiple of the block size), or 0 when p
  /// does not start a live run: a freed block, a pointer into a run, a foreign pointer.
  /// Lets free(p) recover the size. Cost: a bit test and a tzcnt per word of the run.
  std::size_t allocated_size(const void* p) const noexcept {
    const std::uintptr_t off =
        reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(blocks_);
    if (off >= span_ || (off & block_mask_) != 0) return 0;
    const std::size_t i = off >> shift_;
    if (!is_run_start(i)) return 0;
    return run_length(i) << shift_;
  }

  std::size_t block_size() const noexcept { return block_size_; }
  /// Blocks the region holds after its bit sets: the exact capacity in blocks.
  std::size_t block_count() const noexcept { return nblocks_; }
  /// Blocks not in any live run.
  std::size_t free_block_count() const noexcept { return nblocks_ - blocks_in_use_.get(); }
  /// Where the blocks are: after the bit sets, aligned to the block size.
  Block block_area() const noexcept { return Block{blocks_, span_}; }
  /// The whole region, bit sets included.
  Block region() const noexcept {
    return Block{region_begin_, static_cast<std::size_t>(region_end_ - region_begin_)};
  }
  /// ConfigError::none unless the constructor was given a bad region or block size.
  ConfigError config_error() const noexcept { return config_error_; }

  /// bytes_in_use is exactly the blocks in live runs times the block size.
  Stats stats() const noexcept {
    Stats s = counters_.snapshot();
    s.bytes_in_use = blocks_in_use_.get() << shift_;
    s.peak_bytes = peak_blocks_.get() << shift_;
    s.capacity = span_;
    return s;
  }

  /// Walks both bit sets word by word: no block past the last is free, every run start
  /// is in use, every used block belongs to a run (a start before it with no free block
  /// between), and the blocks in use and the runs agree with the stats. Owner thread.
  CheckResult check_invariants() const;

 private:
  template <class>
  friend struct TestPeer;

  static constexpr std::size_t npos = ~std::size_t{0};

  [[gnu::noinline]] Block allocate_slow(Layout layout) noexcept;
  [[gnu::noinline]] void deallocate_slow(Block block, std::size_t align) noexcept;

  // A run of k <= 64 blocks at the block alignment, when the hint word has none: next fit
  // from the word after it (carrying the free stretch at its top), wrapping once.
  [[gnu::noinline]] Block allocate_short(unsigned k) noexcept;
  // The first block index where k free blocks aligned to `align` start, searching from
  // the hint word to the end and then, wrapping once, from the start up to the hint.
  std::size_t find_run(std::size_t k, std::size_t align) const noexcept;
  // Takes the run [i, i + k): bits, hint, counters.
  Block take(std::size_t i, std::size_t k) noexcept;

  // Marks [i, i + k) in use with a run start at i / frees a run.
  void take_run(std::size_t i, std::size_t k) noexcept;
  void release_run(std::size_t i, std::size_t len) noexcept;

  // The run starting at block.ptr and its length, or npos after reporting the misuse
  // (double free, foreign pointer, wrong size) under `op`'s name.
  std::size_t live_run(Block block, const char* op, bool freeing, std::size_t* len) noexcept;

  bool is_run_start(std::size_t i) const noexcept {
    return ((start_[i / detail::kWordBits] >> (i % detail::kWordBits)) & 1) != 0;
  }

  // Blocks from i (a run start) to the next block that is free or starts another run.
  std::size_t run_length(std::size_t i) const noexcept {
    std::size_t w = i / detail::kWordBits;
    const unsigned b = static_cast<unsigned>(i % detail::kWordBits);
    std::uint64_t x = ((free_[w] | start_[w]) >> b) >> 1;
    if (x != 0) return lowest_bit_index(x) + 1;
    std::size_t len = detail::kWordBits - b;
    while (++w < nwords_) {
      x = free_[w] | start_[w];
      if (x != 0) return len + lowest_bit_index(x);
      len += detail::kWordBits;
    }
    return len;  // unreachable while the sentinel bits hold (check_invariants)
  }

  // A caller's size fits a run of len blocks when it rounds up to exactly len blocks;
  // 0 stands for "not known".
  bool size_matches(std::size_t size, std::size_t len) const noexcept {
    return size == 0 || ((size - 1) >> shift_) == len - 1;
  }

  // The end of every successful allocation: on the fast paths (never taken under
  // memcheck) and on the others.
  static Block handed_out_fast(std::byte* p, std::size_t bytes) noexcept {
    if (p == nullptr) __builtin_unreachable();  // lets callers drop their null test
    detail::asan_unpoison(p, bytes);
    return Block{p, bytes};
  }
  static Block handed_out(std::byte* p, std::size_t bytes) noexcept {
    if (p == nullptr) __builtin_unreachable();
    detail::unpoison_fresh(p, bytes);
    return Block{p, bytes};
  }

  // Counters in blocks: one add each, no shift; stats() converts to bytes. The peak is
  // raised where blocks are taken, so it is exact.
  void note_taken(std::size_t blocks) noexcept {
    counters_.allocations.add(1);
    blocks_in_use_.add(blocks);
    peak_blocks_.raise_to(blocks_in_use_.get());
  }
  void note_released(std::size_t blocks) noexcept {
    counters_.deallocations.add(1);
    blocks_in_use_.sub(blocks);
  }
  // The hint after a free in word w: w, or word 0 once nothing is live. An emptied
  // allocator is then exactly a fresh one (all blocks free, hint 0); with the hint left
  // mid-set, next fit would start the next fill there and fragment an empty region (198
  // blocks held 65 runs of 3 instead of 66). Costs a compare and a cmov per free.
  std::size_t rehint(std::size_t w) const noexcept { return blocks_in_use_.get() != 0 ? w : 0; }
  void note_grown(std::size_t old_blocks, std::size_t new_blocks) noexcept {
    counters_.grows.add(1);
    blocks_in_use_.add(new_blocks - old_blocks);
    peak_blocks_.raise_to(blocks_in_use_.get());
  }
  void note_shrunk(std::size_t old_blocks, std::size_t new_blocks) noexcept {
    counters_.shrinks.add(1);
    blocks_in_use_.sub(old_blocks - new_blocks);
  }

  Block refuse() noexcept;
  Block bad_argument(const void* p, const char* op) noexcept;
  void misuse(Misuse what, const void* p, const char* op) noexcept;

  // Hot fields first: the fast paths read only these and the counters.
  std::size_t hint_ = 0;  // where the search starts: the last word taken or freed (0 when empty)
  std::uint64_t* free_ = nullptr;   // bit set: 1 = block free; 0 past the last block
  std::uint64_t* start_ = nullptr;  // bit set: 1 = first block of a live run; 1 past the last
  std::byte* blocks_ = nullptr;     // block 0, aligned to block_size_
  std::size_t span_ = 0;            // nblocks_ * block_size_
  std::size_t block_size_ = 0;      // 0 when unconfigured: no request takes the fast path
  std::size_t block_mask_ = ~std::size_t{0};  // block_size_ - 1: the offset inside a block
  // The fast paths' limits: block_size_ and span_, or 0 under the tool paths (memcheck,
  // or a test asking for them), so that every request reaches a slow path, which marks.
  std::size_t fast_align_ = 0;
  std::size_t fast_span_ = 0;
  unsigned shift_ = 0;       // log2(block_size_)
  std::size_t nblocks_ = 0;  // exact capacity in blocks
  std::size_t nwords_ = 1;   // words per bit set: nblocks_ / 64 + 1 (room for sentinels)
  std::byte* region_begin_ = nullptr;
  std::byte* region_end_ = nullptr;
  ConfigError config_error_ = ConfigError::none;
  std::uint64_t empty_words_[2] = {0, ~std::uint64_t{0}};  // the bit sets when unconfigured
  StatsCounters counters_;  // all but the byte counters, which come from the two below
  Counter blocks_in_use_;
  Counter peak_blocks_;
};

static_assert(Allocator<BitSetAllocator>);

}  // namespace ctxalloc
