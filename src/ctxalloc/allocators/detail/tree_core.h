// The region half of the TreeAllocator: regions, one address-ordered red-black tree of
// free spans per power-of-two size class, a bitmap of the non-empty classes, and the
// granule map of every region. It knows nothing of oversize requests, layouts or
// statistics; BasicTreeAllocator (tree_allocator.h) puts those around it.
//
// A free span of L bytes is filed in class floor(log2 L) (the top class takes every span
// of max_class bytes or more). A request of n bytes first asks the class below
// ceil(log2 n), whose spans are shorter than 2n, for its best fit: the shortest span of at
// least n bytes, from the class's size index (O(log n)). Failing that, every span of class
// ceil(log2 n) and up fits: one bit scan of the bitmap finds the first non-empty class and
// its lowest-addressed span is O(1) (Boost's header keeps the leftmost node). The best fit
// from the class below keeps large spans whole, so that mixed sizes do not cut them up
// (docs/BENCHMARKS.md, "Footprint under fragmentation", has the tree's footprint).
// Splitting files the remainder as one span; freeing merges with the free neighbours on
// both sides (the granule map says whether they are free, the span footers where they
// start) and re-files the merged span, usually one class up. Worst case of allocate and
// deallocate: one erase and two inserts, O(log n) each for n spans in a class, plus
// O(log R) to find the region among R regions (O(1) for the region used last).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "ctxalloc/allocators/detail/free_span.h"
#include "ctxalloc/allocators/detail/granule_map.h"
#include "ctxalloc/allocators/detail/tree_poison.h"
#include "ctxalloc/allocators/detail/tree_region.h"
#include "ctxalloc/allocators/tree_config.h"
#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"

namespace ctxalloc::detail {

class TreeCore {
 public:
  /// What check_invariants() counted while walking every region.
  struct Census {
    std::size_t live_blocks = 0;
    std::size_t live_bytes = 0;
    std::size_t free_spans = 0;
    std::size_t free_bytes = 0;
  };

  explicit TreeCore(TreeConfig config) noexcept
      : config_(config),
        granule_(config.min_class()),
        shift_(log2_floor(config.min_class())),
        top_(config.classes() - 1),
        tools_(poisoning_active() || pool_slow_paths()) {}
  ~TreeCore();
  TreeCore(const TreeCore&) = delete;
  TreeCore& operator=(const TreeCore&) = delete;

  const TreeConfig& config() const noexcept { return config_; }
  std::size_t granule() const noexcept { return granule_; }
  unsigned shift() const noexcept { return shift_; }
  std::size_t max_class() const noexcept { return config_.max_class(); }

  // ------------------------------------------------------------------ regions (cold)

  /// Formats r as a region and adds its usable part as one free span. False when r is
  /// too small for its metadata and one granule, or overlaps a region already added.
  /// known_zero: r is all zero bytes (fresh anonymous mmap), so the granule map needs no
  /// clearing and its pages stay untouched until used.
  bool add_region(Block r, bool known_zero) noexcept;

  /// Removes a region that is entirely free (the one free for longest) and returns it
  /// exactly as it was added; a null Block when no region is entirely free.
  Block take_free_region() noexcept;

  std::size_t region_count() const noexcept { return regions_.size(); }
  std::size_t free_region_count() const noexcept { return regions_.empty_regions().size(); }
  /// Usable bytes of all regions.
  std::size_t capacity() const noexcept { return capacity_; }
  /// Bytes of all regions spent on headers, granule maps and padding.
  std::size_t metadata_bytes() const noexcept;
  /// The longest free span. Walks the highest non-empty class: O(spans in it).
  std::size_t largest_free_span() const noexcept;

  // ------------------------------------------------------------------ blocks

  /// A block of n bytes (a multiple of the granule) aligned to align, taken from the
  /// lowest-addressed span of the first class that fits; nullptr when none does. The
  /// caller guarantees n + padding(align) <= max_class(), padding = align - granule
  /// when align > granule, else 0.
  std::byte* take(std::size_t n, std::size_t align) noexcept {
    const std::size_t need = n + (align > granule_ ? align - granule_ : 0);
    const unsigned c = log2_ceil(need) - shift_;
    if (c > 1 && ((nonempty_ >> (c - 1)) & 1) != 0) {
      auto it = sizes_[c - 1].lower_bound(need, SpanSizeLess{});
      if (it != sizes_[c - 1].end()) return carve(*it, c - 1, n, align);
    }
    const std::uint64_t mask = nonempty_ & ~low_bits(c);
    if (mask == 0) return nullptr;
    const unsigned k = lowest_bit_index(mask);
    return carve(*trees_[k].begin(), k, n, align);
  }

