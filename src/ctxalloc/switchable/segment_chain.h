// SegmentChain: the segments a heap took from a SegmentSource for one of its parts,
// registered in the SegmentMap under one tag and linked through a small header at the
// start of each chunk (the part's region follows it). Destroying the chain gives every
// chunk back, so a heap declares its chain before the allocator living in the chunks:
// members are destroyed in reverse order, and the allocator must go first.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/check.h"
#include "ctxalloc/core/layout.h"
#include "ctxalloc/core/segment_map.h"
#include "ctxalloc/switchable/segment_source.h"

namespace ctxalloc {

class SegmentChain {
 public:
  /// Bytes at the start of every chunk taken by the chain's header.
  static constexpr std::size_t kHeader = 64;

  SegmentChain(SegmentSource& source, const OwnerTag* tag) noexcept : source_(&source), tag_(tag) {}
  ~SegmentChain();
  SegmentChain(const SegmentChain&) = delete;
  SegmentChain& operator=(const SegmentChain&) = delete;

  /// Takes `segments` contiguous segments (from `from`, or the chain's own source),
  /// registers them and returns the region after the header; a null Block when the
  /// source refuses. Each chunk goes back to the source it came from.
  Block add(std::size_t segments = 1, SegmentSource* from = nullptr) noexcept;
  /// Unregisters and gives back the chunk whose region add() returned.
  void remove(Block region) noexcept;

  std::size_t count() const noexcept { return count_; }
  const OwnerTag* tag() const noexcept { return tag_; }

  /// The source the chunk holding p came from, for chains whose chunks are one segment
  /// each (the chunk header is then found by masking p). p must lie in such a chunk.
  static SegmentSource* source_of_single(const void* p) noexcept {
    const auto base = reinterpret_cast<std::uintptr_t>(p) & ~(SegmentMap::kSegmentSize - 1);
    return reinterpret_cast<const Chunk*>(base)->source;
  }

  /// Checks the list links and that every segment of every chunk is registered to tag.
  /// `region_ok(region)` checks what the owning part knows of each region.
  template <class F>
  CheckResult check(const char* who, F&& region_ok) const {
    std::size_t n = 0;
    for (const Chunk* c = head_; c != nullptr; c = c->next) {
      CTXALLOC_INVARIANT(++n <= count_, who, ": chunk list longer than ", count_);
      CTXALLOC_INVARIANT(c->next == nullptr || c->next->prev == c, who, ": chunk ", c,
                         " badly linked");
      CTXALLOC_INVARIANT(
          c->bytes % SegmentMap::kSegmentSize == 0 && is_aligned(c, SegmentMap::kSegmentSize), who,
          ": chunk ", c, " misaligned or of ", c->bytes, " bytes");
      for (std::size_t off = 0; off < c->bytes; off += SegmentMap::kSegmentSize) {
        CTXALLOC_INVARIANT(SegmentMap::lookup(reinterpret_cast<const std::byte*>(c) + off) == tag_,
                           who, ": chunk ", c, " not registered at offset ", off);
      }
      CTXALLOC_INVARIANT(region_ok(region_of(c)), who, ": chunk ", c,
                         " is not a region of its allocator");
    }
    CTXALLOC_INVARIANT(n == count_, who, ": ", n, " chunks listed, ", count_, " counted");
    return CheckResult::ok();
  }

 private:
  template <class>
  friend struct TestPeer;

  struct Chunk {
    Chunk* next;
    Chunk* prev;
    std::size_t bytes;
    SegmentSource* source;
  };
  static Block region_of(const Chunk* c) noexcept {
    auto* base = reinterpret_cast<std::byte*>(const_cast<Chunk*>(c));
    return Block{base + kHeader, c->bytes - kHeader};
  }

  SegmentSource* source_;
  const OwnerTag* tag_;
  Chunk* head_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace ctxalloc
