// FlowChunks: the chunks growing contexts (growing_context.h) are made of, one pool per
// thread heap (a DPDK lcore's). A chunk is a power of two from 256 B to 64 KiB, aligned
// to its size, and starts with a 16-byte ChunkHeader naming the context that owns it,
// so that free(p) finds the owner from the address alone, in O(1):
//
//   SegmentMap::lookup(p) -> the segment's record (the tag is its first member, at the
//   segment's start) -> the page record of p's 64 KiB page -> the chunk size -> p masked
//   to the chunk -> ChunkHeader::owner.
//
// Layout, after mimalloc's segments and pages: 4 MiB segments from a SegmentSource,
// registered in the SegmentMap under their own record (kind flow_chunk); each segment is
// 64 pages of 64 KiB, and each page, while in use, holds chunks of one size. The record
// (2.1 KiB) sits in the first 4 KiB of page 0, so page 0 only takes chunks of 4 KiB or
// less (they stay aligned to their size after it). A page has its own LIFO list of free
// chunks and a carving index; the pages of a size with a free chunk are listed, so
// obtain and release are a few loads and stores. A page whose chunks are all back goes
// back to its segment (unless it is the size's only spare), where any size can take it;
// a segment whose pages are all free goes back to its source (one spare is kept, or as
// many as set_spare_segments says), so memory moves between chunk sizes as the flows'
// needs change.
//
// Two uses, each from its own source (a DPDK lcore reserves both at set-up, from its
// flow memory): `first` chunks (every context's first chunk; sized to hold one per
// allowed flow, so that admitting a flow never fails for memory) and `growth` chunks
// (further chunks and child contexts). Elsewhere both are the heap's own segments.
//
// Owner thread only (the heap's thread), like the heap's other parts; counters may be
// read from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ctxalloc/core/check.h"
#include "ctxalloc/core/segment_map.h"
#include "ctxalloc/core/stats.h"

namespace ctxalloc {

class GrowingContext;
class SegmentSource;
class ThreadHeap;

/// The first 16 bytes of every chunk.
struct ChunkHeader {
  GrowingContext* owner;  ///< the context holding the chunk; kReleasedOwner in the pool
  ChunkHeader* next;      ///< the owner's next older chunk; the page's free list in the pool
};

/// The owner of a chunk that is back in its pool: a late free into it is recognised.
inline GrowingContext* const kReleasedOwner =
    reinterpret_cast<GrowingContext*>(std::uintptr_t{0x7e1ea5edUL});

/// How growing contexts of a pool are shaped (docs/design.md, "switchable").
struct GrowingOptions {
  std::size_t first_chunk = 1024;  ///< a context's first chunk (power of two, 256 B..64 KiB)
  std::size_t max_chunk = 16384;   ///< the largest chunk a context grows by (<= 64 KiB)
  std::size_t child_chunk = 256;   ///< a child context's first chunk
  /// Requests of this size or more are separate blocks owned by the context (from the
  /// heap's spill tree); at most max_chunk / 2, so that a smaller one always fits a chunk.
  std::size_t large_block = 4096;
  std::size_t budget = 0;  ///< bytes a root context and its children may hold (0: no bound)

  /// Why these options cannot work, or null.
  const char* invalid() const noexcept;
};

/// Why a growing context refused a request (each counted in FlowChunks).
enum class Refusal : std::uint8_t {
  budget,     ///< the context (its root) would hold more than its budget
  memory,     ///< no chunk and no fallback tier could serve it
  too_large,  ///< larger than any tier serves
  limit,      ///< a context was refused: the pool's context limit is reached
  kCount,
};
const char* to_string(Refusal r) noexcept;

class FlowChunks {
 public:
  static constexpr unsigned kMinShift = 8;   // 256 B
  static constexpr unsigned kMaxShift = 16;  // 64 KiB: one page
  static constexpr unsigned kClasses = kMaxShift - kMinShift + 1;
  static constexpr unsigned kPageShift = 16;
  static constexpr std::size_t kPageBytes = std::size_t{1} << kPageShift;
  static constexpr unsigned kPages = SegmentMap::kSegmentSize / kPageBytes;  // 64
  static constexpr std::size_t kRecordBytes = 4096;  // of page 0, for the segment record
  static constexpr std::size_t kPage0MaxChunk = kRecordBytes;

  enum class Use : std::uint8_t { first = 0, growth = 1 };

  /// A pool for `heap`, taking segments from `source` for both uses until set_sources().
  FlowChunks(ThreadHeap* heap, SegmentSource& source) noexcept;
  /// Gives every segment back; chunks still out are misuse (live on release), and their
  /// segments are then kept rather than pulled from under them.
  ~FlowChunks();
  FlowChunks(const FlowChunks&) = delete;
  FlowChunks& operator=(const FlowChunks&) = delete;

