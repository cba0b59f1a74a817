#include "ctxalloc/switchable/growing_context.h"

#include <cstring>
#include <new>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/owner.h"
#include "ctxalloc/switchable/thread_heap.h"

namespace ctxalloc {

namespace {
constexpr std::size_t kChunkHeaderBytes = sizeof(ChunkHeader);
constexpr std::size_t kH = GrowingContext::kBlockHeader;

std::size_t round8(std::size_t n) noexcept {
  return (n + 7) & ~std::size_t{7};
}
}  // namespace

// ------------------------------------------------------------------ classes

// Inline here (the only file that uses them): the slow path asks them several times
// per request.
[[gnu::always_inline]] inline std::size_t GrowingContext::class_top(unsigned cls) noexcept {
  if (cls < 16) return std::size_t{cls + 1} * 8;
  const unsigned k = cls - 16;
  return (k & 1) == 0 ? std::size_t{3} << (6 + k / 2) : std::size_t{1} << (8 + k / 2);
}

[[gnu::always_inline]] inline unsigned GrowingContext::floor_class(std::size_t data) noexcept {
  if (data <= 128) return static_cast<unsigned>(data / 8) - 1;
  const unsigned lg = log2_floor(data);
  unsigned c = 15 + 2 * (lg - 7) + (data >= (std::size_t{3} << (lg - 1)) ? 1 : 0);
  return c < kClasses ? c : kClasses - 1;
}

[[gnu::always_inline]] inline unsigned GrowingContext::ceil_class(std::size_t n) noexcept {
  const unsigned c = floor_class(n);
  return class_top(c) < n ? c + 1 : c;
}

// ------------------------------------------------------------------ shape

std::byte* GrowingContext::data_start(const ChunkHeader* c, const GrowingContext* owner) noexcept {
  if (c == owner->first_chunk()) return owner->first_data();
  return reinterpret_cast<std::byte*>(const_cast<ChunkHeader*>(c)) + kChunkHeaderBytes;
}

GrowingContext* GrowingContext::root() noexcept {
  GrowingContext* g = this;
  while (g->is_child())
    g = g->links()->parent;
  return g;
}

const GrowingContext* GrowingContext::root() const noexcept {
  return const_cast<GrowingContext*>(this)->root();
}

GrowingContext* GrowingContext::create_failed(FlowChunks& pool) noexcept {
  pool.refuse(Refusal::memory);
  return nullptr;
}

GrowingContext* GrowingContext::create_slow(FlowChunks& pool) noexcept {
  if (!pool.admit_context()) return nullptr;  // the limit: refused, counted
  ChunkHeader* c = pool.obtain(pool.first_class(), FlowChunks::Use::first);
  if (c == nullptr) return create_failed(pool);
  detail::unpoison(c + 1, sizeof(GrowingContext));
  auto* g = new (c + 1)
      GrowingContext(&pool, c, pool.first_bytes(), pool.tools() ? std::uint8_t{kTools} : 0);
  pool.context_made();
  pool.new_peak();
  return g;
}

GrowingContext* GrowingContext::create_child() noexcept {
  const std::size_t bytes = FlowChunks::class_bytes(pool_->child_class());
  GrowingContext* r = root();
  Ext* e = ext();
  if (e == nullptr || r->ext() == nullptr) {
    pool_->refuse(Refusal::memory);
    return nullptr;
  }
  if (over_budget(bytes)) {
    pool_->refuse(Refusal::budget);
    return nullptr;
  }
  ChunkHeader* c = pool_->obtain(pool_->child_class(), FlowChunks::Use::growth);
  if (c == nullptr) {
    pool_->refuse(Refusal::memory);
    return nullptr;
  }
  detail::unpoison(c + 1, sizeof(GrowingContext) + sizeof(Links));
  auto* g = new (c + 1) GrowingContext(pool_, c, bytes, kChild);
  r->ext_->tree_held += bytes;  // the child's first chunk (its word_ has it)
  Links* l = g->links();
  l->parent = this;
  l->prev = nullptr;
  l->next = e->first_child;
  if (e->first_child != nullptr) e->first_child->links()->prev = g;
  e->first_child = g;
  ++e->children;
  return g;
}

// ------------------------------------------------------------------ budget

bool GrowingContext::over_budget(std::size_t bytes) const noexcept {
  const std::size_t budget = pool_->options().budget;
  if (budget == 0) return false;
  const GrowingContext* r = root();
  const std::uint64_t tree = r->ext_ != nullptr ? r->ext_->tree_held : 0;
  return r->word_ + tree + bytes > budget;
}

void GrowingContext::account(std::ptrdiff_t delta) noexcept {
  word_ = static_cast<std::uint32_t>(static_cast<std::ptrdiff_t>(word_) + delta);
  if (is_child()) {
    Ext* e = root()->ext_;  // a root with descendants has its table
    e->tree_held = static_cast<std::uint64_t>(static_cast<std::int64_t>(e->tree_held) + delta);
  }
}

// ------------------------------------------------------------------ allocation

GrowingContext::Ext* GrowingContext::ext() noexcept {
  if (ext_ != nullptr) return ext_;
  // Inside the context: bumped like a block, marked inner so that walks tell it apart.
  const std::size_t data = round8(sizeof(Ext));
  Block b = bump(data, 8);
  if (b.ptr == nullptr) {
    if (!grow_chunks(data)) return nullptr;
    b = bump(data, 8);
    if (b.ptr == nullptr) return nullptr;
  }
  header_at(b.ptr) = header(kInner, data >> 3);
  auto* e = new (b.ptr) Ext{};
  e->large.prev = e->large.next = &e->large;
  e->large.context = this;
  e->large.offset = 0;
  e->large.magic = kSpillMagic;
  ext_ = e;
  return e;
}

void GrowingContext::fill(std::byte* at, std::size_t bytes) noexcept {
  // `at` is a header position; the fill covers [at, at + bytes), bytes >= 8.
  detail::unpoison(at, kH);
  *reinterpret_cast<std::uint64_t*>(at) = header(kFill, (bytes - kH) >> 3);
}

Block GrowingContext::bump(std::size_t data, std::size_t align) noexcept {
  std::byte* p = cur_;
  const std::byte* limit = end_ - kH;  // the chunk's end
  if (p > limit) return Block{};       // full to its last byte (cur_ == end_)
  if (align > 8) {
    const std::size_t pad = padding_for(reinterpret_cast<std::uintptr_t>(p), align);
    if (pad != 0) {
      if (static_cast<std::size_t>(limit - p) < pad + data) return Block{};
      fill(p - kH, pad);
      p += pad;
    }
  }
  if (static_cast<std::size_t>(limit - p) < data) return Block{};
  cur_ = p + data + kH;
  detail::unpoison_fresh(p - kH, data + kH);
  header_at(p) = header(kLive, data >> 3);
  return Block{p, data};
}

void GrowingContext::close_chunk() noexcept {
  std::byte* h = cur_ - kH;  // where the next header would go
  std::size_t tail = static_cast<std::size_t>((end_ - kH) - h);
  if ((reinterpret_cast<std::uintptr_t>(cur_) & 8) != 0 && tail >= 3 * kH && ext_ != nullptr) {
    fill(h, kH);  // the free block 16-aligned, so that align-16 requests can take it
    h += kH;
    tail -= kH;
  }
  if (tail >= 2 * kH && ext_ != nullptr) {
    std::byte* p = h + kH;
    detail::unpoison(h, 2 * kH);
    header_at(p) = header(kFree, (tail - kH) >> 3);
    file_free(p, tail - kH);
  } else if (tail >= kH) {
    fill(h, tail);
  }
  cur_ = end_;  // nothing more fits
}

bool GrowingContext::grow_chunks(std::size_t need) noexcept {
  // About half of what the context holds in chunks (its large blocks do not count: a
  // flow with a 16 KiB block does not need 8 KiB chunks for its records), at least what
  // `need` takes, at most max_chunk.
  const std::size_t in_chunks = word_ - (ext_ != nullptr ? ext_->large_held : 0);
  std::size_t want = std::size_t{1} << log2_floor(in_chunks < 512 ? 512 : in_chunks);
  want >>= 1;
  const std::size_t min = need + kH + kChunkHeaderBytes;
  while (want < min)
    want <<= 1;
  const std::size_t max = pool_->options().max_chunk;
  if (want > max) want = max;
  if (want < min) return false;  // cannot happen: need < large_block <= max_chunk / 2
  const unsigned cls = log2_floor(want) - FlowChunks::kMinShift;
  if (!charge(want)) return false;
  ChunkHeader* c = pool_->obtain(cls, FlowChunks::Use::growth);
  if (c == nullptr) {
    uncharge(want);
    return false;
  }
  close_chunk();
  c->owner = this;
  c->next = chunks_;
  chunks_ = c;
  cur_ = reinterpret_cast<std::byte*>(c) + kChunkHeaderBytes + kH;
  end_ = reinterpret_cast<std::byte*>(c) + want + kH;
  return true;
}

void GrowingContext::file_free(std::byte* p, std::size_t data) noexcept {
  Ext* e = ext_;
  if (e == nullptr) e = ext();
  if (e == nullptr) {  // no room for the table: the block stays dead until release
    header_at(p) = header(kFill, data >> 3);
    detail::poison(p, data);
    return;
  }
  const unsigned cls = floor_class(data);
  header_at(p) = header(kFree, data >> 3);
  detail::unpoison(p, sizeof(FreeBlock));
  auto* f = reinterpret_cast<FreeBlock*>(p);
  f->next = e->heads[cls];
  e->heads[cls] = f;
  e->nonempty |= 1u << cls;
  detail::poison(p + sizeof(FreeBlock), data - sizeof(FreeBlock));
}

Block GrowingContext::take_free(unsigned cls, std::size_t align, bool larger) noexcept {
  // No splitting and no merging (as AllocSet): a block keeps its size for life, so a
  // block freed is reused whole by a later request of its class and fragments cannot
  // pile up; a rolling window of state runs in the blocks it freed.
  // Align 16 (ctxalloc::allocate's default) takes the class's most recent block when it
  // is 16-aligned (a flow's blocks all are when all its requests ask 16), else none.
  Ext* e = ext_;
  if (e == nullptr || align > 16 || e->nonempty == 0) return Block{};
  const std::uint32_t avail = larger ? e->nonempty & ~((1u << cls) - 1) : e->nonempty & (1u << cls);
  if (avail == 0) return Block{};
  cls = lowest_bit_index(avail);
  FreeBlock* f = e->heads[cls];
  if (align > 8 && !is_aligned(f, align)) return Block{};
  e->heads[cls] = f->next;
  if (f->next == nullptr) e->nonempty &= ~(1u << cls);
  auto* p = reinterpret_cast<std::byte*>(f);
  const std::size_t have = data_of(header_at(p));
  detail::unpoison_fresh(p, have);
  header_at(p) = header(kLive, have >> 3);
  return Block{p, have};
}

Block GrowingContext::large(Layout layout) noexcept {
  if (over_budget(layout.size)) {
    pool_->refuse(Refusal::budget);
    return Block{};
  }
  Ext* e = ext();
  if (e == nullptr) {
    pool_->refuse(Refusal::memory);
    return Block{};
  }
  SpillFrom from = SpillFrom::own;
  const Block b = spill_into(heap(), &e->large, this, layout, &from);
  if (b.ptr == nullptr) {
    pool_->refuse(Refusal::memory);
    return Block{};
  }
  if (over_budget(b.size)) {  // the usable size rounded past the budget
    unspill(heap(), spill_header(b.ptr));
    pool_->refuse(Refusal::budget);
    return Block{};
  }
  account(static_cast<std::ptrdiff_t>(b.size));
  e->large_held += b.size;
  pool_->count_large(b.size);
  if (from != SpillFrom::own) pool_->count_spill(from == SpillFrom::global);
  return b;
}

Block GrowingContext::allocate_slow(Layout layout) noexcept {
  if (!layout.valid()) {
    report_misuse(Misuse::bad_argument, "growing_context", "allocate", this);
    return Block{};
  }
  const std::size_t size = layout.size == 0 ? 1 : layout.size;
  const std::size_t align = layout.align;
  if (size >= pool_->options().large_block || align > 4096) {
    if (size > (std::size_t{1} << 40)) {
      pool_->refuse(Refusal::too_large);
      return Block{};
    }
    return large(Layout{size, align});
  }
  // Up to 128 B the fast path's exact 8-byte steps; above, the class's top (at most a
  // third more), so that every freed block serves every later request of its class.
  const unsigned cls =
      size <= kExactMax ? static_cast<unsigned>((size + 7) / 8) - 1 : ceil_class(size);
  const std::size_t data = class_top(cls);  // up to 128 B: round8(size)
  // A freed block of the class first, then the current chunk, then a freed block of a
  // larger class (whole), then a new chunk.
  if (Block b = take_free(cls, align, false); b.ptr != nullptr) return b;
  if (Block b = bump(data, align); b.ptr != nullptr) return b;
  if (Block b = take_free(cls, align, true); b.ptr != nullptr) return b;
  if (grow_chunks(data + (align > 8 ? align : 0))) {
    if (Block b = bump(data, align); b.ptr != nullptr) return b;
  }
  // No chunk within the budget, or none left in the pool: a block of the spill tree
  // (on the flow memory when the heap has a context source, else a counted spill as
  // far as the heap's fallback tiers allow), within the budget, or refused (counted).
  return large(Layout{size, align});
}

// ------------------------------------------------------------------ free

void GrowingContext::free_in_chunk_slow(std::byte* p) noexcept {
  std::uint64_t& h = header_at(p);
  if (past_bump(p) || detail::is_poisoned(&h, sizeof h) || tag_of(h) != kLive) [[unlikely]] {
    report_misuse(Misuse::double_free, "growing_context", "deallocate", p);
    return;
  }
  const std::size_t data = data_of(h);
  if (in_current_tail(p, data)) {  // the most recent block: give it back to the bump
    cur_ = p;
    detail::poison(p - kH, data + kH);
    return;
  }
  file_free(p, data);
}

void GrowingContext::free_large(SpillHeader* h) noexcept {
  const std::size_t usable = unspill(heap(), h);
  pool_->uncount_large(usable);
  ext_->large_held -= usable;
  uncharge(usable);
}

bool GrowingContext::owns_large(const void* p) const noexcept {
  const SpillHeader* h = spill_header(p);
  return h->magic == kSpillMagic && h->context == this;
}

void GrowingContext::free_elsewhere(void* p) noexcept {
  const OwnerTag* tag = SegmentMap::lookup(p);
  if (tag != nullptr && tag->kind == owner_kind::flow_chunk) {
    GrowingContext* g = owner_of(p, tag);
    if (g == nullptr) {
      report_misuse(Misuse::released_context, "growing_context", "deallocate", p);
      return;
    }
    g->free_in_chunk(static_cast<std::byte*>(p));
    return;
  }
  if (tag != nullptr && tag->kind == owner_kind::spill) {
    SpillHeader* h = spill_header(p);
    if (h->magic == kSpillMagic && h->context->growing()) {
      h->context->as_growing().free_large(h);
      return;
    }
    report_misuse(Misuse::double_free, "growing_context", "deallocate", p);
    return;
  }
  report_misuse(Misuse::foreign_pointer, "growing_context", "deallocate", p);
}

std::size_t GrowingContext::usable(const void* p) const noexcept {
  const OwnerTag* tag = SegmentMap::lookup(p);
  if (tag != nullptr && tag->kind == owner_kind::spill) {
    if (!owns_large(p)) return 0;
    const SpillHeader* h = spill_header(p);
    const std::byte* start = static_cast<const std::byte*>(p) - h->offset;
    return heap()->spill_size(start) - h->offset;
  }
  const std::uint64_t& h = header_at(p);
  if (detail::is_poisoned(&h, sizeof h) || tag_of(h) != kLive) return 0;
  return data_of(h);
}

Block GrowingContext::resize(void* ptr, Layout layout, Move move) noexcept {
  auto* p = static_cast<std::byte*>(ptr);
  const std::size_t have = usable(p);
  if (have == 0) {
    report_misuse(Misuse::double_free, "growing_context", "resize", p);
    return Block{};
  }
  const OwnerTag* tag = SegmentMap::lookup(p);
  const bool in_chunk = tag != nullptr && tag->kind == owner_kind::flow_chunk;
  const bool aligned = is_aligned(p, layout.align);
  const std::size_t asked = layout.size == 0 ? 1 : layout.size;
  const std::size_t want = asked <= kExactMax ? round8(asked) : class_top(ceil_class(asked));
  if (in_chunk && aligned && want < pool_->options().large_block) {
    GrowingContext* g = owner_of(p, tag);
    if (want <= have) {
      if (g->in_current_tail(p, have)) {
        g->cur_ = p + want + kH;
        detail::poison(p + want, have - want);
        header_at(p) = header(kLive, want >> 3);
      }  // else the block keeps its size (blocks are never split)
      return Block{p, usable(p)};
    }
    if (g->in_current_tail(p, have) && p + want <= g->end_ - kH) {
      g->cur_ = p + want + kH;
      detail::unpoison(p + have, want - have);
      header_at(p) = header(kLive, want >> 3);
      return Block{p, want};
    }
  } else if (!in_chunk && aligned && layout.size <= have) {
    return Block{p, have};  // a large block keeps its size
  }
  if (move == Move::forbidden) return Block{};
  GrowingContext* g = in_chunk ? owner_of(p, tag) : &spill_header(p)->context->as_growing();
  const Block fresh = g->allocate(layout);
  if (fresh.ptr == nullptr) return Block{};
  std::memcpy(fresh.ptr, p, have < layout.size ? have : layout.size);
  g->free(p, 0);
  return fresh;
}

// ------------------------------------------------------------------ release

void GrowingContext::unlink_child() noexcept {
  Links* l = links();
  Ext* pe = l->parent->ext_;
  if (l->prev != nullptr) {
    l->prev->links()->next = l->next;
  } else {
    pe->first_child = l->next;
  }
  if (l->next != nullptr) l->next->links()->prev = l->prev;
  --pe->children;
}

void GrowingContext::release_contents() noexcept {
  if (ext_ != nullptr) {
    while (ext_->first_child != nullptr)
      ext_->first_child->release();
    while (ext_->large.next != &ext_->large)
      free_large(ext_->large.next);
  }
  while (chunks_ != nullptr) {
    ChunkHeader* c = chunks_;
    chunks_ = c->next;
    const std::size_t b = FlowChunks::chunk_bytes(c);
    detail::poison(c + 1, b - kChunkHeaderBytes);
    pool_->release(c);
    uncharge(b);
  }
  ext_ = nullptr;
}

void GrowingContext::reset() noexcept {
  if (heap() != detail::t_state.heap) {
    report_misuse(Misuse::wrong_thread, "growing_context", "reset", this);
    return;
  }
  release_contents();
  ChunkHeader* first = first_chunk();
  const std::size_t bytes = FlowChunks::chunk_bytes(first);
  std::byte* start = first_data();
  detail::poison(start,
                 static_cast<std::size_t>(reinterpret_cast<std::byte*>(first) + bytes - start));
  cur_ = start + kH;
  end_ = reinterpret_cast<std::byte*>(first) + bytes + kH;
}

void GrowingContext::release_slow() noexcept {
  if (!live()) {
    report_misuse(Misuse::released_context, "growing_context", "release", this);
    return;
  }
  release_contents();
  ChunkHeader* first = first_chunk();
  const std::size_t bytes = FlowChunks::chunk_bytes(first);
  FlowChunks* pool = pool_;
  if (is_child()) {
    account(-static_cast<std::ptrdiff_t>(bytes));
    unlink_child();
  } else {
    pool->context_released();
  }
  detail::poison(first + 1, bytes - kChunkHeaderBytes);
  pool->release(first);
}

// ------------------------------------------------------------------ figures

std::size_t GrowingContext::chunk_count() const noexcept {
  std::size_t n = 1;
  for (const ChunkHeader* c = chunks_; c != nullptr; c = c->next)
    ++n;
  return n;
}

std::uint64_t GrowingContext::subtree_held() const noexcept {
  std::uint64_t n = held();
  if (ext_ != nullptr)
    for (const GrowingContext* c = ext_->first_child; c != nullptr; c = c->links()->next)
      n += c->subtree_held();
  return n;
}

std::byte* GrowingContext::used_end(const ChunkHeader* c) const noexcept {
  if (c == current_chunk()) return cur_ - kH;
  return chunk_end(c);
}

template <class F>
void GrowingContext::for_each_block(F&& f) const noexcept {
  const auto walk = [&](const ChunkHeader* c) {
    const std::byte* end = used_end(c);
    for (const std::byte* h = data_start(c, this); h < end;) {
      const std::uint64_t v = *reinterpret_cast<const std::uint64_t*>(h);
      if (!f(c, h + kH, v)) return false;
      h += kH + data_of(v);
    }
    return true;
  };
  if (!walk(first_chunk())) return;
  for (const ChunkHeader* c = chunks_; c != nullptr; c = c->next)
    if (!walk(c)) return;
}

std::uint64_t GrowingContext::live_blocks() const noexcept {
  std::uint64_t n = 0;
  for_each_block([&](const ChunkHeader*, const std::byte*, std::uint64_t h) {
    n += tag_of(h) == kLive ? 1 : 0;
    return true;
  });
  if (ext_ != nullptr) {
    for (const SpillHeader* s = ext_->large.next; s != &ext_->large; s = s->next)
      ++n;
    for (const GrowingContext* c = ext_->first_child; c != nullptr; c = c->links()->next)
      n += c->live_blocks();
  }
  return n;
}

std::uint64_t GrowingContext::live_bytes() const noexcept {
  std::uint64_t n = 0;
  for_each_block([&](const ChunkHeader*, const std::byte*, std::uint64_t h) {
    n += tag_of(h) == kLive ? data_of(h) : 0;
    return true;
  });
  if (ext_ != nullptr) {
    for (const SpillHeader* s = ext_->large.next; s != &ext_->large; s = s->next)
      n += usable(s + 1);
    for (const GrowingContext* c = ext_->first_child; c != nullptr; c = c->links()->next)
      n += c->live_bytes();
  }
  return n;
}

ContextStats GrowingContext::stats() const noexcept {
  ContextStats s;
  s.local.bytes_in_use = live_bytes();
  s.local.allocations = live_blocks();
  if (ext_ != nullptr) {
    for (const SpillHeader* h = ext_->large.next; h != &ext_->large; h = h->next) {
      ++s.spilled_live;
      s.spilled_bytes += usable(h + 1);
    }
  }
  return s;
}

CheckResult GrowingContext::check_invariants() const {
  CTXALLOC_INVARIANT(form_ == ContextForm::growing, "growing_context ", this,
                     ": form byte corrupt");
  CTXALLOC_INVARIANT(live(), "growing_context ", this, ": not live");
  // Chunks: owned by this context, sizes summing (with the large blocks) to held().
  std::uint64_t held = 0;
  held += FlowChunks::chunk_bytes(first_chunk());
  for (const ChunkHeader* c = chunks_; c != nullptr; c = c->next) {
    CTXALLOC_INVARIANT(c->owner == this, "growing_context ", this, ": chunk ", c,
                       " names another owner");
    held += FlowChunks::chunk_bytes(c);
  }
  const ChunkHeader* cur = current_chunk();
  CTXALLOC_INVARIANT(
      end_ == chunk_end(cur) + kH && cur_ >= data_start(cur, this) + kH && cur_ <= end_,
      "growing_context ", this, ": bump pointer outside its chunk");
  // Blocks: every header valid, tiling each chunk to its used end.
  std::uint64_t free_in_chunks = 0;
  bool ok = true;
  const void* bad = nullptr;
  for_each_block([&](const ChunkHeader* c, const std::byte* p, std::uint64_t h) {
    const std::uint32_t t = tag_of(h);
    if ((t != kLive && t != kFree && t != kInner && t != kFill) || p + data_of(h) > used_end(c)) {
      ok = false;
      bad = p;
      return false;
    }
    if (t == kFree) ++free_in_chunks;
    return true;
  });
  CTXALLOC_INVARIANT(ok, "growing_context ", this, ": bad block header at ", bad);
  // Free lists: each entry a free block of its class, counts agreeing with the walk.
  std::uint64_t listed = 0;
  if (ext_ != nullptr) {
    for (unsigned cls = 0; cls < kClasses; ++cls) {
      const bool nonempty = (ext_->nonempty >> cls & 1) != 0;
      CTXALLOC_INVARIANT(nonempty == (ext_->heads[cls] != nullptr), "growing_context ", this,
                         ": class ", cls, " bit disagrees with its list");
      for (const FreeBlock* f = ext_->heads[cls]; f != nullptr; f = f->next) {
        const std::uint64_t h = header_at(f);
        CTXALLOC_INVARIANT(++listed <= free_in_chunks && tag_of(h) == kFree &&
                               floor_class(data_of(h)) == cls &&
                               owner_of(f, SegmentMap::lookup(f)) == this,
                           "growing_context ", this, ": free-list entry ", f, " of class ", cls,
                           " is not a free block of this context of that class");
      }
    }
    std::uint64_t large = 0;
    for (const SpillHeader* s = ext_->large.next; s != &ext_->large; s = s->next) {
      CTXALLOC_INVARIANT(s->magic == kSpillMagic && s->context == this && s->next->prev == s,
                         "growing_context ", this, ": large block ", s + 1, " badly linked");
      large += usable(s + 1);
    }
    CTXALLOC_INVARIANT(large == ext_->large_held, "growing_context ", this, ": large blocks of ",
                       large, " bytes, ", ext_->large_held, " counted");
    held += large;
    std::uint32_t children = 0;
    std::uint64_t tree = 0;
    for (const GrowingContext* c = ext_->first_child; c != nullptr; c = c->links()->next) {
      CTXALLOC_INVARIANT(c->is_child() && c->links()->parent == this, "growing_context ", this,
                         ": child ", c, " badly linked");
      ++children;
      if (CheckResult r = c->check_invariants(); !r) return r;
      tree += c->subtree_held();
    }
    CTXALLOC_INVARIANT(children == ext_->children, "growing_context ", this, ": ", children,
                       " children listed, ", ext_->children, " counted");
    if (!is_child()) {
      CTXALLOC_INVARIANT(tree == ext_->tree_held, "growing_context ", this, ": children hold ",
                         tree, " bytes, ", ext_->tree_held, " counted");
    }
  }
  CTXALLOC_INVARIANT(listed == free_in_chunks, "growing_context ", this, ": ", free_in_chunks,
                     " free blocks in chunks, ", listed, " listed");
  CTXALLOC_INVARIANT(held == word_, "growing_context ", this, ": holds ", held, " bytes, ", word_,
                     " counted");
  const std::size_t budget = pool_->options().budget;
  if (!is_child() && budget != 0) {
    const std::uint64_t tree = ext_ != nullptr ? ext_->tree_held : 0;
    CTXALLOC_INVARIANT(word_ + tree <= budget, "growing_context ", this, ": holds ", word_ + tree,
                       " bytes, budget ", budget);
  }
  return CheckResult::ok();
}

}  // namespace ctxalloc
