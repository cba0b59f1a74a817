#include "ctxalloc/allocators/size_class_allocator.h"

#include <bit>
#include <cstring>
#include <new>

namespace ctxalloc {
namespace {

// Blocks carved from a page's never-used tail per refill: enough to amortise the slow
// path, few enough that a page's memory is touched gradually.
constexpr std::size_t kCarveBytes = 4096;

}  // namespace

// A page with no blocks: every class starts with it as current page, so the first
// allocation of each class takes the refill path without a separate null test.
alignas(64) static const char kEmptyPageStorage[64] = {};

SizeClassAllocator::SizeClassAllocator(SegmentProvider provider, std::size_t max_segments) noexcept
    : max_segments_(max_segments), provider_(provider), tool_paths_(detail::pool_slow_paths()) {
  auto* empty = reinterpret_cast<Page*>(const_cast<char*>(kEmptyPageStorage));
  for (unsigned c = 0; c < kClasses; ++c) {
    current_[c] = empty;
    partial_[c] = nullptr;
  }
}

SizeClassAllocator::~SizeClassAllocator() {
  drain_remote();
  while (segments_ != nullptr)
    release_segment(segments_);
}

std::size_t SizeClassAllocator::class_size_for(std::size_t size, std::size_t align) noexcept {
  if (size == 0 || size > kMaxSize || !is_pow2(align) || align > kMaxSize) return 0;
  // Blocks sit at page_base + i * class_size, and pages are 64 KiB aligned, so a class
  // honours an alignment exactly when its size is a multiple of it.
  const std::size_t want = align_up(size, align);
  if (want > kMaxSize) return 0;
  for (unsigned c = class_index(want); c < kClasses; ++c) {
    if (detail::kSizeClasses[c] % align == 0) return detail::kSizeClasses[c];
  }
  return 0;
}

Block SizeClassAllocator::allocate_slow(Layout layout) noexcept {
  if (auto answer = allocate_prologue(layout, [&] {
        counters_.failures.add(1);
        misuse(Misuse::bad_argument, nullptr, "allocate");
        return Block{};
      }))
    return *answer;
  const std::size_t cs = class_size_for(layout.size, layout.align);
  if (cs == 0) {  // larger than 2 KiB or an alignment no class honours: not ours to serve
    counters_.failures.add(1);
    return Block{};
  }
  return allocate_class(class_index(cs));
}

Block SizeClassAllocator::refill(unsigned cls) noexcept {
  if (hook_.fn != nullptr) hook_.fn(hook_.context);
  if (remote_.load(std::memory_order_relaxed) != nullptr) drain_remote();
  if (tool_paths_) return allocate_tooled(cls);
  if (current_[cls]->free != nullptr) return allocate_class(cls);
  for (;;) {
    Page* page = current_[cls];
    if (page->block_size != 0) {
      if (extend(page)) return allocate_class(cls);
      page->flags = kFull | kNotCurrent;  // listed nowhere until a free re-lists it
    }
    Page* next = partial_[cls];
    if (next != nullptr) {
      list_remove(&partial_[cls], next);
    } else {
      next = new_page(static_cast<unsigned>(cls));
      if (next == nullptr) {
        // The exhausted page is already marked full; the class starts over from the
        // empty page, and a later free re-lists the full page.
        current_[cls] = reinterpret_cast<Page*>(const_cast<char*>(kEmptyPageStorage));
        counters_.failures.add(1);
        return Block{};
      }
    }
    current_[cls] = next;
    next->flags = 0;
    if (next->free != nullptr) return allocate_class(cls);
  }
}

// Under the tool paths pages stay off current_: a page with free or uncarved blocks is
// on partial_[cls] (flags kNotCurrent), a page with neither is full and listed nowhere,
// exactly as other non-current pages. The block is taken here, with its marks.
Block SizeClassAllocator::allocate_tooled(unsigned cls) noexcept {
  for (;;) {
    Page* page = partial_[cls];
    if (page == nullptr) {
      page = new_page(cls);
      if (page == nullptr) {
        counters_.failures.add(1);
        return Block{};
      }
      list_push(&partial_[cls], page);
    }
    if (page->free == nullptr && !extend(page)) {
      list_remove(&partial_[cls], page);
      page->flags = kFull | kNotCurrent;
      continue;
    }
    FreeBlock* b = page->free;
    page->free = const_cast<FreeBlock*>(read_link(b));
    ++page->used;
    const auto a = reinterpret_cast<std::uintptr_t>(b);
    segment_of(b)->live[word_index(a)] |= bit_of(a);
    class_allocs_[cls].add(1);
    detail::unpoison_fresh(b, page->block_size);
    if (page->free == nullptr && page->bump == page->bump_end) {
      list_remove(&partial_[cls], page);
      page->flags = kFull | kNotCurrent;
    }
    return Block{reinterpret_cast<std::byte*>(b), page->block_size};
  }
}

bool SizeClassAllocator::extend(Page* page) noexcept {
  if (page->bump == page->bump_end) return false;
  const std::size_t bs = page->block_size;
  std::size_t n = kCarveBytes / bs;
  if (n == 0) n = 1;
  const auto left = static_cast<std::size_t>(page->bump_end - page->bump) / bs;
  if (n > left) n = left;
  // Link the carved blocks in address order: allocation then walks the page forward.
  // The memory may have served another class before (poisoned then): unpoisoned for the
  // links, poisoned again as free blocks.
  std::byte* first = page->bump;
  detail::unpoison_fresh(first, n * bs);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    reinterpret_cast<FreeBlock*>(first + i * bs)->next =
        reinterpret_cast<FreeBlock*>(first + (i + 1) * bs);
  }
  reinterpret_cast<FreeBlock*>(first + (n - 1) * bs)->next = page->free;
  page->free = reinterpret_cast<FreeBlock*>(first);
  page->bump = first + n * bs;
  detail::poison(first, n * bs);
  return true;
}

