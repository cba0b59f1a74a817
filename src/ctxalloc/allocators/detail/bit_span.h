// Operations on a bit set stored as an array of 64-bit words (bit i is bit i % 64 of
// word i / 64), for the bit-set allocator. Each scan looks at a whole word at a time and
// finds bits with tzcnt, so skipping 64 full or empty blocks costs one compare.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/bits.h"

namespace ctxalloc::detail {

inline constexpr std::size_t kWordBits = 64;

/// Index of the first set bit at or after pos, or nwords * 64 when there is none.
inline std::size_t find_set(const std::uint64_t* words, std::size_t nwords,
                            std::size_t pos) noexcept {
  std::size_t w = pos / kWordBits;
  if (w >= nwords) return nwords * kWordBits;
  std::uint64_t x = words[w] & (~std::uint64_t{0} << (pos % kWordBits));
  while (x == 0) {
    if (++w == nwords) return nwords * kWordBits;
    x = words[w];
  }
  return w * kWordBits + lowest_bit_index(x);
}

/// Index of the first clear bit at or after pos, or nwords * 64 when there is none.
inline std::size_t find_clear(const std::uint64_t* words, std::size_t nwords,
                              std::size_t pos) noexcept {
  std::size_t w = pos / kWordBits;
  if (w >= nwords) return nwords * kWordBits;
  std::uint64_t x = ~words[w] & (~std::uint64_t{0} << (pos % kWordBits));
  while (x == 0) {
    if (++w == nwords) return nwords * kWordBits;
    x = ~words[w];
  }
  return w * kWordBits + lowest_bit_index(x);
}

/// Sets bits [pos, pos + count). Whole words in the middle are stored, not masked.
inline void set_range(std::uint64_t* words, std::size_t pos, std::size_t count) noexcept {
  while (count != 0) {
    const unsigned b = static_cast<unsigned>(pos % kWordBits);
    const std::size_t here = count < kWordBits - b ? count : kWordBits - b;
    words[pos / kWordBits] |= low_bits(static_cast<unsigned>(here)) << b;
    pos += here;
    count -= here;
  }
}

/// Clears bits [pos, pos + count).
inline void clear_range(std::uint64_t* words, std::size_t pos, std::size_t count) noexcept {
  while (count != 0) {
    const unsigned b = static_cast<unsigned>(pos % kWordBits);
    const std::size_t here = count < kWordBits - b ? count : kWordBits - b;
    words[pos / kWordBits] &= ~(low_bits(static_cast<unsigned>(here)) << b);
    pos += here;
    count -= here;
  }
}

/// Bit i of the result is set when bits [i, i + k) of x are all set (1 <= k <= 64); bits
/// past the top count as clear, so runs that leave the word are not reported. O(log k):
/// each step doubles the length of the runs the mask stands for.
constexpr std::uint64_t run_starts(std::uint64_t x, unsigned k) noexcept {
  unsigned have = 1;
  while (have < k && x != 0) {
    const unsigned step = have < k - have ? have : k - have;
    x &= x >> step;
    have += step;
  }
  return x;
}

/// Bits at the positions p of a word with p % period == phase (period a power of two
/// <= 64, phase < period): the block indices a request with a larger alignment may
/// start at, since every word begins at a multiple of 64.
constexpr std::uint64_t phase_mask(unsigned period, unsigned phase) noexcept {
  return (~std::uint64_t{0} / low_bits(period)) << phase;
}

/// Length of the run of set bits at the bottom of x (0..64).
constexpr unsigned trailing_ones(std::uint64_t x) noexcept {
  return static_cast<unsigned>(std::countr_one(x));
}

/// Length of the run of set bits at the top of x (0..64).
constexpr unsigned leading_ones(std::uint64_t x) noexcept {
  return static_cast<unsigned>(std::countl_one(x));
}

}  // namespace ctxalloc::detail
