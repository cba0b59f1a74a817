#include "ctxalloc/switchable/context.h"

#include <cstring>
#include <new>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/poison.h"

namespace ctxalloc {

// ------------------------------------------------------------------ spilled blocks

Block Context::spill_into(ThreadHeap* heap, SpillHeader* list, Context* owner, Layout layout,
                          SpillFrom* from) noexcept {
  // [spill block start ... padding][SpillHeader][caller's bytes]: the caller's bytes
  // aligned as asked, the header right before them.
  const std::size_t align =
      layout.align < alignof(SpillHeader) ? alignof(SpillHeader) : layout.align;
  const std::size_t front = align_up(sizeof(SpillHeader), align);
  if (layout.size > SIZE_MAX - front) return Block{};
  const Block s = heap->allocate_spill(Layout{layout.size + front, align}, from);
  if (s.ptr == nullptr) return Block{};
  std::byte* user = s.ptr + front;
  SpillHeader* h = spill_header(user);
  h->context = owner;
  h->offset = static_cast<std::uint32_t>(front);
  h->magic = kSpillMagic;
  h->next = list->next;
  h->prev = list;
  list->next->prev = h;
  list->next = h;
  return Block{user, s.size - front};
}

std::size_t Context::unspill(ThreadHeap* heap, SpillHeader* h) noexcept {
  h->prev->next = h->next;
  h->next->prev = h->prev;
  h->magic = 0;
  std::byte* start = reinterpret_cast<std::byte*>(h + 1) - h->offset;
  const std::size_t usable = heap->spill_size(start) - h->offset;
  heap->free_spill(start);
  return usable;
}

// ------------------------------------------------------------------ dispatch

Context* Context::create(Lifetime lifetime, std::size_t bytes,
                         const ContextOptions& options) noexcept {
  return FixedContext::create(lifetime, bytes, options);
}

Context* Context::create_growing() noexcept {
  ThreadHeap* heap = current_thread_heap();
  if (heap == nullptr) return nullptr;
  return GrowingContext::create(heap->flow_chunks());
}

Context* Context::create_child() noexcept {
  if (form_ != ContextForm::growing) {
    report_misuse(Misuse::bad_argument, "context", "create_child", this);
    return nullptr;
  }
  return as_growing().create_child();
}

void Context::release_all() noexcept {
  if (form_ == ContextForm::growing) {
    as_growing().release();
  } else {
    as_fixed().release_all();
  }
}

void Context::release() noexcept {
  if (live() && heap() == detail::t_state.heap && live_blocks() != 0)
    report_misuse(Misuse::live_on_release, "context", "release", this);
  release_all();
}

void Context::reset() noexcept {
  if (form_ == ContextForm::growing) {
    as_growing().reset();
  } else {
    as_fixed().reset();
  }
}

ContextStats Context::stats() const noexcept {
  return form_ == ContextForm::growing ? as_growing().stats() : as_fixed().stats();
}

std::uint64_t Context::spill_count() const noexcept {
  if (form_ != ContextForm::growing) return as_fixed().spill_count();
  return 0;  // growing contexts count their spills in their pool (one figure per lcore)
}

std::uint64_t Context::spill_failure_count() const noexcept {
  if (form_ != ContextForm::growing) return as_fixed().spill_failure_count();
  return 0;
}

CheckResult Context::check_invariants() const {
  return form_ == ContextForm::growing ? as_growing().check_invariants()
                                       : as_fixed().check_invariants();
}

Lifetime Context::lifetime() const noexcept {
  return form_ == ContextForm::growing ? Lifetime::long_lived : as_fixed().lifetime();
}

ContextKind Context::kind() const noexcept {
  return form_ == ContextForm::growing ? ContextKind::growing : as_fixed().kind();
}

std::size_t Context::bytes() const noexcept {
  return form_ == ContextForm::growing ? as_growing().held() : as_fixed().bytes();
}

std::uint64_t Context::live_blocks() const noexcept {
  return form_ == ContextForm::growing ? as_growing().live_blocks() : as_fixed().live_blocks();
}

Context* Context::of(const void* p, const OwnerTag* tag) noexcept {
  if (tag->kind == owner_kind::flow_chunk) return GrowingContext::owner_of(p, tag);
  return FixedContext::of(p, tag);
}

// ------------------------------------------------------------------ the owner table's rows
// The context_arena, spill and flow_chunk kinds (owner.h): a fixed context's block in
// its arena, a block spilled into the heap's spill tree (of either form), a growing
// context's chunk.

void Context::free_spilled_local(void* p) noexcept {
  SpillHeader* h = spill_header(p);
  if (h->magic != kSpillMagic || !h->context->live()) {
    report_misuse(Misuse::double_free, "context", "deallocate", p);
    return;
  }
  if (h->context->growing()) {
    h->context->as_growing().free(p, 0);
  } else {
    h->context->as_fixed().free_spilled(h);
  }
}

void Context::free_chunk_local(void* p, const OwnerTag* tag) noexcept {
  GrowingContext* g = GrowingContext::owner_of(p, tag);
  if (g == nullptr) [[unlikely]] {
    report_misuse(Misuse::released_context, "context", "deallocate", p);
    return;
  }
  g->free_in_chunk(static_cast<std::byte*>(p));  // the chunk is known: no second lookup
}

constinit const detail::OwnerOps Context::kArenaOwner = {
    /*free=*/[](void* p, std::size_t, const OwnerTag* tag) noexcept {
      const auto* arena = static_cast<const ContextArena*>(tag->owner);
      if (arena->heap() == detail::t_state.heap) [[likely]]
        return FixedContext::free_in_arena(p, arena);
      detail::free_remote_other(arena->heap(), p);
    },
    /*free_drained=*/
    [](void* p, const OwnerTag* tag) noexcept {
      FixedContext::free_in_arena(p, static_cast<const ContextArena*>(tag->owner));
    },
    /*usable_size=*/&FixedContext::usable_in_arena,
    /*reallocate=*/&FixedContext::reallocate_in_arena,
};

constinit const detail::OwnerOps Context::kSpillOwner = {
    /*free=*/[](void* p, std::size_t, const OwnerTag* tag) noexcept {
      ThreadHeap* owner = ThreadHeap::of_tag(tag);
      if (owner == detail::t_state.heap) return free_spilled_local(p);
      detail::free_remote_other(owner, p);
    },
    /*free_drained=*/[](void* p, const OwnerTag*) noexcept { free_spilled_local(p); },
    /*usable_size=*/
    [](const void* p, const OwnerTag*) noexcept -> std::size_t {
      const SpillHeader* h = spill_header(p);
      if (h->magic != kSpillMagic) return 0;
      const std::byte* start = reinterpret_cast<const std::byte*>(p) - h->offset;
      const std::size_t s = h->context->heap()->spill_size(start);
      return s > h->offset ? s - h->offset : 0;
    },
    /*reallocate=*/
    [](void* p, const OwnerTag* tag, Layout layout) noexcept -> void* {
      const SpillHeader* h = spill_header(p);
      if (h->magic == kSpillMagic && h->context->growing())
        return reallocate_growing(h->context->as_growing(), p, layout);
      return FixedContext::reallocate_spilled(p, tag, layout);
    },
};

constinit const detail::OwnerOps Context::kChunkOwner = {
    /*free=*/[](void* p, std::size_t, const OwnerTag* tag) noexcept {
      ThreadHeap* owner = FlowChunks::of_tag(tag)->heap();
      if (owner == detail::t_state.heap) [[likely]]
        return free_chunk_local(p, tag);  // a flow's block, this thread's
      detail::free_remote_other(owner, p);
    },
    /*free_drained=*/&Context::free_chunk_local,
    /*usable_size=*/
    [](const void* p, const OwnerTag* tag) noexcept -> std::size_t {
      const GrowingContext* g = GrowingContext::owner_of(p, tag);
      return g == nullptr ? 0 : g->usable(p);
    },
    /*reallocate=*/
    [](void* p, const OwnerTag* tag, Layout layout) noexcept -> void* {
      GrowingContext* g = GrowingContext::owner_of(p, tag);
      if (g == nullptr) {
        report_misuse(Misuse::released_context, "context", "reallocate", p);
        return nullptr;
      }
      return reallocate_growing(*g, p, layout);
    },
};

void* Context::reallocate_growing(GrowingContext& g, void* p, Layout layout) noexcept {
  if (g.heap() != detail::t_state.heap) {
    report_misuse(Misuse::wrong_thread, "context", "reallocate", p);
    return nullptr;
  }
  return g.resize(p, layout, Move::allowed).ptr;
}

// ------------------------------------------------------------------ fixed contexts

std::size_t FixedContext::header_bytes() noexcept {
  return align_up(sizeof(FixedContext), 64);
}

FixedContext::FixedContext(Lifetime lifetime, ContextArena* arena, ThreadHeap* heap, Block region,
                           const ContextOptions& options) noexcept
    : Context(ContextForm::fixed), arena_(arena), heap_(heap), alloc_(lifetime, region, options) {
  spilled_.prev = spilled_.next = &spilled_;
  spilled_.context = this;
  spilled_.offset = 0;
  spilled_.magic = kSpillMagic;
}

FixedContext* FixedContext::create(Lifetime lifetime, std::size_t bytes,
                                   const ContextOptions& options) noexcept {
  ThreadHeap* heap = current_thread_heap();
  if (heap == nullptr) return nullptr;
  ContextArena* arena = heap->context_arena(bytes);
  if (arena == nullptr) {
    report_misuse(Misuse::bad_argument, "context", "create", nullptr);
    return nullptr;
  }
  const Block b = arena->obtain();
  if (b.ptr == nullptr) return nullptr;
  const std::size_t header = header_bytes();
  const Block region{b.ptr + header, b.size - header};
  // The ContextAllocator validates its configuration once, here (a refused one is
  // reported as bad_argument by its constructor): validating first as well would do the
  // work twice on every context's creation.
  auto* c = new (b.ptr) FixedContext(lifetime, arena, heap, region, options);
  if (c->alloc_.config_error() != ContextAllocator::ConfigError::none) [[unlikely]] {
    c->alloc_.~ContextAllocator();
    arena->release(b);
    return nullptr;
  }
  return c;
}

std::size_t FixedContext::bytes() const noexcept {
  return arena_->block_bytes();
}

std::uint64_t FixedContext::live_blocks() const noexcept {
  return alloc_.stats().live_blocks() + spilled_live_.get();
}

Block FixedContext::allocate_slow(Layout layout) noexcept {
  const Block b = alloc_.allocate(layout);
  if (b.ptr != nullptr) [[likely]]
    return b;
  return spill(layout);
}

Block FixedContext::spill(Layout layout) noexcept {
  if (!layout.valid()) return alloc_.allocate(layout);  // counted there
  // Size 0 gets here only with an alignment the context's allocator could not meet (the
  // sentinel serves the others): like everywhere else, a real one-byte block.
  if (layout.size == 0) layout.size = 1;
  SpillFrom from = SpillFrom::thread;
  const Block b = spill_into(heap_, &spilled_, this, layout, &from);
  if (b.ptr == nullptr) {
    spill_failures_.add(1);
    return Block{};
  }
  spills_.add(1);
  if (from == SpillFrom::global) spills_to_global_.add(1);
  spilled_live_.add(1);
  spilled_bytes_.add(b.size);
  return b;
}

void FixedContext::free_spilled(SpillHeader* h) noexcept {
  const std::size_t usable = unspill(heap_, h);
  spilled_live_.sub(1);
  spilled_bytes_.sub(usable);
}

FixedContext* FixedContext::of(const void* p, const OwnerTag* tag) noexcept {
  const auto* arena = static_cast<const ContextArena*>(tag->owner);
  auto* c = reinterpret_cast<FixedContext*>(reinterpret_cast<std::uintptr_t>(p) &
                                            ~(arena->block_bytes() - 1));
  // A released block is back in the arena, which poisons it under ASan: released.
  if (detail::is_poisoned(&c->magic_, sizeof c->magic_)) return nullptr;
  return c->magic_ == kLive ? c : nullptr;
}

void FixedContext::free_in_arena(void* p, const ContextArena* arena) noexcept {
  auto* c = reinterpret_cast<FixedContext*>(reinterpret_cast<std::uintptr_t>(p) &
                                            ~(arena->block_bytes() - 1));
  if (detail::is_poisoned(&c->magic_, sizeof c->magic_) || c->magic_ != kLive) [[unlikely]] {
    report_misuse(Misuse::released_context, "context", "deallocate", p);
    return;
  }
  if (static_cast<const void*>(p) < static_cast<const void*>(c->alloc_.region().ptr)) [[unlikely]] {
    report_misuse(Misuse::foreign_pointer, "context", "deallocate", p);  // the header
    return;
  }
  c->alloc_.deallocate(Block{static_cast<std::byte*>(p), 0}, 1);
}

std::size_t FixedContext::usable_in_arena(const void* p, const OwnerTag* tag) noexcept {
  const FixedContext* c = of(p, tag);
  return c == nullptr ? 0 : c->alloc_.allocated_size(p);
}

void* FixedContext::reallocate_in_arena(void* p, const OwnerTag* tag, Layout layout) noexcept {
  layout = linkable(layout);
  FixedContext* c = of(p, tag);
  if (c == nullptr) {
    report_misuse(Misuse::released_context, "context", "reallocate", p);  // not a double free
    return nullptr;
  }
  std::size_t have = c->alloc_.allocated_size(p);
  // A bump context knows the size of its most recent block only; an older live block is
  // moved, copying up to where the free space begins (bump_extent): its usable size is
  // 0, yet it is live, not a double free.
  bool recorded = true;
  if (have == 0) {
    have = detail::addressable_prefix(p, c->alloc_.bump_extent(p));
    recorded = false;
  }
  if (have == 0) {
    report_misuse(Misuse::double_free, "context", "reallocate", p);
    return nullptr;
  }
  if (!c->owned_by_this_thread()) {
    report_misuse(Misuse::wrong_thread, "context", "reallocate", p);
    return nullptr;
  }
  if (recorded) {
    const Block old{static_cast<std::byte*>(p), have};
    const Block r = layout.size >= have ? c->alloc_.grow(old, layout, Move::forbidden)
                                        : c->alloc_.shrink(old, layout, Move::forbidden);
    if (r.ptr != nullptr) return r.ptr;
  }
  const Block fresh = c->allocate(layout);
  if (fresh.ptr == nullptr) return nullptr;
  std::memcpy(fresh.ptr, p, have < layout.size ? have : layout.size);
  free_in_arena(p, static_cast<const ContextArena*>(tag->owner));
  return fresh.ptr;
}

void* FixedContext::reallocate_spilled(void* p, const OwnerTag* tag, Layout layout) noexcept {
  layout = linkable(layout);
  const std::size_t have = kSpillOwner.usable_size(p, tag);
  if (have == 0) {
    report_misuse(Misuse::double_free, "context", "reallocate", p);
    return nullptr;
  }
  FixedContext* c = &spill_header(p)->context->as_fixed();
  if (!c->owned_by_this_thread()) {
    report_misuse(Misuse::wrong_thread, "context", "reallocate", p);
    return nullptr;
  }
  const Block fresh = c->allocate(layout);
  if (fresh.ptr == nullptr) return nullptr;
  std::memcpy(fresh.ptr, p, have < layout.size ? have : layout.size);
  free_spilled_local(p);
  return fresh.ptr;
}

void FixedContext::release_block() noexcept {
  while (spilled_.next != &spilled_)
    free_spilled(spilled_.next);
  ContextArena* arena = arena_;
  const Block b{reinterpret_cast<std::byte*>(this), arena->block_bytes()};
  alloc_.~ContextAllocator();
  magic_ = kReleased;  // what a late free finds while the block waits in the arena
  arena->release(b);
}

void FixedContext::release_all() noexcept {
  if (magic_ != kLive) {
    report_misuse(Misuse::released_context, "context", "release", this);
    return;
  }
  if (!owned_by_this_thread()) {
    report_misuse(Misuse::wrong_thread, "context", "release", this);
    return;
  }
  release_block();
}

void FixedContext::reset() noexcept {
  if (magic_ != kLive || !owned_by_this_thread()) {
    report_misuse(magic_ != kLive ? Misuse::released_context : Misuse::wrong_thread, "context",
                  "reset", this);
    return;
  }
  while (spilled_.next != &spilled_)
    free_spilled(spilled_.next);
  alloc_.reset();
}

ContextStats FixedContext::stats() const noexcept {
  ContextStats s;
  s.local = alloc_.stats();
  s.spills = spills_.get();
  s.spills_to_global = spills_to_global_.get();
  s.spill_failures = spill_failures_.get();
  s.spilled_live = spilled_live_.get();
  s.spilled_bytes = spilled_bytes_.get();
  return s;
}

CheckResult FixedContext::check_invariants() const {
  CTXALLOC_INVARIANT(magic_ == kLive, "context ", this, ": not live");
  CTXALLOC_INVARIANT(form_ == ContextForm::fixed, "context ", this, ": form byte corrupt");
  CTXALLOC_INVARIANT(is_aligned(this, arena_->block_bytes()), "context ", this,
                     " not at the start of its block");
  if (CheckResult r = alloc_.check_invariants(); !r) return check_fail("context: ", r.error());
  std::uint64_t n = 0;
  for (const SpillHeader* h = spilled_.next; h != &spilled_; h = h->next) {
    CTXALLOC_INVARIANT(++n <= spilled_live_.get(), "context ", this,
                       ": spill list longer than its count ", spilled_live_.get());
    CTXALLOC_INVARIANT(h->magic == kSpillMagic && h->context == this && h->next->prev == h,
                       "context ", this, ": spilled block ", h + 1, " badly linked");
    const OwnerTag* tag = SegmentMap::lookup(h);
    CTXALLOC_INVARIANT(
        tag != nullptr && tag->kind == owner_kind::spill && ThreadHeap::of_tag(tag) == heap_,
        "context ", this, ": spilled block ", h + 1, " not in its heap's spill tree");
  }
  CTXALLOC_INVARIANT(n == spilled_live_.get(), "context ", this, ": ", n,
                     " spilled blocks listed, ", spilled_live_.get(), " counted");
  return CheckResult::ok();
}

namespace detail {
void* context_allocate(Context* c, std::size_t size, std::size_t align) noexcept {
  if (!is_pow2(align) || align > kMaxAlign) [[unlikely]] {
    report_misuse(Misuse::bad_argument, "switchable", "allocate", nullptr);
    return nullptr;
  }
  return c->allocate(Layout{size, align}).ptr;
}
}  // namespace detail

namespace detail {
void report_wrong_thread_enter(const Context* c) noexcept {
  report_misuse(Misuse::wrong_thread, "context", "install", c);
}
}  // namespace detail

}  // namespace ctxalloc