  /// Where each use takes its segments. Only while the pool holds no segment.
  bool set_sources(SegmentSource* first, SegmentSource* growth) noexcept;
  /// The contexts' shape; false (and nothing changed) when invalid() or while contexts
  /// are live.
  bool set_options(const GrowingOptions& o) noexcept;
  const GrowingOptions& options() const noexcept { return options_; }
  /// At most `n` contexts live at once (0: no limit); refusals counted as Refusal::limit.
  void set_context_limit(std::uint64_t n) noexcept {
    context_limit_ = n == 0 ? ~std::uint64_t{0} : n;
    set_fast_below();
  }
  std::uint64_t context_limit() const noexcept { return context_limit_; }
  /// Segments whose pages are all free that the pool keeps, per use, rather than give
  /// back to the source (default 1). More keeps the memory warm (no first-touch page
  /// faults when the flows come back, on an mmap source); trim() gives them back.
  void set_spare_segments(std::uint32_t n) noexcept { keep_spares_ = n; }
  std::uint32_t spare_segments() const noexcept { return keep_spares_; }

  ThreadHeap* heap() const noexcept { return heap_; }
  SegmentSource* source(Use u) const noexcept { return sources_[static_cast<unsigned>(u)]; }
  /// Bytes of a root context's first chunk (options().first_chunk).
  std::size_t first_bytes() const noexcept { return first_bytes_; }
  /// Whether contexts tell the memory tools about their memory in their slow paths only
  /// (under valgrind's memcheck: detail::pool_slow_paths() when the options were set).
  bool tools() const noexcept { return tools_; }
  /// The class (size index) of the options' chunk sizes.
  unsigned first_class() const noexcept { return first_class_; }
  unsigned child_class() const noexcept { return child_class_; }
  unsigned max_class() const noexcept { return max_class_; }
  static constexpr std::size_t class_bytes(unsigned cls) noexcept {
    return std::size_t{1} << (cls + kMinShift);
  }

  /// A chunk of class `cls` for `use` (its header not written), or null when the
  /// source refuses. O(1): a pop from the page's free list, or a carve.
  ChunkHeader* obtain(unsigned cls, Use use) noexcept {
    Page* pg = avail_[static_cast<unsigned>(use)][cls];
    if (pg == nullptr) [[unlikely]]
      return obtain_slow(cls, use);
    ChunkHeader* c = pg->free;
    if (c != nullptr) {
      pg->free = c->next;
    } else {
      c = carve(pg);
    }
    if (--pg->room == 0) [[unlikely]]
      unlist(pg);
    return c;
  }

  /// Puts a chunk back (its owner becomes kReleasedOwner). O(1).
  void release(ChunkHeader* c) noexcept {
    Page* pg = page_of(c);
    c->owner = kReleasedOwner;
    c->next = pg->free;
    pg->free = c;
    if (pg->room++ == 0 || pg->room == pg->capacity) [[unlikely]]
      after_release_slow(pg);
  }

  /// The bytes of the chunk at c (a chunk of this kind of pool).
  static std::size_t chunk_bytes(const ChunkHeader* c) noexcept {
    return std::size_t{1} << page_of(c)->shift;
  }
  /// The carved chunk holding p, where `tag` is p's segment tag (kind flow_chunk), or
  /// null when p lies in no carved chunk (the record, an unused page, past the carving).
  static ChunkHeader* chunk_of(const void* p, const OwnerTag* tag) noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const auto* s = reinterpret_cast<const Segment*>(tag);  // the tag is the record's start
    const unsigned i = static_cast<unsigned>((a >> kPageShift) & (kPages - 1));
    const Page& pg = s->pages[i];
    if (pg.shift == 0) return nullptr;
    const std::uintptr_t first =
        reinterpret_cast<std::uintptr_t>(s) + i * kPageBytes + (i == 0 ? kRecordBytes : 0);
    if (a < first) return nullptr;
    const std::uintptr_t c = a & ~((std::uintptr_t{1} << pg.shift) - 1);
    if (((c - first) >> pg.shift) >= pg.carved) return nullptr;
    return reinterpret_cast<ChunkHeader*>(c);
  }
  /// The pool of a flow_chunk segment tag.
  static FlowChunks* of_tag(const OwnerTag* tag) noexcept {
    return static_cast<FlowChunks*>(tag->owner);
  }

  // ------------------------------------------------------------------ context counts
  /// Called by GrowingContext::create / release (kept here so that an lcore's figures
  /// are one object's). The inline create takes a context while fewer are live than
  /// min(context limit, peak so far) (0 under the memory tools): then it is neither
  /// refused nor a new peak, so the limit and the peak cost one compare; otherwise it
  /// takes the slow path, which asks admit_context() and calls new_peak().
  bool create_is_plain() const noexcept { return contexts_live_.get() < fast_below_; }
  bool admit_context() noexcept {
    if (contexts_live_.get() >= context_limit_) [[unlikely]] {
      refuse(Refusal::limit);
      return false;
    }
    return true;
  }
  void context_made() noexcept {
    contexts_made_.add(1);
    contexts_live_.add(1);
  }
  void new_peak() noexcept {
    if (contexts_live_.get() > peak_contexts_.get()) peak_contexts_.set(contexts_live_.get());
    set_fast_below();
  }
  void context_released() noexcept { contexts_live_.sub(1); }
  void refuse(Refusal r) noexcept { refusals_[static_cast<unsigned>(r)].add(1); }
  void count_large(std::size_t bytes) noexcept {
    large_blocks_.add(1);
    large_bytes_.add(bytes);
  }
  void uncount_large(std::size_t bytes) noexcept { large_bytes_.sub(bytes); }
  void count_spill(bool global) noexcept { (global ? spills_global_ : spills_thread_).add(1); }