SizeClassAllocator::Page* SizeClassAllocator::new_page(unsigned cls) noexcept {
  // The peak is sampled here, when the allocator takes more memory: bytes in use can only
  // have grown past the last sample by what the pages in use hold.
  const std::uint64_t in_use = bytes_in_use();
  if (in_use > peak_.get()) peak_.set(in_use);
  if (free_pages_ == nullptr && !new_segment()) return nullptr;
  Page* page = free_pages_;
  list_remove(&free_pages_, page);
  Segment* seg = segment_of(page);
  const auto index = static_cast<std::size_t>(page - seg->pages);
  std::byte* base = reinterpret_cast<std::byte*>(seg) + index * kPageSize;
  const std::uint32_t bs = detail::kSizeClasses[cls];
  page->free = nullptr;
  page->used = 0;
  page->block_size = bs;
  page->capacity = static_cast<std::uint32_t>(kPageSize / bs);
  page->bump = base;
  page->bump_end = base + std::size_t{page->capacity} * bs;
  page->cls = static_cast<std::uint8_t>(cls);
  page->flags = kNotCurrent;
  page->listed = 0;
  ++seg->used_pages;
  return page;
}

bool SizeClassAllocator::new_segment() noexcept {
  if (max_segments_ != 0 && segment_count_ >= max_segments_) return false;
  if (provider_.obtain == nullptr) return false;
  const Block b = provider_.obtain(provider_.context);
  if (b.ptr == nullptr) return false;
  if (b.size < kSegmentSize || !is_aligned(b.ptr, kSegmentSize)) {
    provider_.release(provider_.context, b);
    return false;
  }
  auto* seg = new (b.ptr) Segment;
  std::memset(static_cast<void*>(seg), 0, sizeof(Segment));
  seg->tag = OwnerTag{owner_kind::size_class, this};
  if (!SegmentMap::register_range(seg, kSegmentSize, &seg->tag)) {
    provider_.release(provider_.context, b);
    return false;
  }
  seg->prev = nullptr;
  seg->next = segments_;
  if (segments_ != nullptr) segments_->prev = seg;
  segments_ = seg;
  ++segment_count_;
  // Highest pages first, so that pop order hands out the lowest page first.
  for (std::size_t i = kPagesPerSegment - 1; i >= 1; --i)
    list_push(&free_pages_, &seg->pages[i]);
  return true;
}

