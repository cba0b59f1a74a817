// SizeClassAllocator: the small-object front of every thread heap. Sizes up to 2 KiB are
// rounded to one of 24 classes; each 64 KiB page serves one class from an intrusive LIFO
// free list; pages live in 4 MiB segments whose first page holds the page descriptors and
// a bitmap with one bit per 16-byte granule, set where a live block starts.
//
// Costs: allocate pops a free list and sets a bit; deallocate finds the page by masking
// the pointer, checks and clears the bit (so a double free or an interior pointer is
// caught in O(1), in every build), and pushes the block. No locks and no atomic
// read-modify-write on either path. Other threads give blocks back through a lock-free
// remote stack that the owner drains when a page runs dry.
//
// Memory tools: free blocks are poisoned (AddressSanitizer; the owner unpoisons a block
// before it reads its link) or marked no-access (valgrind's memcheck). Under memcheck no
// page is ever a class's current page, so every allocation and free takes a slow path,
// which marks; elsewhere the fast paths pay nothing for it.
//
// No canary: a block's whole class size is the caller's (Block::size, allocated_size,
// malloc_usable_size report it), so there is no slack a canary could use without
// changing what callers are told. Overruns are left to AddressSanitizer, which sees the
// next block poisoned when it is free.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ctxalloc/config.h"
#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/poison.h"
#include "ctxalloc/core/segment_map.h"

namespace ctxalloc {

namespace owner_kind {
/// The segments of a SizeClassAllocator (its tag at each segment's start). The only kind
/// below the switchable layer; that layer numbers its kinds from kFirstAbove on.
inline constexpr OwnerKind size_class{0};
inline constexpr std::uint8_t kFirstAbove = 1;
}  // namespace owner_kind

namespace detail {
/// The 24 classes: 16-byte steps to 128, then four steps per doubling to 2 KiB (at most
/// 25% internal waste above 128 B). They reach 2 KiB so that packet-sized buffers (up to
/// 1518 B frames, 2 KiB mbuf-like buffers) stay on the fast path: with classes only to
/// 1 KiB a per-packet workload (bench/switchable_workloads.h) would send its larger
/// requests to the medium tree, whose operations cost several times a class's.
inline constexpr std::array<std::uint16_t, 24> kSizeClasses = {
    16,  32,  48,  64,  80,  96,  112, 128,  160,  192,  224,  256,
    320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048};

/// Class of a size, indexed by the size in 16-byte granules rounded up (1 to 128).
inline constexpr std::array<std::uint8_t, 129> kClassOfGranules = [] {
  std::array<std::uint8_t, 129> t{};
  unsigned c = 0;
  for (unsigned g = 0; g <= 128; ++g) {
    while (c + 1 < kSizeClasses.size() && kSizeClasses[c] < g * 16U)
      ++c;
    t[g] = static_cast<std::uint8_t>(c);
  }
  return t;
}();
}  // namespace detail

/// Called first when a class's page runs dry, before any page is carved or taken: the
/// owner hands back blocks that wait elsewhere (a thread heap drains its remote frees).
struct RefillHook {
  void* context = nullptr;
  void (*fn)(void* context) noexcept = nullptr;
};

/// Where a SizeClassAllocator gets its segments (kSegmentSize bytes aligned to
/// kSegmentSize) and gives them back. Type-erased: it is only called on slow paths.
struct SegmentProvider {
  void* context = nullptr;
  Block (*obtain)(void* context) noexcept = nullptr;  ///< null Block when exhausted
  void (*release)(void* context, Block segment) noexcept = nullptr;
};

class SizeClassAllocator {
 public:
  static constexpr std::size_t kSegmentSize = SegmentMap::kSegmentSize;
  static constexpr unsigned kPageShift = 16;
  static constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;
  static constexpr std::size_t kPagesPerSegment = kSegmentSize / kPageSize;
  static constexpr unsigned kGranuleShift = 4;
  static constexpr std::size_t kGranule = std::size_t{1} << kGranuleShift;
  static constexpr std::size_t kMaxSize = 2048;
  static constexpr unsigned kClasses = 24;

