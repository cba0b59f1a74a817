// The owners of the switchable layer's segments and what to do with their blocks.
//
// Every segment ctxalloc hands out is registered in the SegmentMap with an OwnerTag whose
// kind says what owns it. The switchable layer's slow paths (deallocate, usable_size,
// reallocate, and a thread heap draining remote frees) act on a block through the row of
// its kind in one table (owner.cc): a new kind is a new row, not a case in each slow path.
// Each row is defined beside the owner whose internals it uses (thread_heap.cc,
// global_heap.cc, context.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/core/layout.h"
#include "ctxalloc/core/segment_map.h"

namespace ctxalloc {

namespace owner_kind {
// size_class (allocators/size_class_allocator.h): a thread heap's small-object front.
inline constexpr OwnerKind tree{kFirstAbove + 0};           ///< a thread heap's TreeAllocator
inline constexpr OwnerKind context_arena{kFirstAbove + 1};  ///< fixed contexts' blocks
inline constexpr OwnerKind spill{kFirstAbove + 2};          ///< blocks spilled out of a context
inline constexpr OwnerKind global_heap{kFirstAbove + 3};    ///< the lockable global heap
inline constexpr OwnerKind large{kFirstAbove + 4};          ///< one mapping per block (global heap)
/// A caller-supplied region: no owner of the switchable layer, so its blocks are
/// foreign to it (freeing one is misuse).
inline constexpr OwnerKind region{kFirstAbove + 5};
inline constexpr OwnerKind flow_chunk{kFirstAbove + 6};  ///< growing contexts' chunks
inline constexpr std::uint8_t kCount = kFirstAbove + 7;  ///< kinds in the owner table
}  // namespace owner_kind

namespace detail {

/// What the switchable layer does with a block of one owner kind. tag is the block's
/// SegmentMap entry (of that kind); every function is noexcept and reports misuse itself.
struct OwnerOps {
  /// Frees p from any thread: at once when it is the calling thread's block, else batched
  /// to the owning thread. size: the caller's size (a sized free), or 0.
  void (*free)(void* p, std::size_t size, const OwnerTag* tag) noexcept;
  /// Frees p on the thread that owns it: the owner draining a remote free.
  void (*free_drained)(void* p, const OwnerTag* tag) noexcept;
  /// Usable bytes of the live block at p, or 0 (not live, not a block start).
  std::size_t (*usable_size)(const void* p, const OwnerTag* tag) noexcept;
  /// Resizes p to layout keeping its contents, moving it when needed (reallocate());
  /// null on failure, p then intact.
  void* (*reallocate)(void* p, const OwnerTag* tag, Layout layout) noexcept;
};

/// The rows, one per kind, indexed by the kind's value; kinds past the table (nobody
/// registers them) get the row of a foreign pointer.
extern const OwnerOps* const kOwnerTable[owner_kind::kCount];
extern const OwnerOps kForeignOwner;

inline const OwnerOps& owner_ops(const OwnerTag* tag) noexcept {
  const auto k = static_cast<std::uint8_t>(tag->kind);
  return k < owner_kind::kCount ? *kOwnerTable[k] : kForeignOwner;
}

/// reallocate() of a block the calling thread cannot resize where it is (another
/// thread's): a new block from the current allocator, the contents copied, p freed.
void* reallocate_by_moving(void* p, const OwnerTag* tag, Layout layout) noexcept;

}  // namespace detail
}  // namespace ctxalloc
