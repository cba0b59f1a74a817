// The size classes of a TreeAllocator. A TreeConfig can only be made valid: untrusted
// input (a configuration file) goes through TreeConfig::make, which refuses anything else.
#pragma once

#include <cstddef>
#include <optional>

#include "ctxalloc/core/bits.h"

namespace ctxalloc {

class TreeConfig {
 public:
  /// The smallest class that can hold a free span's node (tree hook + length).
  static constexpr std::size_t kMinGranule = 32;
  /// At most this many classes (max_class / min_class <= 2^(kMaxClasses - 1)).
  static constexpr unsigned kMaxClasses = 30;
  /// The largest max_class accepted (64 GiB).
  static constexpr std::size_t kMaxClassLimit = std::size_t{1} << 36;

  /// The crate's classes: 32 B, 64 B, ... 1 MiB (16 classes).
  constexpr TreeConfig() noexcept = default;

  /// Classes min_class, 2 * min_class, ... max_class; nothing when either is not a power
  /// of two, min_class < 32, max_class < min_class, max_class > 64 GiB or there would
  /// be more than kMaxClasses classes.
  static constexpr std::optional<TreeConfig> make(std::size_t min_class,
                                                  std::size_t max_class) noexcept {
    if (!is_pow2(min_class) || !is_pow2(max_class)) return std::nullopt;
    if (min_class < kMinGranule || max_class < min_class || max_class > kMaxClassLimit)
      return std::nullopt;
    if (log2_floor(max_class) - log2_floor(min_class) + 1 > kMaxClasses) return std::nullopt;
    return TreeConfig(min_class, max_class);
  }

  /// The smallest class, which is also the granule: every block is a multiple of it.
  constexpr std::size_t min_class() const noexcept { return min_; }
  /// The largest class: larger requests go to the oversize allocator.
  constexpr std::size_t max_class() const noexcept { return max_; }
  constexpr unsigned classes() const noexcept { return log2_floor(max_) - log2_floor(min_) + 1; }
  /// Whether a tree with these classes holds a block of size bytes aligned to align in
  /// its regions. A block is padded by its alignment, so an aligned request can exceed
  /// the largest class although its size alone does not (100 bytes aligned to 1 MiB).
  constexpr bool fits(std::size_t size, std::size_t align) const noexcept {
    if (size > max_) return false;
    const std::size_t pad = align > min_ ? align - min_ : 0;
    return pad <= max_ - ((size + min_ - 1) & ~(min_ - 1));
  }

 private:
  constexpr TreeConfig(std::size_t min_class, std::size_t max_class) noexcept
      : min_(min_class), max_(max_class) {}

  std::size_t min_ = 32;
  std::size_t max_ = std::size_t{1} << 20;
};

}  // namespace ctxalloc
