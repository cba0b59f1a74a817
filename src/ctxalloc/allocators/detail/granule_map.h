// The TreeAllocator's block map: one byte per granule (the smallest class, 32 B by
// default) of a region's usable area, kept in the region's own metadata area, never in
// the blocks. It answers, without the caller's help and without touching the block:
// where a live block starts and how long it is (free(p), unsized delete,
// allocated_size), whether the block before or after a freed one is free (coalescing),
// and whether a pointer is a live block's start at all (double free, interior pointer).
//
// A byte's top two bits say what it is:
//   00xxxxxx  interior: inside a block, at no boundary the allocator needs
//   01xxxxxx  continuation: 6 more bits of a long block's length (granules 1..5 of it)
//   10xxxxxx  head of a live block: the low 6 bits are its length in granules (1..63),
//             or 0 when the length (64 or more) is in the 5 continuation bytes after it
//   11xxxxxx  free-span boundary: kFreeHead (first granule), kFreeTail (last), or
//             kFreeSingle (both, a one-granule span)
// A live block of 64 granules or more has room in the map for its 5 continuation bytes,
// so the encoding never spills over into the next block. Continuation bytes left behind
// when a block shrinks or is freed are harmless: nothing but a head is ever taken for a
// head. Cost: 1/granule of the region (3.1% for 32 B granules); reading a length is one
// byte, or six for blocks of 2 KiB and more.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctxalloc::detail {

struct GranuleMap {
  static constexpr std::uint8_t kKindMask = 0xC0;
  static constexpr std::uint8_t kLiveHead = 0x80;
  static constexpr std::uint8_t kContinuation = 0x40;
  static constexpr std::uint8_t kFreeHead = 0xC1;
  static constexpr std::uint8_t kFreeTail = 0xC2;
  static constexpr std::uint8_t kFreeSingle = 0xC3;
  static constexpr std::uint8_t kInterior = 0x00;

  static constexpr std::size_t kShortMax = 63;  // lengths stored in the head byte itself
  static constexpr unsigned kLongBytes = 5;     // 5 x 6 bits
  /// The longest live block the map can describe, in granules (32 GiB at 32 B).
  static constexpr std::size_t kMaxLength = (std::size_t{1} << (6 * kLongBytes)) - 1;

  static constexpr bool is_live_head(std::uint8_t b) noexcept {
    return (b & kKindMask) == kLiveHead;
  }
  static constexpr bool is_free_head(std::uint8_t b) noexcept {
    return (b & kFreeHead) == kFreeHead;
  }
  static constexpr bool is_free_tail(std::uint8_t b) noexcept {
    return (b & kFreeTail) == kFreeTail;
  }
  static constexpr bool is_boundary(std::uint8_t b) noexcept { return (b & 0x80) != 0; }
  static constexpr bool is_continuation(std::uint8_t b) noexcept {
    return (b & kKindMask) == kContinuation;
  }

  /// Marks granule m[0] as the head of a live block of `len` granules (1..kMaxLength).
  static void set_live(std::uint8_t* m, std::size_t len) noexcept {
    if (len <= kShortMax) {
      m[0] = static_cast<std::uint8_t>(kLiveHead | len);
      return;
    }
    m[0] = kLiveHead;
    for (unsigned k = 0; k < kLongBytes; ++k)
      m[1 + k] = static_cast<std::uint8_t>(kContinuation | ((len >> (6 * k)) & 0x3F));
  }

  /// The length in granules of the live block whose head is m[0].
  static std::size_t live_length(const std::uint8_t* m) noexcept {
    const std::size_t low = m[0] & 0x3F;
    if (low != 0) [[likely]]
      return low;
    std::size_t len = 0;
    for (unsigned k = 0; k < kLongBytes; ++k)
      len |= static_cast<std::size_t>(m[1 + k] & 0x3F) << (6 * k);
    return len;
  }

  /// Marks granules [i, i + len) of map m as one free span (its two boundary bytes).
  static void set_free(std::uint8_t* m, std::size_t i, std::size_t len) noexcept {
    if (len == 1) {
      m[i] = kFreeSingle;
    } else {
      m[i] = kFreeHead;
      m[i + len - 1] = kFreeTail;
    }
  }
};

}  // namespace ctxalloc::detail
