// Layout: what a caller asks for (size and alignment). Block: what it gets back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "ctxalloc/core/bits.h"

namespace ctxalloc {

/// The alignment used when the caller does not say (that of malloc).
inline constexpr std::size_t kDefaultAlign = alignof(std::max_align_t);

/// The largest alignment a Layout may carry. Larger ones are refused by Layout::make.
inline constexpr std::size_t kMaxAlign = std::size_t{1} << 30;

/// Size and alignment of a request. `align` is a power of two in [1, kMaxAlign]: the
/// constructor trusts its caller (as std::pmr does); untrusted input goes through make().
struct Layout {
  std::size_t size = 0;
  std::size_t align = kDefaultAlign;

  constexpr Layout() noexcept = default;
  constexpr Layout(std::size_t size_, std::size_t align_ = kDefaultAlign) noexcept
      : size(size_), align(align_) {}

  /// A validated layout, or nothing when align is not a power of two or is too large.
  static constexpr std::optional<Layout> make(std::size_t size, std::size_t align) noexcept {
    if (!is_pow2(align) || align > kMaxAlign) return std::nullopt;
    return Layout{size, align};
  }

  template <class T>
  static constexpr Layout of(std::size_t count = 1) noexcept {
    return Layout{sizeof(T) * count, alignof(T)};
  }

  constexpr bool valid() const noexcept { return is_pow2(align) && align <= kMaxAlign; }
  friend constexpr bool operator==(const Layout&, const Layout&) = default;
};

/// Memory handed out: where it starts and how many bytes the caller may use (at least
/// the size asked for). A null ptr means the request failed.
struct Block {
  std::byte* ptr = nullptr;
  std::size_t size = 0;

  constexpr explicit operator bool() const noexcept { return ptr != nullptr; }
  constexpr std::byte* end() const noexcept { return ptr + size; }
  friend constexpr bool operator==(const Block&, const Block&) = default;
};

/// Every address below this is never mapped (Linux's default vm.mmap_min_addr), so a
/// pointer here can never be a real block: zero-size requests get one as a sentinel.
inline constexpr std::size_t kSentinelLimit = std::size_t{1} << 16;

/// The answer to a zero-size request with this alignment: a non-null pointer that honours
/// the alignment and is never a real block. Freeing it is a no-op everywhere.
/// Alignments at or above kSentinelLimit get a real one-byte block instead (see docs).
inline Block zero_size_block(std::size_t align) noexcept {
  return Block{reinterpret_cast<std::byte*>(align), 0};
}

/// True for the pointers zero_size_block() hands out.
inline bool is_zero_size_sentinel(const void* p) noexcept {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  return v != 0 && v < kSentinelLimit;
}

/// Whether a zero-size request with this alignment is answered by the sentinel.
constexpr bool zero_size_uses_sentinel(std::size_t align) noexcept {
  return align < kSentinelLimit;
}

/// The start every allocator's allocate slow path shares. An invalid layout is misuse:
/// `refuse_invalid()` counts and reports it and its Block (null) is the answer. A zero size
/// whose alignment the sentinel honours is answered with zero_size_block(); any other zero
/// size becomes 1 (no sentinel address has that alignment: a real block, docs/concepts.md).
/// Returns the answer, or nullopt with `layout` ready to serve (size >= 1).
template <class F>
inline std::optional<Block> allocate_prologue(Layout& layout, F&& refuse_invalid) noexcept {
  if (!layout.valid()) return refuse_invalid();
  if (layout.size == 0) {
    if (zero_size_uses_sentinel(layout.align)) return zero_size_block(layout.align);
    layout.size = 1;
  }
  return std::nullopt;
}

/// Whether a block handed back with alignment `align` (the one asked for, per the
/// Allocator concept) cannot have been allocated with it: p is not aligned to it. An
/// `align` of 0 or 1 means "not known". Checked builds report it as wrong_alignment;
/// it cannot catch an alignment smaller than the one asked for, or one p meets by chance.
inline bool misaligned(const void* p, std::size_t align) noexcept {
  return (reinterpret_cast<std::uintptr_t>(p) & (align - 1)) != 0 && align > 1;
}

}  // namespace ctxalloc