  /// The region whose memory (metadata included) holds p, or nullptr.
  TreeRegion* region_of(const void* p) noexcept { return regions_.find(p); }
  const TreeRegion* region_of(const void* p) const noexcept { return regions_.find(p); }

  /// The length in granules of the live block that starts at p in r; 0 when p is not
  /// the start of a live block (a freed block, an interior or metadata pointer).
  std::size_t live_length(const TreeRegion& r, const void* p) const noexcept {
    const auto off = static_cast<std::size_t>(static_cast<const std::byte*>(p) - r.begin);
    if (!r.in_usable(p) || (off & (granule_ - 1)) != 0) return 0;
    const std::uint8_t* m = r.map + (off >> shift_);
    return GranuleMap::is_live_head(*m) ? GranuleMap::live_length(m) : 0;
  }

  /// The granule index of p, which must be in r's usable area.
  std::size_t index_of(const TreeRegion& r, const void* p) const noexcept {
    return static_cast<std::size_t>(static_cast<const std::byte*>(p) - r.begin) >> shift_;
  }

  /// Frees the live block of len granules at granule i of r, merging it with its free
  /// neighbours.
  void release(TreeRegion& r, std::size_t i, std::size_t len) noexcept {
    r.map[i] = GranuleMap::kInterior;
    free_run(r, i, len);
  }

  /// Grows the live block at granule i from len to new_len granules by absorbing the
  /// free span after it; false (nothing changed) when that span is missing or short.
  bool grow_in_place(TreeRegion& r, std::size_t i, std::size_t len, std::size_t new_len) noexcept {
    return tools_ ? grow_in_place_with<true>(r, i, len, new_len)
                  : grow_in_place_with<false>(r, i, len, new_len);
  }

  /// Shrinks the live block at granule i from len to new_len (>= 1) granules; the tail
  /// becomes free and merges with a free span after it.
  void shrink_in_place(TreeRegion& r, std::size_t i, std::size_t len,
                       std::size_t new_len) noexcept {
    GranuleMap::set_live(r.map + i, new_len);
    free_run(r, i + new_len, len - new_len);
  }

  /// Why p, in r but not the start of a live block, was handed back: double_free when it
  /// lies in a free span (freed before, perhaps merged since), else foreign_pointer
  /// (an interior or metadata pointer). O(classes * log n): for error paths only.
  Misuse classify(const TreeRegion& r, const void* p) const noexcept;

  /// Walks every region's granule map, every free span, every class tree (order, no
  /// overlap, right class, red-black shape), the bitmap and the region set; fills
  /// census with what it counted.
  CheckResult check_invariants(Census* census) const;

 private:
  template <class>
  friend struct ::ctxalloc::TestPeer;

  unsigned class_of(std::size_t span_bytes) const noexcept {
    const unsigned k = log2_floor(span_bytes) - shift_;
    return k < top_ ? k : top_;
  }

  // Classes 1 .. top-1 have a size index; class 0 holds one-granule spans only, which
  // fit no search, and every span of the top class fits every request.
  bool indexed(unsigned k) const noexcept { return k != 0 && k < top_; }

  // The address trees and the bitmap.
  void link_address(FreeSpan& s, unsigned k) noexcept {
    trees_[k].insert(s);
    nonempty_ |= std::uint64_t{1} << k;
  }
  void unlink_address(FreeSpan& s, unsigned k) noexcept {
    trees_[k].erase(trees_[k].iterator_to(s));
    if (trees_[k].empty()) nonempty_ &= ~(std::uint64_t{1} << k);
  }
  /// Puts `with` (a span at another address that keeps the order) in place of `old`.
  void relink_address(FreeSpan& old, unsigned k_old, FreeSpan& with, unsigned k_new) noexcept {
    if (k_old == k_new) {
      trees_[k_old].replace_node(trees_[k_old].iterator_to(old), with);
    } else {
      unlink_address(old, k_old);
      link_address(with, k_new);
    }
  }
  // The size indexes. A span leaves its index before its length changes or a node is
  // written over its size hook, and enters it again once its length is final.
  void index(FreeSpan& s, unsigned k) noexcept {
    if (indexed(k)) sizes_[k].insert(s);
  }
  void unindex(FreeSpan& s, unsigned k) noexcept {
    if (indexed(k)) sizes_[k].erase(sizes_[k].iterator_to(s));
  }
  void link(FreeSpan& s, unsigned k) noexcept {
    link_address(s, k);
    index(s, k);
  }
  void unlink(FreeSpan& s, unsigned k) noexcept {
    unindex(s, k);
    unlink_address(s, k);
  }

