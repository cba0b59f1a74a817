// SegmentMap: which allocator owns an address, in O(1), for any pointer whatsoever.
//
// ctxalloc hands out memory from 4 MiB-aligned *segments* (or from ranges made of whole
// segments). Every owner registers its segments here with an OwnerTag; free(p) and
// realloc(p) then find the owner with one shift and two loads, whatever thread or mode
// frees, without the caller passing a size, and a pointer that no segment covers (stack,
// another malloc, garbage) is recognised as foreign instead of being dereferenced.
//
// Storage: one pointer per 4 MiB of the 48-bit user address space (2^26 entries), in a
// MAP_NORESERVE mapping of 512 MiB of address space created on first registration.
// Untouched parts read as zero pages and cost no memory; each 4 KiB of the table that is
// touched covers 2 GiB of address space.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ctxalloc {

/// What kind of owner a segment has: a small number chosen by the layer that registers
/// the segment, which is also the layer that acts on it. Core stores it and never reads
/// it; the kinds are named where their owners are (owner_kind::size_class beside the
/// SizeClassAllocator, the rest with the switchable layer's owner table, which dispatches
/// frees, sizes and reallocations on it).
enum class OwnerKind : std::uint8_t {};

/// The record a segment's slots point to. Owners embed it (often at the segment's start)
/// and keep it alive while the segment is registered.
struct OwnerTag {
  OwnerKind kind;
  void* owner;  ///< the owning object; its type follows from kind
};

class SegmentMap {
 public:
  static constexpr unsigned kShift = 22;
  static constexpr std::size_t kSegmentSize = std::size_t{1} << kShift;  // 4 MiB
  static constexpr unsigned kAddressBits = 48;
  static constexpr std::size_t kEntries = std::size_t{1} << (kAddressBits - kShift);

  /// The owner of the segment holding p, or nullptr when no owner registered it.
  static const OwnerTag* lookup(const void* p) noexcept {
    const std::uintptr_t index = reinterpret_cast<std::uintptr_t>(p) >> kShift;
    // limit_ is 0 until the table exists, so this one compare also covers "no table".
    if (index >= limit_.load(std::memory_order_acquire)) return nullptr;
    return table_[index].load(std::memory_order_relaxed);
  }

  /// Registers [base, base + size) (both multiples of kSegmentSize) for tag. Fails
  /// (false) when a slot is already taken, the range is misaligned or out of the 48-bit
  /// space, or the table cannot be mapped; nothing is registered then.
  static bool register_range(const void* base, std::size_t size, const OwnerTag* tag) noexcept;

  /// Clears [base, base + size) where it is registered to tag.
  static void unregister_range(const void* base, std::size_t size, const OwnerTag* tag) noexcept;

  /// Slots registered now (for tests and stats).
  static std::size_t registered_slots() noexcept;

 private:
  static bool ensure_table() noexcept;

  static std::atomic<std::uintptr_t> limit_;
  static std::atomic<const OwnerTag*>* table_;
};

}  // namespace ctxalloc
