// Bit tricks used by every allocator. With -mbmi/-mlzcnt (meson option `bmi`) the
// compiler lowers these to tzcnt, lzcnt, blsi, blsr and blsmsk: one instruction each.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace ctxalloc {

/// True when x is a power of two (zero is not).
constexpr bool is_pow2(std::size_t x) noexcept {
  return x != 0 && (x & (x - 1)) == 0;
}

/// Bytes to add to addr to reach the next multiple of align (a power of two).
/// Never overflows: the result is below align.
constexpr std::size_t padding_for(std::uintptr_t addr, std::size_t align) noexcept {
  return static_cast<std::size_t>(-addr) & (align - 1);
}

/// x rounded up to a multiple of align (a power of two); false when that overflows.
constexpr bool align_up_checked(std::size_t x, std::size_t align, std::size_t* out) noexcept {
  const std::size_t pad = padding_for(x, align);
  if (x > SIZE_MAX - pad) return false;
  *out = x + pad;
  return true;
}

/// x rounded up to a multiple of align; the caller guarantees no overflow.
constexpr std::size_t align_up(std::size_t x, std::size_t align) noexcept {
  return (x + align - 1) & ~(align - 1);
}

/// x rounded down to a multiple of align (a power of two).
constexpr std::size_t align_down(std::size_t x, std::size_t align) noexcept {
  return x & ~(align - 1);
}

/// Pointer forms of the above.
inline bool is_aligned(const void* p, std::size_t align) noexcept {
  return (reinterpret_cast<std::uintptr_t>(p) & (align - 1)) == 0;
}

/// Index of the lowest set bit (tzcnt); x must not be zero.
constexpr unsigned lowest_bit_index(std::uint64_t x) noexcept {
  return static_cast<unsigned>(std::countr_zero(x));
}

/// Index of the highest set bit; x must not be zero.
constexpr unsigned highest_bit_index(std::uint64_t x) noexcept {
  return 63U - static_cast<unsigned>(std::countl_zero(x));
}

/// The lowest set bit alone (blsi): 0b10100 -> 0b00100.
constexpr std::uint64_t lowest_bit(std::uint64_t x) noexcept {
  return x & (0 - x);
}

/// x without its lowest set bit (blsr): 0b10100 -> 0b10000.
constexpr std::uint64_t clear_lowest_bit(std::uint64_t x) noexcept {
  return x & (x - 1);
}

/// Mask up to and including the lowest set bit (blsmsk): 0b10100 -> 0b00111.
constexpr std::uint64_t mask_through_lowest_bit(std::uint64_t x) noexcept {
  return x ^ (x - 1);
}

/// floor(log2(x)); x must not be zero.
constexpr unsigned log2_floor(std::size_t x) noexcept {
  return highest_bit_index(x);
}

/// ceil(log2(x)); x must not be zero.
constexpr unsigned log2_ceil(std::size_t x) noexcept {
  return x <= 1 ? 0 : highest_bit_index(x - 1) + 1;
}

/// A mask of the n lowest bits, for n in [0, 64].
constexpr std::uint64_t low_bits(unsigned n) noexcept {
  return n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
}

}  // namespace ctxalloc
