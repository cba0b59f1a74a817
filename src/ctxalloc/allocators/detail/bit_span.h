// Operations on a bit set stored as an array of 64-bit words (bit i is bit i % 64 of
// word i / 64), for the bit-set allocator. Each scan looks at a whole word at a time and
// finds bits with tzcnt, so skipping 64 full or empty blocks costs one compare.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/bits.h"

#if defined(__BMI2__)
#include <immintrin.h>
#endif

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

/// Sets bits [pos, pos + count): one masked word when the range fits in it, else a
/// masked head, whole words stored, a masked tail.
inline void set_range(std::uint64_t* words, std::size_t pos, std::size_t count) noexcept;

/// Clears bits [pos, pos + count), the same way.
inline void clear_range(std::uint64_t* words, std::size_t pos, std::size_t count) noexcept;

/// Bit i of the result is set when bits [i, i + k) of x are all set (1 <= k <= 64); bits
/// past the top count as clear, so runs that leave the word are not reported. O(log k):
/// each step doubles the length the mask stands for (1, 2, 4, ...), and one last step
/// of k minus that power of two tops it up.
constexpr std::uint64_t run_starts(std::uint64_t x, unsigned k) noexcept {
  unsigned have = 1;
  for (; 2 * have <= k; have *= 2)
    x &= x >> have;
  if (have < k) x &= x >> (k - have);
  return x;
}

/// run_starts for k in [2, 64], unrolled: the steps 1, 2, 4, ... that k needs are
/// nested tests (predicted well, since k rarely changes), then one step tops up the rest.
/// Fewer instructions than the loop, which tests and branches once per step.
constexpr std::uint64_t run_starts_2_to_64(std::uint64_t x, unsigned k) noexcept {
  x &= x >> 1;
  unsigned have = 2;
  if (k >= 4) {
    x &= x >> 2;
    have = 4;
    if (k >= 8) {
      x &= x >> 4;
      have = 8;
      if (k >= 16) {
        x &= x >> 8;
        have = 16;
        if (k >= 32) {
          x &= x >> 16;
          have = 32;
          if (k >= 64) return x & (x >> 32);
        }
      }
    }
  }
  return x & (x >> (k - have));
}

/// Bits at the positions p of a word with p % period == phase (period a power of two
/// <= 64, phase < period): the block indices a request with a larger alignment may
/// start at, since every word begins at a multiple of 64. No division: it doubles.
constexpr std::uint64_t phase_mask(unsigned period, unsigned phase) noexcept {
  std::uint64_t m = 1;
  for (unsigned p = period; p < kWordBits; p *= 2)
    m |= m << p;
  return m << phase;
}

/// A mask of the k lowest bits, k in [0, 64]: one bzhi with BMI2 (which saturates at
/// 64), else a branch and a shift.
inline std::uint64_t ones(unsigned k) noexcept {
#if defined(__BMI2__)
  return _bzhi_u64(~std::uint64_t{0}, k);
#else
  return low_bits(k);
#endif
}

inline void set_range(std::uint64_t* words, std::size_t pos, std::size_t count) noexcept {
  std::size_t w = pos / kWordBits;
  const unsigned b = static_cast<unsigned>(pos % kWordBits);
  if (count <= kWordBits - b) {
    words[w] |= ones(static_cast<unsigned>(count)) << b;
    return;
  }
  words[w++] |= ~std::uint64_t{0} << b;
  for (count -= kWordBits - b; count >= kWordBits; count -= kWordBits)
    words[w++] = ~std::uint64_t{0};
  words[w] |= ones(static_cast<unsigned>(count));
}

inline void clear_range(std::uint64_t* words, std::size_t pos, std::size_t count) noexcept {
  std::size_t w = pos / kWordBits;
  const unsigned b = static_cast<unsigned>(pos % kWordBits);
  if (count <= kWordBits - b) {
    words[w] &= ~(ones(static_cast<unsigned>(count)) << b);
    return;
  }
  words[w++] &= ~(~std::uint64_t{0} << b);
  for (count -= kWordBits - b; count >= kWordBits; count -= kWordBits)
    words[w++] = 0;
  words[w] &= ~ones(static_cast<unsigned>(count));
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