  // The hot paths come in two builds: with the memory tools' marks (ASan, memcheck, or a
  // test asking for the slow paths: tools_) and without any, chosen once per operation.
  // Marks that are compiled in but skipped at run time would still cost every operation:
  // calls on cold branches take registers from the code around them.
  std::byte* carve(FreeSpan& s, unsigned k, std::size_t n, std::size_t align) noexcept {
    return tools_ ? carve_with<true>(s, k, n, align) : carve_with<false>(s, k, n, align);
  }
  void free_run(TreeRegion& r, std::size_t i, std::size_t len) noexcept {
    return tools_ ? free_run_with<true>(r, i, len) : free_run_with<false>(r, i, len);
  }
  template <bool kTools>
  std::byte* carve_with(FreeSpan& s, unsigned k, std::size_t n, std::size_t align) noexcept;
  template <bool kTools>
  void free_run_with(TreeRegion& r, std::size_t i, std::size_t len) noexcept;
  template <bool kTools>
  bool grow_in_place_with(TreeRegion& r, std::size_t i, std::size_t len,
                          std::size_t new_len) noexcept;
  template <bool kTools>
  static void tool_unpoison(const void* p, std::size_t n) noexcept {
    if constexpr (kTools) unpoison(p, n);
  }
  template <bool kTools>
  static void tool_poison(const void* p, std::size_t n) noexcept {
    if constexpr (kTools) poison(p, n);
  }