void SizeClassAllocator::after_free_slow(Page* page, void* p) noexcept {
  if (tool_paths_) detail::poison(p, page->block_size);  // memcheck's mark
  // Only pages that are not their class's current page get here: keeping the current
  // one even when empty avoids retiring and re-carving a page on every alloc/free pair.
  if ((page->flags & kFull) != 0) {
    page->flags = kNotCurrent;
    list_push(&partial_[page->cls], page);
  }
  if (page->used == 0) retire_page(page);
}

void SizeClassAllocator::retire_page(Page* page) noexcept {
  if (page->listed != 0) list_remove(&partial_[page->cls], page);
  page->block_size = 0;
  page->free = nullptr;
  page->bump = page->bump_end = nullptr;
  page->flags = 0;
  list_push(&free_pages_, page);
  Segment* seg = segment_of(page);
  // Keep one segment even when empty: a thread that allocates in bursts would otherwise
  // map and unmap 4 MiB each burst.
  if (--seg->used_pages == 0 && segment_count_ > 1) release_segment(seg);
}

void SizeClassAllocator::trim(bool keep_one) noexcept {
  drain_remote();
  auto* empty = reinterpret_cast<Page*>(const_cast<char*>(kEmptyPageStorage));
  for (unsigned c = 0; c < kClasses; ++c) {
    Page* page = current_[c];
    if (page->block_size != 0 && page->used == 0) {
      current_[c] = empty;
      retire_page(page);
    }
  }
  for (Segment* seg = segments_; seg != nullptr;) {
    Segment* next = seg->next;
    if (seg->used_pages == 0 && !(keep_one && segment_count_ == 1)) release_segment(seg);
    seg = next;
  }
}

void SizeClassAllocator::release_segment(Segment* seg) noexcept {
  for (std::size_t i = 1; i < kPagesPerSegment; ++i) {
    Page* page = &seg->pages[i];
    if (page->block_size != 0) {  // only at destruction: pages still in use
      if (page->listed != 0) list_remove(&partial_[page->cls], page);
      if (current_[page->cls] == page) {
        current_[page->cls] = reinterpret_cast<Page*>(const_cast<char*>(kEmptyPageStorage));
      }
    } else {
      list_remove(&free_pages_, page);
    }
  }
  if (seg->prev != nullptr) seg->prev->next = seg->next;
  if (seg->next != nullptr) seg->next->prev = seg->prev;
  if (segments_ == seg) segments_ = seg->next;
  --segment_count_;
  SegmentMap::unregister_range(seg, kSegmentSize, &seg->tag);
  detail::unpoison(seg, kSegmentSize);  // back to the provider as it came
  provider_.release(provider_.context, Block{reinterpret_cast<std::byte*>(seg), kSegmentSize});
}

void SizeClassAllocator::list_push(Page** head, Page* page) noexcept {
  page->prev = nullptr;
  page->next = *head;
  if (*head != nullptr) (*head)->prev = page;
  *head = page;
  page->listed = 1;
}

void SizeClassAllocator::list_remove(Page** head, Page* page) noexcept {
  if (page->prev != nullptr) page->prev->next = page->next;
  if (page->next != nullptr) page->next->prev = page->prev;
  if (*head == page) *head = page->next;
  page->next = page->prev = nullptr;
  page->listed = 0;
}

void SizeClassAllocator::free_remote_chain(void* first, void* last) noexcept {
  auto* f = static_cast<FreeBlock*>(first);
  auto* l = static_cast<FreeBlock*>(last);
  FreeBlock* head = remote_.load(std::memory_order_relaxed);
  do {
    l->next = head;
  } while (!remote_.compare_exchange_weak(head, f, std::memory_order_release,
                                          std::memory_order_relaxed));
}

