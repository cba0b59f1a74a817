// The run searches of the bit-set allocator, as functions over a free-block bit set (bit
// set = block free; the bits past the last block must be clear, so no run leaves the
// set). Each returns the first block index where k free blocks start inside the given
// window, or kNoRun. The allocator calls them from its hint word to the end and then,
// wrapping once, from the start to the hint word (next fit).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/allocators/detail/bit_span.h"

namespace ctxalloc::detail {

inline constexpr std::size_t kNoRun = ~std::size_t{0};

/// run_starts for k = 2^M + rest (rest < 2^M) with the steps unrolled: M shift-and steps
/// double the run length, one more adds rest (a no-op when rest is 0).
template <unsigned M>
constexpr std::uint64_t run_starts_unrolled(std::uint64_t x, unsigned rest) noexcept {
  for (unsigned j = 0; j < M; ++j)
    x &= x >> (1U << j);
  return x & (x >> rest);
}

/// k <= 64 blocks at any index, starting in words [from_word, end_word), where `carry`
/// free blocks end at the top of the word before from_word (and count as starting in
/// the window). Per word: one test for the stretch carried over from the previous word
/// (or starting at bit 0), M + 1 shift-and steps for runs inside the word, and the free
/// stretch at its top (lzcnt) to carry on. Unrolled per M = log2(k), so a word costs
/// straight-line shifts and ands, no inner loop.
template <unsigned M>
std::size_t scan_short_runs(const std::uint64_t* words, std::size_t nwords, std::size_t from_word,
                            std::size_t end_word, unsigned k, std::size_t carry = 0) noexcept {
  const unsigned rest = k - (1U << M);
  for (std::size_t w = from_word; w < end_word; ++w) {
    const std::uint64_t x = words[w];
    // With carry == 0 this finds a run at bit 0, which the steps below would also find.
    if (carry + trailing_ones(x) >= k) return w * kWordBits - carry;
    const std::uint64_t y = run_starts_unrolled<M>(x, rest);
    if (y != 0) return w * kWordBits + lowest_bit_index(y);
    carry = leading_ones(x);
  }
  // A stretch from the last word of the window may go on past it.
  if (carry != 0 && end_word < nwords && carry + trailing_ones(words[end_word]) >= k)
    return end_word * kWordBits - carry;
  return kNoRun;
}

/// scan_short_runs for any k in [1, 64]: one switch picks the unrolled loop.
inline std::size_t find_short_run(const std::uint64_t* words, std::size_t nwords,
                                  std::size_t from_word, std::size_t end_word, unsigned k,
                                  std::size_t carry = 0) noexcept {
  switch (log2_floor(k)) {
    case 0:
      return scan_short_runs<0>(words, nwords, from_word, end_word, k, carry);
    case 1:
      return scan_short_runs<1>(words, nwords, from_word, end_word, k, carry);
    case 2:
      return scan_short_runs<2>(words, nwords, from_word, end_word, k, carry);
    case 3:
      return scan_short_runs<3>(words, nwords, from_word, end_word, k, carry);
    case 4:
      return scan_short_runs<4>(words, nwords, from_word, end_word, k, carry);
    case 5:
      return scan_short_runs<5>(words, nwords, from_word, end_word, k, carry);
    default:
      return scan_short_runs<6>(words, nwords, from_word, end_word, k, carry);
  }
}

/// k <= 64 blocks starting in words [from_word, end_word) at an index i with
/// i % period == phase (period a power of two <= 64): the unaligned scan with a mask of
/// the allowed starts, and stretches carried across words until they reach one.
inline std::size_t find_aligned_short_run(const std::uint64_t* words, std::size_t nwords,
                                          std::size_t from_word, std::size_t end_word, unsigned k,
                                          std::size_t period, std::size_t phase) noexcept {
  const std::uint64_t allowed =
      phase_mask(static_cast<unsigned>(period), static_cast<unsigned>(phase));
  std::size_t carry = 0;
  for (std::size_t w = from_word;; ++w) {
    const std::uint64_t x = w < nwords ? words[w] : 0;
    if (carry != 0) {
      // A stretch that began in earlier words (at or after from_word): its first
      // allowed start is its best one.
      const std::size_t base = w * kWordBits;
      const std::size_t stretch = base - carry;
      const std::size_t c = stretch + ((phase - stretch) & (period - 1));
      if (c < end_word * kWordBits && c + k <= base + trailing_ones(x)) return c;
    }
    if (w >= end_word) return kNoRun;  // the check above covered the last word's stretch
    const std::uint64_t y = run_starts(x, k) & allowed;
    if (y != 0) return w * kWordBits + lowest_bit_index(y);
    carry = x == ~std::uint64_t{0} ? carry + kWordBits : leading_ones(x);
  }
}

/// Any k and any period (a power of two), starting in [from, limit): from one free
/// stretch to the next with tzcnt, 64 blocks per step over full or empty words. Used for
/// runs over 64 blocks and alignments over 64 blocks, where candidates are few.
inline std::size_t find_long_run(const std::uint64_t* words, std::size_t nwords, std::size_t from,
                                 std::size_t limit, std::size_t k, std::size_t period,
                                 std::size_t phase) noexcept {
  std::size_t pos = from;
  for (;;) {
    const std::size_t s = find_set(words, nwords, pos);
    if (s >= limit) return kNoRun;
    const std::size_t c = s + ((phase - s) & (period - 1));
    if (c >= limit) return kNoRun;
    // The stretch holding c ends at e (e == c when c is past the stretch); the clear
    // bits past the last block end every stretch.
    const std::size_t e = find_clear(words, nwords, c);
    if (e - c >= k) return c;
    pos = e;
  }
}

}  // namespace ctxalloc::detail