  struct Figures {
    std::uint64_t contexts_made = 0, contexts_released = 0, contexts_live = 0, peak_contexts = 0;
    std::uint64_t refusals[static_cast<unsigned>(Refusal::kCount)] = {};
    std::uint64_t chunk_bytes = 0;    ///< in chunks handed out now
    std::uint64_t large_blocks = 0;   ///< made in all
    std::uint64_t large_bytes = 0;    ///< held now (spill-tree blocks on the flow memory)
    std::uint64_t spills_thread = 0;  ///< requests served on the thread's own memory
    std::uint64_t spills_global = 0;  ///< ... on the global heap's
    std::uint64_t segments[2] = {};   ///< held now, per use
    std::uint64_t peak_segments[2] = {};
    std::uint64_t pages_in_use = 0;
  };
  Figures figures() const noexcept;
  /// Bytes of segments the pool holds now (both uses).
  std::size_t segment_bytes() const noexcept;

  /// Gives back every segment that holds no chunk (the spares too).
  void trim() noexcept;
  /// Walks every segment, page and free list: counts, links, classes, carving.
  CheckResult check_invariants() const;

 private:
  template <class>
  friend struct TestPeer;
  struct Segment;

  struct Page {
    ChunkHeader* free;  // free chunks of this page
    Page* next;         // in its size's list of pages with room (when listed)
    Page* prev;
    std::uint16_t carved;    // chunks carved so far
    std::uint16_t capacity;  // chunks the page holds
    std::uint16_t room;      // chunks it can still hand out (capacity - chunks out)
    std::uint8_t shift;      // log2 of the chunk size; 0 while the page is unused
    std::uint8_t listed;     // on its size's list
    unsigned out() const noexcept { return capacity - room; }  // chunks handed out
  };
  static_assert(sizeof(Page) == 32);

  struct Segment {
    OwnerTag tag;  // first: the SegmentMap slot points here, at the segment's start
    FlowChunks* pool;
    Segment* next;
    Segment* prev;
    std::uint64_t unused_pages;  // bit i: page i holds no chunk size
    Use use;
    Page pages[kPages];
  };
  static_assert(sizeof(Segment) <= kRecordBytes);

  static Segment* segment_of(const void* p) noexcept {
    return reinterpret_cast<Segment*>(reinterpret_cast<std::uintptr_t>(p) &
                                      ~(SegmentMap::kSegmentSize - 1));
  }
  static Page* page_of(const void* p) noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return &segment_of(p)->pages[(a >> kPageShift) & (kPages - 1)];
  }
  static std::byte* page_start(const Page* pg) noexcept;
  static std::size_t page_offset(const Page* pg) noexcept;  // kRecordBytes for page 0
  ChunkHeader* carve(Page* pg) noexcept;
  void set_fast_below() noexcept {
    const std::uint64_t peak = peak_contexts_.get();
    fast_below_ = tools_ ? 0 : peak < context_limit_ ? peak : context_limit_;
  }
  void list(Page* pg) noexcept;
  void unlist(Page* pg) noexcept;
  [[gnu::noinline]] ChunkHeader* obtain_slow(unsigned cls, Use use) noexcept;
  [[gnu::noinline]] void after_release_slow(Page* pg) noexcept;
  Page* new_page(unsigned cls, Use use) noexcept;
  void clear_page(Page* pg) noexcept;  // back to its segment, nothing more
  void free_page(Page* pg) noexcept;   // the same, then the segment's fate
  Segment* new_segment(Use use) noexcept;
  void free_segment(Segment* s) noexcept;
  void link_segment_front(Segment* s) noexcept;
  void link_segment_back(Segment* s) noexcept;
  void unlink_segment(Segment* s) noexcept;

  ThreadHeap* heap_;
  SegmentSource* sources_[2];
  GrowingOptions options_{};
  unsigned first_class_ = 2, child_class_ = 0, max_class_ = 6;
  std::uint32_t first_bytes_ = 1024;
  bool tools_ = false;
  std::uint64_t context_limit_ = ~std::uint64_t{0};
  std::uint64_t fast_below_ = 0;   // create_is_plain() while fewer contexts are live
  Page* avail_[2][kClasses] = {};  // pages with room, per use and size
  // Segments held, per use: those with an unused page first, full ones after.
  Segment* segments_[2] = {};
  Segment* last_[2] = {};
  std::uint32_t spare_segments_[2] = {};  // held with every page unused
  std::uint32_t keep_spares_ = 1;         // spare segments kept per use

  Counter contexts_made_, contexts_live_, peak_contexts_;
  Counter refusals_[static_cast<unsigned>(Refusal::kCount)];
  Counter large_blocks_, large_bytes_, spills_thread_, spills_global_;
  Counter segment_count_[2], peak_segment_count_[2], pages_in_use_;
};

}  // namespace ctxalloc
