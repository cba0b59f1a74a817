// The cold parts of TreeCore: regions coming and going, misuse classification and the
// invariant walk.
#include "ctxalloc/allocators/detail/tree_core.h"

#include "ctxalloc/allocators/detail/canary.h"
#include "ctxalloc/config.h"

#include <cstring>

namespace ctxalloc::detail {
namespace {

// Red-black shape of a Boost.Intrusive tree, read through its node traits: parent links
// agree, no red node has a red child, every path has the same number of black nodes.
// Returns the black height, or -1 with *error set.
template <class NodeTraits>
int black_height(typename NodeTraits::const_node_ptr n, std::string* error) {
  if (n == nullptr) return 1;
  const auto left = NodeTraits::get_left(n);
  const auto right = NodeTraits::get_right(n);
  for (const auto child : {left, right}) {
    if (child != nullptr && NodeTraits::get_parent(child) != n) {
      *error = "a child's parent link does not point back";
      return -1;
    }
  }
  const bool red = NodeTraits::get_color(n) == NodeTraits::red();
  if (red && ((left != nullptr && NodeTraits::get_color(left) == NodeTraits::red()) ||
              (right != nullptr && NodeTraits::get_color(right) == NodeTraits::red()))) {
    *error = "a red node has a red child";
    return -1;
  }
  const int hl = black_height<NodeTraits>(left, error);
  if (hl < 0) return -1;
  const int hr = black_height<NodeTraits>(right, error);
  if (hr < 0) return -1;
  if (hl != hr) {
    *error =
        "black heights differ (" + std::to_string(hl) + " left, " + std::to_string(hr) + " right)";
    return -1;
  }
  return hl + (red ? 0 : 1);
}

template <class Tree>
std::string red_black_error(const Tree& t) {
  using Traits = typename Tree::value_traits;
  using NodeTraits = typename Traits::node_traits;
  if (t.empty()) return "";
  const auto root = Traits::to_node_ptr(*t.root());
  if (NodeTraits::get_color(root) != NodeTraits::black()) return "the root is red";
  std::string error;
  black_height<NodeTraits>(root, &error);
  return error;
}

}  // namespace

TreeCore::~TreeCore() {
#if defined(CTXALLOC_ASAN_ACTIVE)
  // Give the caller back addressable memory: it may reuse the regions.
  for (const TreeRegion& r : regions_.all())
    unpoison(r.original.ptr, r.original.size);
#endif
}

bool TreeCore::add_region(Block r, bool known_zero) noexcept {
  if (r.ptr == nullptr || r.size == 0) return false;
  // Refuse overlap before writing anything: formatting would overwrite a live region.
  const RegionSet::ByAddress& all = regions_.all();
  auto next = all.upper_bound(static_cast<const void*>(r.ptr), RegionAddressLess{});
  if (next != all.end() && reinterpret_cast<std::uintptr_t>(next->original.ptr) -
                                   reinterpret_cast<std::uintptr_t>(r.ptr) <
                               r.size)
    return false;
  if (next != all.begin() && std::prev(next)->holds(r.ptr)) return false;
  TreeRegion* region = TreeRegion::format(r, granule_);
  if (region == nullptr) return false;
  unpoison(region->map, region->granules);
  if (!known_zero) std::memset(region->map, 0, region->granules);
  const std::size_t bytes = region->granules << shift_;
  const std::size_t node = FreeSpan::node_bytes(bytes);
  unpoison(region->begin, node);
  unpoison(region->end - sizeof(std::size_t), sizeof(std::size_t));
  FreeSpan* s = FreeSpan::create(region->begin, bytes, FreeSpan::kWholeRegion);
  if (bytes > node + sizeof(std::size_t))
    poison(region->begin + node, bytes - node - sizeof(std::size_t));
  GranuleMap::set_free(region->map, 0, region->granules);
  regions_.insert(*region);
  regions_.list_empty(*region);
  link(*s, class_of(bytes));
  capacity_ += bytes;
  return true;
}

Block TreeCore::take_free_region() noexcept {
  TreeRegion* r = regions_.oldest_empty();
  if (r == nullptr) return Block{};
  FreeSpan& s = *FreeSpan::at(r->begin);
  unlink(s, class_of(s.length()));
  regions_.erase(*r);
  capacity_ -= r->granules << shift_;
  const Block original = r->original;
  r->magic = 0;  // a stale pointer to this header no longer passes for a region
  unpoison(original.ptr, original.size);
  return original;
}

std::size_t TreeCore::metadata_bytes() const noexcept {
  std::size_t total = 0;
  for (const TreeRegion& r : regions_.all())
    total += r.original.size - (r.granules << shift_);
  return total;
}

std::size_t TreeCore::largest_free_span() const noexcept {
  if (nonempty_ == 0) return 0;
  std::size_t best = 0;
  for (const FreeSpan& s : trees_[highest_bit_index(nonempty_)])
    best = s.length() > best ? s.length() : best;
  return best;
}

Misuse TreeCore::classify(const TreeRegion& r, const void* p) const noexcept {
  if (!r.in_usable(p)) return Misuse::foreign_pointer;
  const auto off = static_cast<std::size_t>(static_cast<const std::byte*>(p) - r.begin);
  if ((off & (granule_ - 1)) == 0 && GranuleMap::is_free_head(r.map[off >> shift_]))
    return Misuse::double_free;
  for (std::uint64_t mask = nonempty_; mask != 0; mask = clear_lowest_bit(mask)) {
    const SpanTree& t = trees_[lowest_bit_index(mask)];
    auto it = t.upper_bound(p, SpanAddressLess{});
    if (it == t.begin()) continue;
    --it;
    if (std::less<const void*>{}(p, it->end())) return Misuse::double_free;
  }
  return Misuse::foreign_pointer;
}

CheckResult TreeCore::check_invariants(Census* census) const {
  Census c;
  std::array<std::size_t, TreeConfig::kMaxClasses> spans_in_class{};
  std::size_t capacity = 0;
  std::size_t listed_empty = 0;
  const TreeRegion* before = nullptr;
  for (const TreeRegion& r : regions_.all()) {
    CTXALLOC_INVARIANT(r.magic == TreeRegion::kMagic, "tree: region ", &r, " has a bad magic");
    const auto* map_end = reinterpret_cast<const std::byte*>(r.map + r.granules);
    CTXALLOC_INVARIANT(r.original.ptr <= reinterpret_cast<const std::byte*>(&r) &&
                           map_end <= r.begin && r.end == r.begin + (r.granules << shift_) &&
                           r.end <= r.original.end() && is_aligned(r.begin, granule_),
                       "tree: region ", &r, " lays out its header, map and usable area wrongly");
    CTXALLOC_INVARIANT(before == nullptr || before->original.end() <= r.original.ptr,
                       "tree: regions ", before, " and ", &r, " overlap or are out of order");
    before = &r;
    capacity += r.granules << shift_;
    bool prev_free = false;
    bool whole_free = false;
    for (std::size_t i = 0; i < r.granules;) {
      const std::uint8_t b = r.map[i];
      const std::byte* at = r.begin + (i << shift_);
      std::size_t len = 0;
      std::size_t from = i + 1;  // [from, to): map bytes inside the block, no boundaries
      std::size_t to = 0;
      if (GranuleMap::is_live_head(b)) {
        len = GranuleMap::live_length(r.map + i);
        CTXALLOC_INVARIANT(len >= 1 && len <= r.granules - i, "tree: live block ", at,
                           " has length ", len, " granules, past its region's end");
        if (len > GranuleMap::kShortMax) {
          for (unsigned k = 1; k <= GranuleMap::kLongBytes; ++k)
            CTXALLOC_INVARIANT(GranuleMap::is_continuation(r.map[i + k]), "tree: live block ", at,
                               " has a broken length encoding");
          from += GranuleMap::kLongBytes;
        }
        to = i + len;
        // Checked builds: the canary in the last granule's slack (tree_allocator.h).
        const std::uint8_t last = r.map[i + len - 1];
        if (CTXALLOC_CHECKS && len >= 2 && (last & GranuleMap::kKindMask) == 0 && last != 0) {
          const std::byte* end = at + (len << shift_);
          CTXALLOC_INVARIANT(canary_intact(end - last, end), "tree: live block ", at,
                             " was written past its end (canary broken)");
        }
        c.live_blocks++;
        c.live_bytes += len << shift_;
        prev_free = false;
      } else if (GranuleMap::is_free_head(b)) {
        const FreeSpan& s = *FreeSpan::at(at);
        len = s.length() >> shift_;
        CTXALLOC_INVARIANT(!prev_free, "tree: free spans before ", at,
                           " and at it are neighbours but were not merged");
        CTXALLOC_INVARIANT(len >= 1 && len <= r.granules - i && (s.length() & (granule_ - 1)) == 0,
                           "tree: free span ", at, " has a bad length ", s.length());
        CTXALLOC_INVARIANT(
            len == 1 ? b == GranuleMap::kFreeSingle : r.map[i + len - 1] == GranuleMap::kFreeTail,
            "tree: free span ", at, " is not marked at both ends in the map");
        to = i + len - 1;  // the tail marker was checked above
        CTXALLOC_INVARIANT(FreeSpan::load_footer(s.end()) == s.length(), "tree: free span ", at,
                           " has a footer that disagrees with its length");
        const bool whole = i == 0 && len == r.granules;
        CTXALLOC_INVARIANT(s.whole_region() == whole, "tree: free span ", at,
                           " has a wrong whole-region flag");
        whole_free = whole;
        const unsigned k = class_of(s.length());
        CTXALLOC_INVARIANT(trees_[k].find(s) != trees_[k].end(), "tree: free span ", at, " of ",
                           s.length(), " bytes is missing from the tree of class ", k);
        CTXALLOC_INVARIANT(!indexed(k) || sizes_[k].find(s) != sizes_[k].end(), "tree: free span ",
                           at, " of ", s.length(),
                           " bytes is missing from the size index of class ", k);
        spans_in_class[k]++;
        c.free_spans++;
        c.free_bytes += s.length();
        prev_free = true;
      } else {
        return check_fail("tree: granule ", i, " of region ", &r, " (", at,
                          ") starts neither a live block nor a free span (map byte ",
                          static_cast<unsigned>(b), ")");
      }
      for (std::size_t j = from; j < to; ++j)
        CTXALLOC_INVARIANT(!GranuleMap::is_boundary(r.map[j]), "tree: granule ", j,
                           " inside the block at ", at, " is marked as a boundary");
      i += len;
    }
    CTXALLOC_INVARIANT(r.listed_empty == whole_free, "tree: region ", &r,
                       whole_free ? " is entirely free but not listed as such"
                                  : " is listed as entirely free but is not");
    listed_empty += r.listed_empty ? 1 : 0;
  }
  CTXALLOC_INVARIANT(listed_empty == regions_.empty_regions().size(),
                     "tree: the list of entirely free regions holds ",
                     regions_.empty_regions().size(), " regions, the walk found ", listed_empty);
  CTXALLOC_INVARIANT(capacity == capacity_, "tree: capacity ", capacity_, " but regions hold ",
                     capacity);
  if (std::string e = red_black_error(regions_.all()); !e.empty())
    return check_fail("tree: region set: ", e);
  for (unsigned k = 0; k < TreeConfig::kMaxClasses; ++k) {
    const SpanTree& t = trees_[k];
    CTXALLOC_INVARIANT(((nonempty_ >> k) & 1) == (t.empty() ? 0U : 1U), "tree: bitmap bit ", k,
                       " disagrees with its tree (", t.size(), " spans)");
    CTXALLOC_INVARIANT(k <= top_ || t.empty(), "tree: class ", k, " is beyond the top class");
    CTXALLOC_INVARIANT(t.size() == spans_in_class[k], "tree: class ", k, " holds ", t.size(),
                       " spans, the regions ", spans_in_class[k]);
    const FreeSpan* prev = nullptr;
    for (const FreeSpan& s : t) {
      CTXALLOC_INVARIANT(class_of(s.length()) == k, "tree: span ", &s, " of ", s.length(),
                         " bytes is in class ", k);
      CTXALLOC_INVARIANT(prev == nullptr || prev->end() <= s.begin(), "tree: spans ", prev, " and ",
                         &s, " of class ", k, " overlap or are out of order");
      prev = &s;
    }
    if (std::string e = red_black_error(t); !e.empty())
      return check_fail("tree: class ", k, ": ", e);
    const SizeTree& z = sizes_[k];
    CTXALLOC_INVARIANT(z.size() == (indexed(k) ? t.size() : 0), "tree: the size index of class ", k,
                       " holds ", z.size(), " spans, its tree ", t.size());
    const FreeSpan* smaller = nullptr;
    for (const FreeSpan& s : z) {
      CTXALLOC_INVARIANT(smaller == nullptr || SpanSizeLess{}(*smaller, s),
                         "tree: the size index of class ", k, " is out of order at ", &s);
      smaller = &s;
    }
    if (std::string e = red_black_error(z); !e.empty())
      return check_fail("tree: size index of class ", k, ": ", e);
  }
  if (census != nullptr) *census = c;
  return CheckResult::ok();
}

}  // namespace ctxalloc::detail