void SizeClassAllocator::drain_remote() noexcept {
  FreeBlock* b = remote_.exchange(nullptr, std::memory_order_acquire);
  while (b != nullptr) {
    FreeBlock* next = b->next;
    const OwnerTag* tag = SegmentMap::lookup(b);
    if (tag != nullptr && tag->owner == this) {
      free_owned(b, segment_of_tag(tag), 0);
    } else {
      misuse(Misuse::foreign_pointer, b, "free_remote");
    }
    b = next;
  }
}

void SizeClassAllocator::deallocate_foreign(Block block) noexcept {
  if (block.ptr == nullptr) return;
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return;
  misuse(Misuse::foreign_pointer, block.ptr, "deallocate");
}

void SizeClassAllocator::bad_free(void* p, std::size_t size) noexcept {
  const Segment* seg = segment_of(p);
  const Page& page = seg->pages[offset_in_segment(p) >> kPageShift];
  if (page.block_size != 0 && size > page.block_size) {
    misuse(Misuse::wrong_size, p, "deallocate");
  } else {
    // Not the start of a live block: freed already, or a pointer into a block.
    misuse(Misuse::double_free, p, "deallocate");
  }
}

void SizeClassAllocator::misaligned_free(Block block) noexcept {
  if (allocated_size(block.ptr) == 0) return bad_free(block.ptr, block.size);  // not a block
  misuse(Misuse::wrong_alignment, block.ptr, "deallocate");
}

void SizeClassAllocator::misuse(Misuse what, const void* p, const char* op) noexcept {
  counters_.misuses.add(1);
  report_misuse(what, "size_class", op, p);
}

std::size_t SizeClassAllocator::allocated_size(const void* p) const noexcept {
  const OwnerTag* tag = SegmentMap::lookup(p);
  if (tag == nullptr || tag->owner != this) return 0;
  const Segment* seg = segment_of_tag(tag);
  const std::uintptr_t off = offset_in_segment(p);
  const std::uint64_t bit = std::uint64_t{1} << ((off >> kGranuleShift) & 63);
  if ((seg->live[off >> (kGranuleShift + 6)] & bit) == 0) return 0;
  return seg->pages[off >> kPageShift].block_size;
}

Block SizeClassAllocator::grow(Block block, Layout new_layout, Move move) noexcept {
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) {
    if (move == Move::forbidden) {
      counters_.failures.add(1);
      return Block{};
    }
    return allocate(new_layout);
  }
  const std::size_t have = allocated_size(block.ptr);
  if (have == 0 || new_layout.size < block.size) {
    counters_.failures.add(1);
    misuse(have == 0 ? Misuse::foreign_pointer : Misuse::bad_argument, block.ptr, "grow");
    return Block{};
  }
  if (new_layout.size <= have && is_aligned(block.ptr, new_layout.align)) {
    counters_.grows.add(1);
    return Block{block.ptr, have};  // the class already had room
  }
  if (move == Move::forbidden) {
    counters_.failures.add(1);
    return Block{};
  }
  Block fresh = detail::grow_by_moving(*this, Block{block.ptr, have}, new_layout);
  if (fresh.ptr != nullptr) counters_.grows.add(1);
  return fresh;
}

