#include "ctxalloc/switchable/flow_chunks.h"

#include <new>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/poison.h"
#include "ctxalloc/switchable/owner.h"
#include "ctxalloc/switchable/segment_source.h"

namespace ctxalloc {

namespace {
constexpr std::size_t kSeg = SegmentMap::kSegmentSize;
constexpr unsigned kChunkHeader = sizeof(ChunkHeader);
}  // namespace

const char* GrowingOptions::invalid() const noexcept {
  constexpr std::size_t kMin = FlowChunks::class_bytes(0);
  constexpr std::size_t kMax = FlowChunks::class_bytes(FlowChunks::kClasses - 1);
  const auto pow2_in = [](std::size_t v) { return is_pow2(v) && v >= kMin && v <= kMax; };
  if (!pow2_in(first_chunk)) return "first_chunk is not a power of two from 256 B to 64 KiB";
  if (!pow2_in(max_chunk)) return "max_chunk is not a power of two from 256 B to 64 KiB";
  if (!pow2_in(child_chunk)) return "child_chunk is not a power of two from 256 B to 64 KiB";
  if (max_chunk < first_chunk) return "max_chunk is below first_chunk";
  if (max_chunk < child_chunk) return "max_chunk is below child_chunk";
  if (large_block < 64) return "large_block is below 64 B";
  if (large_block > max_chunk / 2) return "large_block is above half of max_chunk";
  if (budget != 0 && budget < first_chunk) return "budget is below first_chunk";
  if (budget > 0xffff'ffffULL) return "budget is above 4 GiB";
  return nullptr;
}

const char* to_string(Refusal r) noexcept {
  switch (r) {
    case Refusal::budget:
      return "budget";
    case Refusal::memory:
      return "memory";
    case Refusal::too_large:
      return "too_large";
    case Refusal::limit:
      return "limit";
    case Refusal::kCount:
      break;
  }
  return "?";
}

FlowChunks::FlowChunks(ThreadHeap* heap, SegmentSource& source) noexcept
    : heap_(heap), sources_{&source, &source} {
  set_options(GrowingOptions{});
}

FlowChunks::~FlowChunks() {
  trim();
  for (Segment* s : segments_) {
    if (s != nullptr) {
      // Chunks still out: their contexts were never released. Keep the memory.
      report_misuse(Misuse::live_on_release, "flow_chunks", "~FlowChunks", s);
      break;
    }
  }
}

bool FlowChunks::set_sources(SegmentSource* first, SegmentSource* growth) noexcept {
  if (segments_[0] != nullptr || segments_[1] != nullptr || first == nullptr || growth == nullptr)
    return false;
  sources_[0] = first;
  sources_[1] = growth;
  return true;
}

bool FlowChunks::set_options(const GrowingOptions& o) noexcept {
  if (o.invalid() != nullptr) return false;
  if (contexts_live_.get() != 0) return false;
  options_ = o;
  first_class_ = log2_floor(o.first_chunk) - kMinShift;
  first_bytes_ = static_cast<std::uint32_t>(o.first_chunk);
  tools_ = detail::pool_slow_paths();
  set_fast_below();
  child_class_ = log2_floor(o.child_chunk) - kMinShift;
  max_class_ = log2_floor(o.max_chunk) - kMinShift;
  return true;
}

// ------------------------------------------------------------------ pages

std::byte* FlowChunks::page_start(const Page* pg) noexcept {
  Segment* s = segment_of(pg);
  return reinterpret_cast<std::byte*>(s) + static_cast<std::size_t>(pg - s->pages) * kPageBytes;
}

std::size_t FlowChunks::page_offset(const Page* pg) noexcept {
  return pg == &segment_of(pg)->pages[0] ? kRecordBytes : 0;
}

ChunkHeader* FlowChunks::carve(Page* pg) noexcept {
  std::byte* c = page_start(pg) + page_offset(pg) + (std::size_t{pg->carved} << pg->shift);
  ++pg->carved;
  detail::unpoison(c, kChunkHeader);  // the rest stays poisoned until its owner uses it
  return reinterpret_cast<ChunkHeader*>(c);
}

void FlowChunks::list(Page* pg) noexcept {
  const unsigned use = static_cast<unsigned>(segment_of(pg)->use);
  Page*& head = avail_[use][pg->shift - kMinShift];
  pg->prev = nullptr;
  pg->next = head;
  if (head != nullptr) head->prev = pg;
  head = pg;
  pg->listed = 1;
}

void FlowChunks::unlist(Page* pg) noexcept {
  const unsigned use = static_cast<unsigned>(segment_of(pg)->use);
  Page*& head = avail_[use][pg->shift - kMinShift];
  if (pg->prev != nullptr) {
    pg->prev->next = pg->next;
  } else {
    head = pg->next;
  }
  if (pg->next != nullptr) pg->next->prev = pg->prev;
  pg->next = pg->prev = nullptr;
  pg->listed = 0;
}

ChunkHeader* FlowChunks::obtain_slow(unsigned cls, Use use) noexcept {
  if (cls >= kClasses) return nullptr;
  if (new_page(cls, use) == nullptr) return nullptr;
  return obtain(cls, use);  // the new page is listed now
}

void FlowChunks::after_release_slow(Page* pg) noexcept {
  if (pg->room == 1 && !pg->listed) list(pg);  // it was full
  if (pg->room != pg->capacity) return;
  // Empty: keep it when it is its size's only page with room (the next obtain would take
  // a page again), else give it back to its segment.
  const unsigned use = static_cast<unsigned>(segment_of(pg)->use);
  if (avail_[use][pg->shift - kMinShift] == pg && pg->next == nullptr) return;
  free_page(pg);
}

FlowChunks::Page* FlowChunks::new_page(unsigned cls, Use use) noexcept {
  const unsigned shift = cls + kMinShift;
  // Page 0 holds the record: only chunks of 4 KiB or less fit after it, still aligned.
  const std::uint64_t eligible = shift <= log2_floor(kPage0MaxChunk) ? ~0ULL : ~1ULL;
  const unsigned u = static_cast<unsigned>(use);
  Segment* s = segments_[u];
  while (s != nullptr && (s->unused_pages & eligible) == 0 && s->unused_pages != 0)
    s = s->next;
  if (s == nullptr || (s->unused_pages & eligible) == 0) s = new_segment(use);
  if (s == nullptr) return nullptr;
  const bool was_spare = s->unused_pages == ~0ULL;
  const unsigned i = lowest_bit_index(s->unused_pages & eligible);
  s->unused_pages &= ~(1ULL << i);
  if (was_spare) --spare_segments_[u];
  if (s->unused_pages == 0) {  // full: to the back, behind the segments with room
    unlink_segment(s);
    link_segment_back(s);
  }
  Page* pg = &s->pages[i];
  pg->free = nullptr;
  pg->carved = 0;
  pg->shift = static_cast<std::uint8_t>(shift);
  pg->capacity = static_cast<std::uint16_t>((kPageBytes - page_offset(pg)) >> shift);
  pg->room = pg->capacity;
  list(pg);
  pages_in_use_.add(1);
  return pg;
}

void FlowChunks::clear_page(Page* pg) noexcept {
  if (pg->listed) unlist(pg);
  detail::poison(page_start(pg) + page_offset(pg), kPageBytes - page_offset(pg));
  pg->shift = 0;
  pg->free = nullptr;
  pg->carved = pg->capacity = pg->room = 0;
  pages_in_use_.sub(1);
  Segment* s = segment_of(pg);
  const bool was_full = s->unused_pages == 0;
  s->unused_pages |= 1ULL << (pg - s->pages);
  if (was_full) {  // it has room again: to the front
    unlink_segment(s);
    link_segment_front(s);
  }
}

void FlowChunks::free_page(Page* pg) noexcept {
  clear_page(pg);
  Segment* s = segment_of(pg);
  if (s->unused_pages != ~0ULL) return;
  // Every page unused: keep keep_spares_ such segments per use, give back the rest.
  const unsigned u = static_cast<unsigned>(s->use);
  if (spare_segments_[u] >= keep_spares_) {
    free_segment(s);
  } else {
    ++spare_segments_[u];
  }
}

// ------------------------------------------------------------------ segments

void FlowChunks::link_segment_front(Segment* s) noexcept {
  const unsigned u = static_cast<unsigned>(s->use);
  s->prev = nullptr;
  s->next = segments_[u];
  if (segments_[u] != nullptr) {
    segments_[u]->prev = s;
  } else {
    last_[u] = s;
  }
  segments_[u] = s;
}

void FlowChunks::link_segment_back(Segment* s) noexcept {
  const unsigned u = static_cast<unsigned>(s->use);
  s->next = nullptr;
  s->prev = last_[u];
  if (last_[u] != nullptr) {
    last_[u]->next = s;
  } else {
    segments_[u] = s;
  }
  last_[u] = s;
}

void FlowChunks::unlink_segment(Segment* s) noexcept {
  const unsigned u = static_cast<unsigned>(s->use);
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    segments_[u] = s->next;
  }
  if (s->next != nullptr) {
    s->next->prev = s->prev;
  } else {
    last_[u] = s->prev;
  }
  s->next = s->prev = nullptr;
}

FlowChunks::Segment* FlowChunks::new_segment(Use use) noexcept {
  const unsigned u = static_cast<unsigned>(use);
  const Block b = sources_[u]->obtain(1);
  if (b.ptr == nullptr) return nullptr;
  detail::unpoison(b.ptr, kRecordBytes);
  auto* s = new (b.ptr) Segment{};
  s->tag = OwnerTag{owner_kind::flow_chunk, this};
  s->pool = this;
  s->unused_pages = ~0ULL;
  s->use = use;
  if (!SegmentMap::register_range(b.ptr, kSeg, &s->tag)) {
    sources_[u]->release(b);
    return nullptr;
  }
  detail::poison(b.ptr + kRecordBytes, kSeg - kRecordBytes);
  link_segment_front(s);
  ++spare_segments_[u];
  segment_count_[u].add(1);
  if (segment_count_[u].get() > peak_segment_count_[u].get())
    peak_segment_count_[u].set(segment_count_[u].get());
  return s;
}

void FlowChunks::free_segment(Segment* s) noexcept {
  const unsigned u = static_cast<unsigned>(s->use);
  unlink_segment(s);
  SegmentMap::unregister_range(s, kSeg, &s->tag);
  segment_count_[u].sub(1);
  auto* base = reinterpret_cast<std::byte*>(s);
  s->~Segment();
  detail::unpoison(base, kSeg);  // back to its source addressable, as it came
  sources_[u]->release(Block{base, kSeg});
}

void FlowChunks::trim() noexcept {
  for (unsigned u = 0; u < 2; ++u) {
    Segment* s = segments_[u];
    while (s != nullptr) {
      Segment* next = s->next;  // clear_page may move s to the front: next is kept
      const bool was_spare = s->unused_pages == ~0ULL;
      // Empty pages kept as their size's only page with room go too.
      for (unsigned i = 0; i < kPages; ++i) {
        Page& pg = s->pages[i];
        if (pg.shift != 0 && pg.out() == 0) clear_page(&pg);
      }
      if (s->unused_pages == ~0ULL) {
        if (was_spare) --spare_segments_[u];
        free_segment(s);
      }
      s = next;
    }
  }
}

std::size_t FlowChunks::segment_bytes() const noexcept {
  return static_cast<std::size_t>(segment_count_[0].get() + segment_count_[1].get()) * kSeg;
}

FlowChunks::Figures FlowChunks::figures() const noexcept {
  Figures f;
  f.contexts_made = contexts_made_.get();
  f.contexts_released = contexts_made_.get() - contexts_live_.get();
  f.contexts_live = f.contexts_made - f.contexts_released;
  f.peak_contexts = peak_contexts_.get();
  for (unsigned r = 0; r < static_cast<unsigned>(Refusal::kCount); ++r)
    f.refusals[r] = refusals_[r].get();
  for (unsigned u = 0; u < 2; ++u)
    for (const Segment* s = segments_[u]; s != nullptr; s = s->next)
      for (const Page& pg : s->pages)
        if (pg.shift != 0) f.chunk_bytes += std::uint64_t{pg.out()} << pg.shift;
  f.large_blocks = large_blocks_.get();
  f.large_bytes = large_bytes_.get();
  f.spills_thread = spills_thread_.get();
  f.spills_global = spills_global_.get();
  for (unsigned u = 0; u < 2; ++u) {
    f.segments[u] = segment_count_[u].get();
    f.peak_segments[u] = peak_segment_count_[u].get();
  }
  f.pages_in_use = pages_in_use_.get();
  return f;
}

CheckResult FlowChunks::check_invariants() const {
  std::uint64_t chunk_bytes = 0, pages = 0;
  for (unsigned u = 0; u < 2; ++u) {
    std::uint64_t n = 0, spares = 0;
    bool seen_full = false;
    const Segment* prev = nullptr;
    for (const Segment* s = segments_[u]; s != nullptr; prev = s, s = s->next) {
      CTXALLOC_INVARIANT(++n <= segment_count_[u].get(), "flow_chunks: segment list ", u,
                         " longer than its count ", segment_count_[u].get());
      CTXALLOC_INVARIANT(s->prev == prev, "flow_chunks: segment ", s, " badly linked");
      CTXALLOC_INVARIANT(s->pool == this && static_cast<unsigned>(s->use) == u &&
                             s->tag.kind == owner_kind::flow_chunk && s->tag.owner == this,
                         "flow_chunks: segment ", s, " record names another pool or use");
      CTXALLOC_INVARIANT(SegmentMap::lookup(s) == &s->tag, "flow_chunks: segment ", s,
                         " not registered under its record");
      // Segments with an unused page come first.
      if (s->unused_pages == 0) seen_full = true;
      CTXALLOC_INVARIANT(s->unused_pages == 0 || !seen_full, "flow_chunks: segment ", s,
                         " with room behind a full one");
      if (s->unused_pages == ~0ULL) ++spares;
      for (unsigned i = 0; i < kPages; ++i) {
        const Page& pg = s->pages[i];
        const bool unused = (s->unused_pages >> i & 1) != 0;
        CTXALLOC_INVARIANT(unused == (pg.shift == 0), "flow_chunks: page ", i, " of segment ", s,
                           ": unused bit disagrees with its size");
        if (unused) continue;
        ++pages;
        CTXALLOC_INVARIANT(pg.shift >= kMinShift && pg.shift <= kMaxShift &&
                               (i != 0 || pg.shift <= log2_floor(kPage0MaxChunk)),
                           "flow_chunks: page ", i, " of segment ", s, " has chunk size 2^",
                           pg.shift);
        CTXALLOC_INVARIANT(pg.capacity == (kPageBytes - page_offset(&pg)) >> pg.shift &&
                               pg.carved <= pg.capacity && pg.room <= pg.capacity &&
                               pg.out() <= pg.carved,
                           "flow_chunks: page ", i, " of segment ", s, ": capacity ", pg.capacity,
                           ", carved ", pg.carved, ", out ", pg.out());
        std::uint64_t free = 0;
        const std::byte* lo = page_start(&pg) + page_offset(&pg);
        const std::byte* hi = lo + (std::size_t{pg.carved} << pg.shift);
        for (const ChunkHeader* c = pg.free; c != nullptr; c = c->next) {
          const auto* b = reinterpret_cast<const std::byte*>(c);
          CTXALLOC_INVARIANT(++free <= pg.carved && b >= lo && b < hi &&
                                 (static_cast<std::size_t>(b - lo) & ((1u << pg.shift) - 1)) == 0 &&
                                 c->owner == kReleasedOwner,
                             "flow_chunks: free chunk ", c, " of page ", i, " of segment ", s,
                             " is not a released chunk of that page");
        }
        CTXALLOC_INVARIANT(pg.out() + free == pg.carved, "flow_chunks: page ", i, " of segment ", s,
                           ": ", pg.out(), " out + ", free, " free != ", pg.carved, " carved");
        const bool room = pg.room != 0;
        CTXALLOC_INVARIANT(room == (pg.listed != 0), "flow_chunks: page ", i, " of segment ", s,
                           room ? " has room but is not listed" : " is full but listed");
        chunk_bytes += std::uint64_t{pg.out()} << pg.shift;
      }
    }
    CTXALLOC_INVARIANT(n == segment_count_[u].get() && prev == last_[u], "flow_chunks: ", n,
                       " segments listed for use ", u, ", ", segment_count_[u].get(), " counted");
    CTXALLOC_INVARIANT(spares == spare_segments_[u], "flow_chunks: ", spares,
                       " spare segments, counted ", spare_segments_[u]);
    for (unsigned cls = 0; cls < kClasses; ++cls) {
      const Page* p = nullptr;
      for (const Page* pg = avail_[u][cls]; pg != nullptr; p = pg, pg = pg->next) {
        CTXALLOC_INVARIANT(pg->prev == p && pg->listed && pg->shift == cls + kMinShift &&
                               static_cast<unsigned>(segment_of(pg)->use) == u,
                           "flow_chunks: page ", pg, " on the wrong list");
      }
    }
  }
  CTXALLOC_INVARIANT(pages == pages_in_use_.get(), "flow_chunks: ", pages, " pages in use, ",
                     pages_in_use_.get(), " counted");
  CTXALLOC_INVARIANT(chunk_bytes <= segment_bytes(), "flow_chunks: ", chunk_bytes,
                     " bytes of live chunks in ", segment_bytes(), " of segments");
  return CheckResult::ok();
}

}  // namespace ctxalloc