  TreeConfig config_;
  std::size_t granule_;
  unsigned shift_;
  unsigned top_;  // the top class index
  bool tools_;    // the memory tools want marks: the hot paths with them (see carve)
  std::uint64_t nonempty_ = 0;
  std::array<SpanTree, TreeConfig::kMaxClasses> trees_;
  std::array<SizeTree, TreeConfig::kMaxClasses> sizes_;
  RegionSet regions_;
  std::size_t capacity_ = 0;
};

// Splits span s (in class k) into [head][block of n bytes][tail]; head and tail stay
// free. Order matters: s leaves its size index before a node is written over its size
// hook, and memory is unpoisoned (ASan) before a node or footer is written into it.
template <bool kTools>
inline std::byte* TreeCore::carve_with(FreeSpan& s, unsigned k, std::size_t n,
                                       std::size_t align) noexcept {
  std::byte* const a = s.begin();
  const std::size_t len = s.length();
  const std::size_t head = padding_for(reinterpret_cast<std::uintptr_t>(a), align);
  std::byte* const p = a + head;
  const std::size_t tail = len - head - n;
  TreeRegion& r = *regions_.find(a);
  if (s.whole_region()) [[unlikely]]
    regions_.unlist_empty(r);
  std::uint8_t* const m = r.map;
  const std::size_t ia = index_of(r, a);
  const std::size_t ip = ia + (head >> shift_);
  const std::size_t in = n >> shift_;
  unindex(s, k);
  tool_unpoison<kTools>(p, n);
  if (tail != 0) tool_unpoison<kTools>(p + n, FreeSpan::node_bytes(tail));
  if (head == 0) {
    if (tail == 0) {
      unlink_address(s, k);
      m[ia + (len >> shift_) - 1] = GranuleMap::kInterior;
    } else {
      FreeSpan* rest = FreeSpan::create(p + n, tail);
      const unsigned kr = class_of(tail);
      relink_address(s, k, *rest, kr);
      index(*rest, kr);
      GranuleMap::set_free(m, ip + in, tail >> shift_);
    }
  } else {
    tool_unpoison<kTools>(p - sizeof(std::size_t), sizeof(std::size_t));
    s.word = head;
    FreeSpan::store_footer(p, head);
    const unsigned kh = class_of(head);
    if (kh != k) {
      unlink_address(s, k);
      link_address(s, kh);
    }
    index(s, kh);
    GranuleMap::set_free(m, ia, head >> shift_);
    if (tail == 0) {
      m[ia + (len >> shift_) - 1] = GranuleMap::kInterior;
    } else {
      FreeSpan* rest = FreeSpan::create(p + n, tail);
      link(*rest, class_of(tail));
      GranuleMap::set_free(m, ip + in, tail >> shift_);
    }
  }
  GranuleMap::set_live(m + ip, in);
  return p;
}

// Makes granules [i, i + len) of r free: merges them with a free span ending at i and
// one starting at i + len, re-files the result, marks its two boundaries and poisons its
// interior. The caller has already cleared whatever live head was at i.
template <bool kTools>
inline void TreeCore::free_run_with(TreeRegion& r, std::size_t i, std::size_t len) noexcept {
  std::uint8_t* const m = r.map;
  std::byte* const p = r.begin + (i << shift_);
  const std::size_t bytes = len << shift_;
  std::size_t a = i;
  std::size_t e = i + len;
  FreeSpan* next = nullptr;
  unsigned kn = 0;
  std::size_t next_bytes = 0;
  if (e < r.granules && GranuleMap::is_free_head(m[e])) {
    next = FreeSpan::at(p + bytes);
    next_bytes = next->length();
    kn = class_of(next_bytes);
    unindex(*next, kn);
    m[e] = GranuleMap::kInterior;
    e += next_bytes >> shift_;
  }
  FreeSpan* prev = nullptr;
  unsigned kp = 0;
  if (i > 0 && GranuleMap::is_free_tail(m[i - 1])) {
    const std::size_t prev_bytes = FreeSpan::load_footer(p);
    prev = FreeSpan::at(p - prev_bytes);
    kp = class_of(prev_bytes);
    unindex(*prev, kp);
    m[i - 1] = GranuleMap::kInterior;
    a -= prev_bytes >> shift_;
  }
  const std::size_t merged = (e - a) << shift_;
  const unsigned k = class_of(merged);
  const bool whole = a == 0 && e == r.granules;
  const std::size_t flags = whole ? FreeSpan::kWholeRegion : 0;
  std::byte* const start = r.begin + (a << shift_);
  FreeSpan* s;
  if (prev != nullptr) {
    if (next != nullptr) unlink_address(*next, kn);
    prev->word = merged | flags;
    if (k != kp) {
      unlink_address(*prev, kp);
      link_address(*prev, k);
    }
    s = prev;
  } else {
    s = new (p) FreeSpan;
    s->word = merged | flags;
    if (next != nullptr) {
      relink_address(*next, kn, *s, k);
    } else {
      link_address(*s, k);
    }
  }
  index(*s, k);  // after next's node, which s's size hook may cover, is done with
  FreeSpan::store_footer(start + merged, merged | flags);
  GranuleMap::set_free(m, a, e - a);
  if (whole) [[unlikely]]
    regions_.list_empty(r);
  // Poison what became interior: the freed run, the old footer of prev, the old node of
  // next; the merged span's own node and footer stay addressable.
  std::byte* lo = prev != nullptr ? p - sizeof(std::size_t) : p;
  std::byte* hi = next != nullptr ? p + bytes + FreeSpan::node_bytes(next_bytes) : p + bytes;
  std::byte* const node_end = start + FreeSpan::node_bytes(merged);
  std::byte* const footer = start + merged - sizeof(std::size_t);
  if (lo < node_end) lo = node_end;
  if (hi > footer) hi = footer;
  if (lo < hi) tool_poison<kTools>(lo, static_cast<std::size_t>(hi - lo));
}

template <bool kTools>
inline bool TreeCore::grow_in_place_with(TreeRegion& r, std::size_t i, std::size_t len,
                                         std::size_t new_len) noexcept {
  std::uint8_t* const m = r.map;
  const std::size_t j = i + len;
  if (j >= r.granules || !GranuleMap::is_free_head(m[j])) return false;
  std::byte* const p = r.begin + (i << shift_);
  FreeSpan& next = *FreeSpan::at(p + (len << shift_));
  const std::size_t next_len = next.length() >> shift_;
  if (len + next_len < new_len || new_len > GranuleMap::kMaxLength) return false;
  const unsigned kn = class_of(next.length());
  const std::size_t rest = len + next_len - new_len;
  unindex(next, kn);
  tool_unpoison<kTools>(p + (len << shift_), (new_len - len) << shift_);
  m[j] = GranuleMap::kInterior;
  if (rest == 0) {
    unlink_address(next, kn);
    m[j + next_len - 1] = GranuleMap::kInterior;
  } else {
    std::byte* const q = p + (new_len << shift_);
    tool_unpoison<kTools>(q, FreeSpan::node_bytes(rest << shift_));
    FreeSpan* s = FreeSpan::create(q, rest << shift_);
    const unsigned k = class_of(rest << shift_);
    relink_address(next, kn, *s, k);
    index(*s, k);
    GranuleMap::set_free(m, i + new_len, rest);
  }
  GranuleMap::set_live(m + i, new_len);
  return true;
}

}  // namespace ctxalloc::detail