  /// An allocator taking segments from provider, at most max_segments at once (0: no
  /// limit).
  explicit SizeClassAllocator(SegmentProvider provider, std::size_t max_segments = 0) noexcept;
  /// Gives every segment back; blocks still live become invalid.
  ~SizeClassAllocator();
  SizeClassAllocator(const SizeClassAllocator&) = delete;
  SizeClassAllocator& operator=(const SizeClassAllocator&) = delete;

  /// The class size a request of `size` bytes with `align` gets, or 0 when this
  /// allocator does not serve it (too large, or an alignment no class honours).
  static std::size_t class_size_for(std::size_t size, std::size_t align) noexcept;

  Block allocate(Layout layout) noexcept {
    if (layout.size - 1 < kMaxSize && layout.align <= kGranule) [[likely]] {
      return allocate_class(class_index(layout.size));
    }
    return allocate_slow(layout);
  }

  Block allocate_zeroed(Layout layout) noexcept {
    return detail::allocate_zeroed_by_fill(*this, layout);
  }

  /// Frees a block of this allocator (any size between the one asked and the one
  /// returned, or 0 when unknown). Foreign pointers, double frees and interior pointers
  /// are reported as misuse and otherwise ignored.
  void deallocate(Block block, std::size_t align) noexcept {
    const OwnerTag* tag = SegmentMap::lookup(block.ptr);
    if (tag == nullptr || tag->owner != this) [[unlikely]] {
      return deallocate_foreign(block);
    }
    if (CTXALLOC_CHECKS && misaligned(block.ptr, align)) return misaligned_free(block);
    free_owned(block.ptr, segment_of_tag(tag), block.size);
  }

  Block grow(Block block, Layout new_layout, Move move) noexcept;
  Block shrink(Block block, Layout new_layout, Move move) noexcept;

  bool contains(const void* p) const noexcept {
    const OwnerTag* tag = SegmentMap::lookup(p);
    return tag != nullptr && tag->owner == this;
  }

  /// Size of the live block starting at p (its class size), or 0 when p does not start a
  /// live block of this allocator.
  std::size_t allocated_size(const void* p) const noexcept;

  /// The class size of the page holding p, for a p the caller knows lies in a page of
  /// some SizeClassAllocator's segment. Reads only the page descriptor, which its owner
  /// does not change while a block of the page is live: safe from any thread while the
  /// block at p is live.
  static std::size_t class_size_at(const void* p) noexcept {
    return segment_of(p)->pages[offset_in_segment(p) >> kPageShift].block_size;
  }

  /// Frees a block owned by this allocator whose segment tag the caller already looked up
  /// (the switchable layer's fast path). Owner thread only. size 0: unknown.
  void free_owned(void* p, const OwnerTag* tag, std::size_t size = 0) noexcept {
    free_owned(p, segment_of_tag(tag), size);
  }

  /// allocate()'s fast path alone, for a caller whose own fast path must stay free of
  /// calls (the process allocator brackets it): a block of size bytes (1 to kMaxSize,
  /// default alignment) from its class's current page, or null -- nothing done -- where
  /// allocate() would refill the class.
  void* try_allocate_small(std::size_t size) noexcept { return pop_current(class_index(size)); }

  /// free_owned's fast path alone, likewise: true when p was freed; false, with nothing
  /// done, where free_owned would take a slow path (not a live block start, a size
  /// larger than the block's, or a page other than its class's current one).
  bool try_free_owned(void* p, const OwnerTag* tag, std::size_t size = 0) noexcept {
    Segment* seg = segment_of_tag(tag);
    const Page* page = page_of_word(seg, word_index(reinterpret_cast<std::uintptr_t>(p)));
    if (page->flags != 0) [[unlikely]]
      return false;
    return release_block(p, seg, size) != nullptr;
  }

  /// The tag every segment of this allocator is registered with carries
  /// owner_kind::size_class and `owner == this`.

  /// Gives a block back from a thread that does not own this allocator: lock-free push
  /// on the remote stack; the owner drains it. Checks happen when it is drained.
  void free_remote(void* p) noexcept { free_remote_chain(p, p); }
  /// Pushes a chain first -> ... -> last (linked through their first word) at once.
  void free_remote_chain(void* first, void* last) noexcept;

  /// Owner thread: applies every pending remote free now (also done when a page runs dry).
  void drain_remote() noexcept;

  Stats stats() const noexcept;
  CheckResult check_invariants() const;
  /// Bytes of live blocks (class sizes): one pass over the per-class counters.
  std::uint64_t bytes_in_use() const noexcept;

