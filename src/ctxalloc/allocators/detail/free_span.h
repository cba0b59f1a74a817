// A free span of a TreeAllocator region: a run of free granules between live blocks (or
// region ends), which carries its own bookkeeping because nobody else uses that memory:
//   [ address hook: 24 B ][ length | flags: 8 B ][ size hook: 24 B ] ... [ length: 8 B ]
// The address hook links the span into the address-ordered tree of its size class
// (Boost's intrusive rbtree, colour packed into the parent pointer, so a hook is 3
// words). The size hook links it into its class's size index, ordered by (length,
// address), which finds the best-fitting span of a class in O(log n). Only spans of at
// least two granules (>= 64 B) have a size hook: one-granule spans (class 0) never fit a
// search, and the top class is not indexed (every span in it fits every request). So a
// one-granule span needs just its first 32 bytes. The footer repeats the length at the
// span's end, so that freeing the block right after the span finds the span's start
// without a search (the granule map says the granule before is a free tail). For a
// one-granule span at 32 B granules the footer is the length word itself.
#pragma once

#include <boost/intrusive/set.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>

namespace ctxalloc::detail {

namespace bi = boost::intrusive;

using SpanHook = bi::set_member_hook<bi::link_mode<bi::normal_link>, bi::optimize_size<true>>;

struct FreeSpan {
  /// The span covers its whole region: the region is entirely free and can be given back.
  static constexpr std::size_t kWholeRegion = 1;
  /// Flags live in the low bits of `word`, which lengths (multiples of >= 32) leave free.
  static constexpr std::size_t kFlagMask = 31;

  SpanHook hook;
  std::size_t word;
  SpanHook by_size;  // only in spans of >= 2 granules (see above)

  /// Bytes of the span the allocator itself reads and writes at its start.
  static constexpr std::size_t node_bytes(std::size_t length) noexcept {
    return length < sizeof(FreeSpan) + sizeof(std::size_t) ? 32 : sizeof(FreeSpan);
  }

  std::size_t length() const noexcept { return word & ~kFlagMask; }
  bool whole_region() const noexcept { return (word & kWholeRegion) != 0; }
  std::byte* begin() noexcept { return reinterpret_cast<std::byte*>(this); }
  const std::byte* begin() const noexcept { return reinterpret_cast<const std::byte*>(this); }
  const std::byte* end() const noexcept { return begin() + length(); }

  /// Builds a span's node at p (placement: no allocation) and writes its footer.
  static FreeSpan* create(std::byte* p, std::size_t length, std::size_t flags = 0) noexcept {
    auto* s = new (p) FreeSpan;
    s->word = length | flags;
    store_footer(p + length, length | flags);  // one word with `word` in one-granule spans
    return s;
  }

  /// The span's node at p, which must be the start of a free span.
  static FreeSpan* at(std::byte* p) noexcept {
    return std::launder(reinterpret_cast<FreeSpan*>(p));
  }
  static const FreeSpan* at(const std::byte* p) noexcept {
    return std::launder(reinterpret_cast<const FreeSpan*>(p));
  }

  /// The footer of the span that ends at `end`: its length (flags, stored too because a
  /// one-granule span's footer is its `word`, masked off).
  static std::size_t load_footer(const std::byte* end) noexcept {
    std::size_t v;
    std::memcpy(&v, end - sizeof v, sizeof v);
    return v & ~kFlagMask;
  }
  static void store_footer(std::byte* end, std::size_t length) noexcept {
    std::memcpy(end - sizeof length, &length, sizeof length);
  }
};

static_assert(offsetof(FreeSpan, word) + sizeof(std::size_t) == 32,
              "a one-granule span's node and footer must fit in 32 bytes");
static_assert(sizeof(FreeSpan) + sizeof(std::size_t) <= 64,
              "a two-granule span must hold both hooks and a footer");

/// Orders spans (and looks them up) by address.
struct SpanAddressLess {
  bool operator()(const FreeSpan& a, const FreeSpan& b) const noexcept {
    return std::less<const void*>{}(&a, &b);
  }
  bool operator()(const void* a, const FreeSpan& b) const noexcept {
    return std::less<const void*>{}(a, &b);
  }
  bool operator()(const FreeSpan& a, const void* b) const noexcept {
    return std::less<const void*>{}(&a, b);
  }
};

/// The free spans of one size class, in address order. begin() (the lowest address) is
/// O(1); insert and erase are O(log n); replacing a node by one at another address that
/// keeps the order (a span that moved its start) is O(1).
using SpanTree = bi::set<FreeSpan, bi::member_hook<FreeSpan, SpanHook, &FreeSpan::hook>,
                         bi::compare<SpanAddressLess>, bi::constant_time_size<true>>;

/// Orders spans by (length, address); looks up the first span of at least n bytes.
struct SpanSizeLess {
  bool operator()(const FreeSpan& a, const FreeSpan& b) const noexcept {
    return a.length() < b.length() ||
           (a.length() == b.length() && std::less<const void*>{}(&a, &b));
  }
  bool operator()(const FreeSpan& a, std::size_t n) const noexcept { return a.length() < n; }
  bool operator()(std::size_t n, const FreeSpan& b) const noexcept { return n < b.length(); }
};

/// The size index of one class: lower_bound(n) is the shortest span of at least n bytes
/// (the lowest-addressed of equal ones), in O(log n).
using SizeTree = bi::set<FreeSpan, bi::member_hook<FreeSpan, SpanHook, &FreeSpan::by_size>,
                         bi::compare<SpanSizeLess>, bi::constant_time_size<true>>;

}  // namespace ctxalloc::detail
