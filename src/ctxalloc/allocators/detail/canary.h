// Canaries for checked builds: bytes after the size a caller asked for, in the slack the
// allocator had anyway (a size class's tail, a tree block's last granule), filled with a
// pattern when the block is handed out and compared when it comes back. A mismatch is
// a write past the end of the block (Misuse::overflow). The pattern depends on the
// address, so an overrun that writes one value everywhere (zeros, a memset) cannot
// match it. Cost: a fill and a compare of the slack bytes, in checked builds only.
//
// Opt-in (CTXALLOC_CANARY=1, read when an allocator is built): a canary takes bytes the
// caller would otherwise be told are usable (Block::size, allocated_size,
// malloc_usable_size shrink to the size asked for), and callers may rely on the usable
// size they were told, so turning canaries on changes a contract and is the user's call.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctxalloc::detail {

/// Whether allocators built now put canaries after blocks: checked builds with
/// CTXALLOC_CANARY=1 in the environment, or while a test asks for them. Reads no memory
/// it allocates (getenv), so an allocator may ask from inside malloc.
bool canaries_requested() noexcept;
/// Test hook for canaries_requested(); affects allocators constructed afterwards.
void set_canaries_for_testing(bool on) noexcept;

/// The canary byte at address `at`.
inline std::uint8_t canary_byte(const void* at) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(at);
  return static_cast<std::uint8_t>(0xA7 ^ a ^ (a >> 8) ^ (a >> 16));
}

/// Fills [from, to) with the canary.
inline void write_canary(std::byte* from, const std::byte* to) noexcept {
  for (std::byte* p = from; p < to; ++p)
    *reinterpret_cast<std::uint8_t*>(p) = canary_byte(p);
}

/// Whether [from, to) still holds the canary.
inline bool canary_intact(const std::byte* from, const std::byte* to) noexcept {
  for (const std::byte* p = from; p < to; ++p) {
    if (*reinterpret_cast<const std::uint8_t*>(p) != canary_byte(p)) return false;
  }
  return true;
}

/// A 16-bit record of a block's slack (bytes between the size asked for and the block's
/// end), stored in the block's last two bytes and keyed with the canary there, so that
/// an overrun that reaches it garbles it: decode() then gives a value out of range.
inline void store_slack16(std::byte* block_end, std::size_t slack) noexcept {
  const std::uint16_t key = static_cast<std::uint16_t>(
      canary_byte(block_end - 2) | (static_cast<unsigned>(canary_byte(block_end - 1)) << 8));
  const auto v = static_cast<std::uint16_t>(slack ^ key);
  *reinterpret_cast<std::uint8_t*>(block_end - 2) = static_cast<std::uint8_t>(v);
  *reinterpret_cast<std::uint8_t*>(block_end - 1) = static_cast<std::uint8_t>(v >> 8);
}

inline std::size_t load_slack16(const std::byte* block_end) noexcept {
  const std::uint16_t key = static_cast<std::uint16_t>(
      canary_byte(block_end - 2) | (static_cast<unsigned>(canary_byte(block_end - 1)) << 8));
  const unsigned v =
      *reinterpret_cast<const std::uint8_t*>(block_end - 2) |
      (static_cast<unsigned>(*reinterpret_cast<const std::uint8_t*>(block_end - 1)) << 8);
  return static_cast<std::uint16_t>(v ^ key);
}

}  // namespace ctxalloc::detail