Block SizeClassAllocator::shrink(Block block, Layout new_layout, Move move) noexcept {
  if (block.size == 0 && is_zero_size_sentinel(block.ptr)) return block;
  const std::size_t have = allocated_size(block.ptr);
  if (have == 0 || new_layout.size > block.size) {
    counters_.failures.add(1);
    misuse(have == 0 ? Misuse::foreign_pointer : Misuse::bad_argument, block.ptr, "shrink");
    return Block{};
  }
  if (new_layout.size == 0) {
    deallocate(block, 1);
    return allocate(new_layout);
  }
  if (!is_aligned(block.ptr, new_layout.align)) {
    // A larger alignment than the block has: a new block (Move::allowed) or a refusal.
    if (move == Move::forbidden) {
      counters_.failures.add(1);
      return Block{};
    }
    Block fresh = detail::shrink_by_moving(*this, Block{block.ptr, have}, new_layout);
    if (fresh.ptr != nullptr) counters_.shrinks.add(1);
    return fresh;
  }
  // In place: the block keeps its class (the tail stays the caller's, unused).
  counters_.shrinks.add(1);
  return Block{block.ptr, have};
}

std::uint64_t SizeClassAllocator::bytes_in_use() const noexcept {
  std::uint64_t bytes = 0;
  for (unsigned c = 0; c < kClasses; ++c) {
    bytes += (class_allocs_[c].get() - class_frees_[c].get()) * detail::kSizeClasses[c];
  }
  return bytes;
}

Stats SizeClassAllocator::stats() const noexcept {
  Stats s = counters_.snapshot();
  // Frees are read first: a free that races with this read is then counted as live,
  // never a block counted freed but not allocated.
  for (unsigned c = 0; c < kClasses; ++c) {
    const std::uint64_t frees = class_frees_[c].get();
    const std::uint64_t allocs = class_allocs_[c].get();
    s.allocations += allocs;
    s.deallocations += frees;
    s.bytes_in_use += (allocs - frees) * detail::kSizeClasses[c];
  }
  s.peak_bytes = peak_.get();
  if (s.bytes_in_use > s.peak_bytes) s.peak_bytes = s.bytes_in_use;
  s.capacity = max_segments_ * (kPagesPerSegment - 1) * kPageSize;
  return s;
}

