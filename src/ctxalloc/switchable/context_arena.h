// The arenas of context blocks a thread heap keeps: for each power-of-two block size
// from 4 KiB to 4 MiB, an ArenaSource whose slabs are whole segments registered in the
// SegmentMap under the arena's tag (kind context_arena). Blocks are aligned to their
// size, so the block -- and the Context header at its start -- holding any pointer is
// found by masking: free(p) of a context's block is O(1).
#pragma once

#include <cstddef>
#include <new>

#include "ctxalloc/core/segment_map.h"
#include "ctxalloc/sources/arena_source.h"
#include "ctxalloc/switchable/segment_source.h"

namespace ctxalloc {

class ThreadHeap;

/// An ArenaSource parent: segments from a SegmentSource, registered under one tag while
/// the arena holds them.
class ArenaSegments {
 public:
  ArenaSegments(SegmentSource* source, const OwnerTag* tag) noexcept : source_(source), tag_(tag) {}
  Block obtain(std::size_t size) noexcept { return obtain_aligned(size, SegmentMap::kSegmentSize); }
  /// size: whole segments; align: at most a segment.
  Block obtain_aligned(std::size_t size, std::size_t align) noexcept;
  void release(Block block) noexcept;

 private:
  SegmentSource* source_;
  const OwnerTag* tag_;
};

/// One arena of context blocks of one size, owned by a thread heap.
class ContextArena {
 public:
  ContextArena(SegmentSource& source, ThreadHeap* heap, std::size_t block_bytes) noexcept;
  ContextArena(const ContextArena&) = delete;
  ContextArena& operator=(const ContextArena&) = delete;

  Block obtain() noexcept { return arena_.obtain(); }
  void release(Block block) noexcept { arena_.release(block); }
  std::size_t block_bytes() const noexcept { return block_bytes_; }
  ThreadHeap* heap() const noexcept { return heap_; }
  const OwnerTag* tag() const noexcept { return &tag_; }
  /// Blocks handed out and not given back.
  std::size_t live_blocks() const noexcept { return arena_.stats().live_blocks(); }
  CheckResult check_invariants() const { return arena_.check_invariants(); }

 private:
  OwnerTag tag_;
  ThreadHeap* heap_;
  std::size_t block_bytes_;
  ArenaSource<ArenaSegments> arena_;
};

/// A thread heap's arenas, one per power-of-two size, made on first use.
class ContextArenas {
 public:
  static constexpr unsigned kMinShift = 12;  // 4 KiB
  static constexpr unsigned kMaxShift = 22;  // 4 MiB: one segment
  static constexpr unsigned kCount = kMaxShift - kMinShift + 1;

  ContextArenas() noexcept = default;
  ~ContextArenas();
  ContextArenas(const ContextArenas&) = delete;
  ContextArenas& operator=(const ContextArenas&) = delete;

  /// The arena of `bytes`-sized blocks (a power of two in [4 KiB, 4 MiB]), made if
  /// needed; null for any other size.
  ContextArena* get(std::size_t bytes, SegmentSource& source, ThreadHeap* heap) noexcept;
  /// Context blocks live in all arenas.
  std::size_t live_blocks() const noexcept;
  CheckResult check_invariants() const;

 private:
  struct alignas(ContextArena) Slot {
    unsigned char bytes[sizeof(ContextArena)];
  };
  ContextArena* at(unsigned i) const noexcept {
    return made_[i]
               ? std::launder(reinterpret_cast<ContextArena*>(const_cast<Slot&>(slots_[i]).bytes))
               : nullptr;
  }
  Slot slots_[kCount];
  bool made_[kCount] = {};
};

}  // namespace ctxalloc
