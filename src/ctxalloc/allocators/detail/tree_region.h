// A region of a TreeAllocator and the set of all its regions. A region formats the
// memory it is given as
//   [ TreeRegion header ][ granule map: 1 B per granule ][ pad to a granule ][ usable ]
// so its metadata travels with it: adding a region allocates nothing, and giving an
// entirely free region back (GlobalHeap returning a chunk) takes its metadata along.
// Cost per region: sizeof(TreeRegion) (~100 B) + 1 byte per granule + < 1 granule pad.
#pragma once

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/set.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <new>
#include <utility>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/core/layout.h"

namespace ctxalloc::detail {

namespace bi = boost::intrusive;

struct TreeRegion {
  static constexpr std::uint64_t kMagic = 0x74726565'7265676EULL;  // "treereg n"

  bi::set_member_hook<bi::link_mode<bi::normal_link>, bi::optimize_size<true>> by_address;
  bi::list_member_hook<bi::link_mode<bi::normal_link>> empty_link;
  std::uint64_t magic = kMagic;
  Block original;        // exactly as given to add_region
  std::byte* begin;      // the usable area, granule-aligned
  std::byte* end;        // begin + granules * granule
  std::uint8_t* map;     // one byte per granule of [begin, end)
  std::size_t granules;  // of the usable area
  bool listed_empty;     // in RegionSet's list of entirely free regions

  /// Whether p lies anywhere in the memory given to add_region (metadata included).
  bool holds(const void* p) const noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const auto b = reinterpret_cast<std::uintptr_t>(original.ptr);
    return a - b < original.size;
  }
  bool in_usable(const void* p) const noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return a - reinterpret_cast<std::uintptr_t>(begin) < static_cast<std::size_t>(end - begin);
  }

  /// Lays a region out in r; nullptr when r cannot hold the header, its map and one
  /// granule, or wraps around the address space. The usable area is not yet formatted.
  static TreeRegion* format(Block r, std::size_t granule) noexcept {
    const auto base = reinterpret_cast<std::uintptr_t>(r.ptr);
    if (r.ptr == nullptr || r.size > UINTPTR_MAX - base) return nullptr;
    const std::uintptr_t limit = base + r.size;
    const std::uintptr_t header = align_up(base, alignof(TreeRegion));
    const std::uintptr_t map = header + sizeof(TreeRegion);
    if (map >= limit) return nullptr;
    // g granules need g map bytes, up to granule-1 bytes of padding and g * granule.
    std::size_t g = (limit - map) / (granule + 1);
    while (g > 0 && align_up(map + g, granule) + g * granule > limit)
      --g;
    if (g == 0) return nullptr;
    auto* region = new (reinterpret_cast<void*>(header)) TreeRegion;
    region->original = r;
    region->map = reinterpret_cast<std::uint8_t*>(map);
    region->begin = reinterpret_cast<std::byte*>(align_up(map + g, granule));
    region->end = region->begin + g * granule;
    region->granules = g;
    region->listed_empty = false;
    return region;
  }
};

struct RegionAddressLess {
  bool operator()(const TreeRegion& a, const TreeRegion& b) const noexcept {
    return std::less<const void*>{}(a.original.ptr, b.original.ptr);
  }
  bool operator()(const void* a, const TreeRegion& b) const noexcept {
    return std::less<const void*>{}(a, b.original.ptr);
  }
  bool operator()(const TreeRegion& a, const void* b) const noexcept {
    return std::less<const void*>{}(a.original.ptr, b);
  }
};

/// Every region of one allocator, by address (finding a pointer's region is O(log R),
/// O(1) when it is the region found last), and the list of entirely free ones.
class RegionSet {
 public:
  using ByAddress = bi::set<
      TreeRegion,
      bi::member_hook<TreeRegion, decltype(TreeRegion::by_address), &TreeRegion::by_address>,
      bi::compare<RegionAddressLess>, bi::constant_time_size<true>>;
  using EmptyList = bi::list<
      TreeRegion,
      bi::member_hook<TreeRegion, decltype(TreeRegion::empty_link), &TreeRegion::empty_link>,
      bi::constant_time_size<true>>;

  /// The region whose memory holds p, or nullptr. Remembers it for the next call.
  TreeRegion* find(const void* p) noexcept {
    if (last_ != nullptr && last_->holds(p)) [[likely]]
      return last_;
    TreeRegion* r = const_cast<TreeRegion*>(std::as_const(*this).find_slow(p));
    if (r != nullptr) last_ = r;
    return r;
  }
  const TreeRegion* find(const void* p) const noexcept {
    if (last_ != nullptr && last_->holds(p)) return last_;
    return find_slow(p);
  }

  /// Adds r; false (nothing changed) when r overlaps a region already there.
  bool insert(TreeRegion& r) noexcept {
    auto next = all_.upper_bound(static_cast<const void*>(r.original.ptr), RegionAddressLess{});
    if (next != all_.end() && r.holds(next->original.ptr)) return false;
    if (next != all_.begin() && std::prev(next)->holds(r.original.ptr)) return false;
    all_.insert(next, r);
    return true;
  }

  void erase(TreeRegion& r) noexcept {
    if (r.listed_empty) unlist_empty(r);
    all_.erase(all_.iterator_to(r));
    if (last_ == &r) last_ = nullptr;
  }

  void list_empty(TreeRegion& r) noexcept {
    if (r.listed_empty) return;
    empty_.push_back(r);
    r.listed_empty = true;
  }
  void unlist_empty(TreeRegion& r) noexcept {
    if (!r.listed_empty) return;
    empty_.erase(empty_.iterator_to(r));
    r.listed_empty = false;
  }

  /// The region entirely free for longest, or nullptr.
  TreeRegion* oldest_empty() noexcept { return empty_.empty() ? nullptr : &empty_.front(); }

  const ByAddress& all() const noexcept { return all_; }
  const EmptyList& empty_regions() const noexcept { return empty_; }
  std::size_t size() const noexcept { return all_.size(); }

 private:
  const TreeRegion* find_slow(const void* p) const noexcept {
    auto next = all_.upper_bound(p, RegionAddressLess{});
    if (next == all_.begin()) return nullptr;
    const TreeRegion& r = *std::prev(next);
    return r.holds(p) ? &r : nullptr;
  }

  ByAddress all_;
  EmptyList empty_;
  TreeRegion* last_ = nullptr;
};

}  // namespace ctxalloc::detail