  /// Gives back everything that holds no live block: the classes' current pages when
  /// empty, then every empty segment (keep_one: all but one). Owner thread only.
  void trim(bool keep_one = false) noexcept;

  /// Segments held now.
  std::size_t segments() const noexcept { return segment_count_; }

  /// Sets the hook refill calls first (see RefillHook).
  void set_refill_hook(RefillHook hook) noexcept { hook_ = hook; }

  /// Frees a block the caller knows lies in one of this allocator's segments (it was
  /// looked up when it was handed to the caller's remote stack): the segment is found
  /// by masking. Owner thread only. Checks as free_owned.
  void free_trusted(void* p) noexcept { free_owned(p, segment_of(p), 0); }

  /// An opaque pointer for the object this allocator is part of (a thread heap), so
  /// that whoever finds the allocator through a segment tag finds its owner too.
  void set_user(void* user) noexcept { user_ = user; }
  void* user() const noexcept { return user_; }

 private:
  template <class>
  friend struct TestPeer;

  struct FreeBlock {
    FreeBlock* next;
  };

  /// One 64 KiB page: the blocks of one class. A cache line each.
  struct alignas(64) Page {
    FreeBlock* free;      // local free list (LIFO)
    std::byte* bump;      // next block never handed out (pages are carved lazily)
    std::byte* bump_end;  // where the last whole block of the page ends
    Page* next;           // in partial_[cls] or free_pages_
    Page* prev;
    std::uint32_t used;        // live blocks
    std::uint32_t block_size;  // 0 while the page is unused
    std::uint32_t capacity;    // blocks that fit
    std::uint8_t cls;
    std::uint8_t flags;   // kFull, kNotCurrent: any set bit sends a free to the slow path
    std::uint8_t listed;  // 1: in partial_[cls]
  };

  static constexpr std::uint8_t kFull = 1;        // no free block, listed nowhere
  static constexpr std::uint8_t kNotCurrent = 2;  // not its class's current page
  static constexpr std::size_t kBitmapWords = kSegmentSize / kGranule / 64;

  /// The first page of every segment: its tag (the segment map points here), the page
  /// descriptors and the live-block bitmap. pages[0] describes this header page itself
  /// and never serves blocks.
  struct Segment {
    OwnerTag tag;
    Segment* next;
    Segment* prev;
    std::uint32_t used_pages;
    Page pages[kPagesPerSegment];
    std::uint64_t live[kBitmapWords];  // bit per granule: a live block starts here
  };
  static_assert(sizeof(Segment) <= kPageSize, "segment header must fit in the first page");

  static unsigned class_index(std::size_t size) noexcept {  // size in [1, kMaxSize]
    return detail::kClassOfGranules[(size + kGranule - 1) >> kGranuleShift];
  }

  static Segment* segment_of(const void* p) noexcept {
    return reinterpret_cast<Segment*>(reinterpret_cast<std::uintptr_t>(p) & ~(kSegmentSize - 1));
  }
  static Segment* segment_of_tag(const OwnerTag* tag) noexcept {
    return reinterpret_cast<Segment*>(const_cast<OwnerTag*>(tag));
  }
  static std::uintptr_t offset_in_segment(const void* p) noexcept {
    return reinterpret_cast<std::uintptr_t>(p) & (kSegmentSize - 1);
  }

  // The live bitmap word of the granule at address a, and the bit in it. The word index
  // is also the page's: with 64-byte descriptors, page i's descriptor sits at byte
  // (word index & ~63) of pages[], which saves a shift on the free path.
  static std::size_t word_index(std::uintptr_t a) noexcept {
    return (a >> (kGranuleShift + 6)) & (kBitmapWords - 1);
  }
  static std::uint64_t bit_of(std::uintptr_t a) noexcept {
    return std::uint64_t{1} << ((a >> kGranuleShift) & 63);
  }
  static Page* page_of_word(Segment* seg, std::size_t w) noexcept {
    static_assert(sizeof(Page) == 64 && kPageSize / kGranule / 64 == 64);
    return reinterpret_cast<Page*>(reinterpret_cast<std::byte*>(seg->pages) +
                                   (w & ~std::size_t{63}));
  }