CheckResult SizeClassAllocator::check_invariants() const {
  std::uint64_t bytes = 0;
  std::uint64_t live = 0;
  std::size_t segs = 0;
  std::size_t free_pages = 0;
  for (const Segment* seg = segments_; seg != nullptr; seg = seg->next) {
    ++segs;
    CTXALLOC_INVARIANT(segs <= segment_count_, "size_class: segment list longer than ",
                       segment_count_);
    CTXALLOC_INVARIANT(is_aligned(seg, kSegmentSize), "size_class: segment ", seg, " misaligned");
    CTXALLOC_INVARIANT(seg->tag.kind == owner_kind::size_class && seg->tag.owner == this,
                       "size_class: segment ", seg, " has a foreign tag");
    CTXALLOC_INVARIANT(SegmentMap::lookup(seg) == &seg->tag, "size_class: segment ", seg,
                       " not registered in the segment map");
    CTXALLOC_INVARIANT(seg->pages[0].block_size == 0, "size_class: header page serves blocks");
    std::uint32_t used_pages = 0;
    for (std::size_t i = 1; i < kPagesPerSegment; ++i) {
      const Page& pg = seg->pages[i];
      const std::byte* base = reinterpret_cast<const std::byte*>(seg) + i * kPageSize;
      const std::uint64_t* bits = &seg->live[i * kPageSize / kGranule / 64];
      const std::size_t words = kPageSize / kGranule / 64;
      std::uint64_t set = 0;
      for (std::size_t w = 0; w < words; ++w)
        set += static_cast<unsigned>(std::popcount(bits[w]));
      if (pg.block_size == 0) {
        ++free_pages;
        CTXALLOC_INVARIANT(set == 0, "size_class: unused page ", base, " has live blocks");
        continue;
      }
      ++used_pages;
      const std::size_t bs = pg.block_size;
      CTXALLOC_INVARIANT(pg.cls < kClasses && detail::kSizeClasses[pg.cls] == bs,
                         "size_class: page ", base, " block size ", bs, " not its class's");
      CTXALLOC_INVARIANT(pg.capacity == kPageSize / bs && pg.bump_end == base + pg.capacity * bs,
                         "size_class: page ", base, " capacity or end wrong");
      CTXALLOC_INVARIANT(pg.bump >= base && pg.bump <= pg.bump_end && (pg.bump - base) % bs == 0,
                         "size_class: page ", base, " carve pointer ", pg.bump, " out of place");
      CTXALLOC_INVARIANT(set == pg.used, "size_class: page ", base, " counts ", pg.used,
                         " live blocks but its bitmap has ", set);
      std::size_t nfree = 0;
      for (const FreeBlock* b = pg.free; b != nullptr; b = read_link(b)) {
        const auto* bp = reinterpret_cast<const std::byte*>(b);
        CTXALLOC_INVARIANT(++nfree <= pg.capacity, "size_class: page ", base,
                           " free list longer than its capacity (a cycle?)");
        CTXALLOC_INVARIANT(bp >= base && bp < pg.bump && (bp - base) % bs == 0,
                           "size_class: free block ", bp, " not a carved block of page ", base);
        const std::uintptr_t off = offset_in_segment(bp);
        CTXALLOC_INVARIANT(
            (seg->live[off >> (kGranuleShift + 6)] >> ((off >> kGranuleShift) & 63) & 1) == 0,
            "size_class: block ", bp, " both free and live");
      }
      const auto carved = static_cast<std::size_t>(pg.bump - base) / bs;
      CTXALLOC_INVARIANT(nfree + pg.used == carved, "size_class: page ", base, " has ", nfree,
                         " free + ", pg.used, " live blocks but ", carved, " carved");
      if ((pg.flags & kFull) != 0) {
        CTXALLOC_INVARIANT(pg.free == nullptr && pg.bump == pg.bump_end && pg.listed == 0,
                           "size_class: page ", base, " marked full but has room or is listed");
      }
      const bool is_current = current_[pg.cls] == &pg;
      CTXALLOC_INVARIANT(is_current == ((pg.flags & kNotCurrent) == 0), "size_class: page ", base,
                         " flags ", unsigned{pg.flags}, " disagree with being current");
      bytes += std::uint64_t{pg.used} * bs;
      live += pg.used;
    }
    CTXALLOC_INVARIANT(used_pages == seg->used_pages, "size_class: segment ", seg, " counts ",
                       seg->used_pages, " used pages, found ", used_pages);
  }
  CTXALLOC_INVARIANT(segs == segment_count_, "size_class: ", segs, " segments listed, ",
                     segment_count_, " counted");
  std::size_t listed_free = 0;
  for (const Page* p = free_pages_; p != nullptr; p = p->next) {
    CTXALLOC_INVARIANT(++listed_free <= free_pages, "size_class: free page list too long");
    CTXALLOC_INVARIANT(p->block_size == 0, "size_class: page in use on the free page list");
  }
  CTXALLOC_INVARIANT(listed_free == free_pages, "size_class: ", free_pages, " unused pages but ",
                     listed_free, " on the free list");
  for (unsigned c = 0; c < kClasses; ++c) {
    const Page* cur = current_[c];
    CTXALLOC_INVARIANT(cur->block_size == 0 || (cur->cls == c && cur->listed == 0),
                       "size_class: current page of class ", c, " is wrong");
    for (const Page* p = partial_[c]; p != nullptr; p = p->next) {
      CTXALLOC_INVARIANT(
          p->cls == c && p->block_size != 0 && p->listed == 1 && p->flags == kNotCurrent,
          "size_class: partial list of class ", c, " holds a wrong page");
      CTXALLOC_INVARIANT(p != cur, "size_class: current page also on the partial list");
    }
  }
  const Stats s = stats();
  CTXALLOC_INVARIANT(s.bytes_in_use == bytes, "size_class: stats say ", s.bytes_in_use,
                     " bytes in use, pages hold ", bytes);
  CTXALLOC_INVARIANT(s.live_blocks() == live, "size_class: stats say ", s.live_blocks(),
                     " live blocks, pages hold ", live);
  return CheckResult::ok();
}

}  // namespace ctxalloc
