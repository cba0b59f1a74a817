// The TreeAllocator's placement, predicted from its specification (docs/design.md,
// TreeAllocator) for the randomized driver (random_driver.h): a Hooks type that checks
// every allocation and resize the driver makes. Shared by the tree allocator's tests.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ctxalloc/allocators/tree_allocator.h"
#include "random_driver.h"

namespace ctxalloc::testing {

// An oracle of the TreeAllocator's placement, written from its specification and sharing
// no code with it: it keeps its own address-ordered map of the live blocks of the region,
// derives the free spans as the gaps between them, and predicts for every request where
// the block must land (or that it must fail), and for every resize whether it is in place.
struct TreePlacementOracle : DefaultHooks<TreeAllocator> {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
  std::size_t granule = 32;
  std::size_t max_class = std::size_t{1} << 20;
  unsigned top = 15;
  std::map<std::uintptr_t, std::size_t> live;  // region blocks: start -> reported size
  std::uint64_t mismatches = 0;
  std::uint64_t oversize = 0;
  std::string first_mismatch;

  bool failure_allowed(const TreeAllocator&, const ReferenceModel&, Layout) const {
    return true;  // after_allocate checks every failure against the prediction
  }

  void note(const std::string& what) {
    if (mismatches++ == 0) first_mismatch = what;
  }

  bool in_region(const void* p) const {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return a >= begin && a < end;
  }

  unsigned class_of(std::size_t len) const {
    const unsigned k = static_cast<unsigned>(std::bit_width(len) - 1) -
                       static_cast<unsigned>(std::countr_zero(granule));
    return std::min(k, top);
  }

  static std::uintptr_t round_up(std::uintptr_t x, std::size_t a) { return (x + a - 1) / a * a; }

  bool served_by_region(Layout l) const {
    const std::size_t n = round_up(l.size, granule);
    const std::size_t pad = l.align > granule ? l.align - granule : 0;
    return l.size <= max_class && n + pad <= max_class;
  }

  // Where a region request must land: the best fit (shortest gap of at least size +
  // padding, the lowest-addressed of equal ones) among the gaps of the class below that
  // of size + padding, unless that is class 0; else the lowest gap of the first class at
  // or above it that has one; 0 when there is none.
  std::uintptr_t predict(Layout l) const {
    const std::size_t n = round_up(l.size, granule);
    const std::size_t need = n + (l.align > granule ? l.align - granule : 0);
    const unsigned c = static_cast<unsigned>(std::bit_width(need - 1)) -
                       static_cast<unsigned>(std::countr_zero(granule));
    std::vector<std::uintptr_t> lowest(top + 1, 0);
    std::uintptr_t best = 0;
    std::size_t best_len = 0;
    std::uintptr_t at = begin;
    auto gap = [&](std::uintptr_t from, std::uintptr_t to) {
      if (to <= from) return;
      const unsigned k = class_of(to - from);
      if (lowest[k] == 0) lowest[k] = from;
      if (c > 1 && k == c - 1 && to - from >= need && (best == 0 || to - from < best_len)) {
        best = from;
        best_len = to - from;
      }
    };
    for (const auto& [p, size] : live) {
      gap(at, p);
      at = p + size;
    }
    gap(at, end);
    if (best != 0) return round_up(best, l.align);
    for (unsigned k = c; k <= top; ++k)
      if (lowest[k] != 0) return round_up(lowest[k], l.align);
    return 0;
  }

  // The free bytes right after a live block (up to the next block or the region end).
  std::size_t gap_after(std::uintptr_t p, std::size_t size) const {
    auto it = live.upper_bound(p);
    const std::uintptr_t next = it == live.end() ? end : it->first;
    return next - (p + size);
  }

  void after_allocate(const TreeAllocator&, Layout l, Block b) {
    if (l.size == 0) return;
    if (!served_by_region(l)) {
      if (b.ptr != nullptr && in_region(b.ptr)) note("an oversize request landed in the region");
      if (b.ptr != nullptr) ++oversize;
      return;
    }
    const std::uintptr_t want = predict(l);
    const auto got = reinterpret_cast<std::uintptr_t>(b.ptr);
    if (want != got) {
      note("allocate(" + std::to_string(l.size) + ", " + std::to_string(l.align) +
           ") placed at offset " + std::to_string(got - begin) + ", oracle says " +
           (want == 0 ? std::string("fail") : std::to_string(want - begin)));
    }
    if (b.ptr != nullptr) {
      if (b.size != round_up(l.size, granule)) note("allocate reported a wrong size");
      live.emplace(got, b.size);
    }
  }

  void after_free(const TreeAllocator&, Block b) {
    live.erase(reinterpret_cast<std::uintptr_t>(b.ptr));
  }

  void after_resize(const TreeAllocator& a, Block old, Layout l, Move m, Block r) {
    const auto p = reinterpret_cast<std::uintptr_t>(old.ptr);
    auto it = live.find(p);
    if (it == live.end()) return;  // an oversize block: the oversize allocator's business
    const std::size_t have = it->second;
    const std::size_t n = round_up(l.size, granule);
    const bool aligned = p % l.align == 0;
    if (aligned && (l.size < old.size || l.size <= have)) {  // shrink, or grow within the block
      const bool grow = l.size >= old.size;
      const std::size_t want = grow ? have : n;
      if (r.ptr != old.ptr || r.size != want) note("an in-place resize did not stay in place");
      it->second = want;
      return;
    }
    const bool in_place = aligned && l.size >= old.size && n <= have + gap_after(p, have);
    if (in_place) {
      if (r.ptr != old.ptr || r.size != n) note("grow did not absorb the following free span");
      it->second = n;
      return;
    }
    if (m == Move::forbidden) {
      if (r.ptr != nullptr) note("a resize with Move::forbidden succeeded without room");
      return;
    }
    // Moved (a grow without room, or a resize to an alignment the block lacks): the new
    // block was placed while the old one was still live.
    if (served_by_region(l)) {
      const std::uintptr_t want = predict(l);
      if (reinterpret_cast<std::uintptr_t>(r.ptr) != want) note("a moving resize landed elsewhere");
    } else if (r.ptr != nullptr && in_region(r.ptr)) {
      note("an oversize resize landed in the region");
    } else if (r.ptr != nullptr) {
      ++oversize;
    }
    if (r.ptr == nullptr) return;
    live.erase(it);
    if (in_region(r.ptr)) live.emplace(reinterpret_cast<std::uintptr_t>(r.ptr), r.size);
    (void)a;
  }
};

}  // namespace ctxalloc::testing