  // Pops a block of the class's current page and marks it live; null when the page has
  // no free block.
  FreeBlock* pop_current(unsigned cls) noexcept {
    Page* page = current_[cls];
    FreeBlock* b = page->free;
    if (b == nullptr) [[unlikely]]
      return nullptr;
    detail::asan_unpoison(b, page->block_size);  // its link first, then the caller's bytes
    page->free = b->next;
    ++page->used;
    const auto a = reinterpret_cast<std::uintptr_t>(b);
    segment_of(b)->live[word_index(a)] |= bit_of(a);
    class_allocs_[cls].add(1);
    return b;
  }

  Block allocate_class(unsigned cls) noexcept {
    FreeBlock* b = pop_current(cls);
    if (b == nullptr) [[unlikely]]
      return refill(cls);
    return Block{reinterpret_cast<std::byte*>(b), current_[cls]->block_size};
  }

  // Checks that p starts a live block no smaller than size, clears its bit and pushes it
  // on its page's list; returns the page, or null (nothing done) when the check fails.
  Page* release_block(void* p, Segment* seg, std::size_t size) noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const std::size_t w = word_index(a);
    std::uint64_t& word = seg->live[w];
    const std::uint64_t bit = bit_of(a);
    Page* page = page_of_word(seg, w);
    // Not a live block start: a double free, an interior pointer, or the header page.
    if ((word & bit) == 0 || size > page->block_size) [[unlikely]]
      return nullptr;
    word &= ~bit;
    auto* b = static_cast<FreeBlock*>(p);
    b->next = page->free;
    page->free = b;
    class_frees_[page->cls].add(1);
    --page->used;
    detail::asan_poison(p, page->block_size);
    return page;
  }

  void free_owned(void* p, Segment* seg, std::size_t size) noexcept {
    Page* page = release_block(p, seg, size);
    if (page == nullptr) [[unlikely]]
      return bad_free(p, size);
    // The common case (the class's current page) tests one byte; other pages check
    // whether they became empty (retire) or were full (re-list) on the slow path.
    if (page->flags != 0) [[unlikely]]
      after_free_slow(page, p);
  }

  [[gnu::noinline]] Block allocate_slow(Layout layout) noexcept;
  [[gnu::noinline]] Block refill(unsigned cls) noexcept;
  Block allocate_tooled(unsigned cls) noexcept;
  [[gnu::noinline]] void after_free_slow(Page* page, void* p) noexcept;
  [[gnu::noinline]] void deallocate_foreign(Block block) noexcept;
  [[gnu::noinline]] void bad_free(void* p, std::size_t size) noexcept;
  [[gnu::noinline, gnu::cold]] void misaligned_free(Block block) noexcept;
  void misuse(Misuse what, const void* p, const char* op) noexcept;
  // The link of a free block, read without a report from the memory tools.
  static const FreeBlock* read_link(const FreeBlock* b) noexcept {
    detail::unpoison(b, sizeof *b);
    const FreeBlock* next = b->next;
    detail::poison(b, sizeof *b);
    return next;
  }

  Page* new_page(unsigned cls) noexcept;
  bool new_segment() noexcept;
  void retire_page(Page* page) noexcept;
  void release_segment(Segment* seg) noexcept;
  bool extend(Page* page) noexcept;
  static void list_push(Page** head, Page* page) noexcept;
  static void list_remove(Page** head, Page* page) noexcept;

  Page* current_[kClasses];
  Page* partial_[kClasses];  // pages with free blocks other than current_
  Page* free_pages_ = nullptr;
  Segment* segments_ = nullptr;
  std::size_t segment_count_ = 0;
  std::size_t max_segments_;
  SegmentProvider provider_;
  RefillHook hook_;
  void* user_ = nullptr;
  // Under memcheck (or a test asking for it) no page becomes current: every request goes
  // through refill and every free through after_free_slow, which mark for the tool.
  bool tool_paths_;
  std::atomic<FreeBlock*> remote_{nullptr};
  Relaxed<std::uint64_t> peak_;
  // Allocations and frees per class: one add each on the fast paths; allocations,
  // deallocations and bytes in use are their sums (stats()).
  Counter class_allocs_[kClasses];
  Counter class_frees_[kClasses];
  StatsCounters counters_;  // failures, misuses, grows, shrinks
};

static_assert(Allocator<SizeClassAllocator>);

}  // namespace ctxalloc
