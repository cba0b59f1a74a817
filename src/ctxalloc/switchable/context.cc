#include "ctxalloc/switchable/context.h"

#include <cstring>
#include <new>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/sources/detail/poison.h"

namespace ctxalloc {

std::size_t Context::header_bytes() noexcept {
  return align_up(sizeof(Context), 64);
}

Context::Context(Lifetime lifetime, ContextArena* arena, ThreadHeap* heap, Block region,
                 const ContextOptions& options) noexcept
    : arena_(arena), heap_(heap), alloc_(lifetime, region, options) {
  spilled_.prev = spilled_.next = &spilled_;
  spilled_.context = this;
  spilled_.offset = 0;
  spilled_.magic = kSpillMagic;
}

Context* Context::create(Lifetime lifetime, std::size_t bytes,
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
  // reported as bad_argument by its constructor): validating first as well cost a flow
  // ~60 instructions, 4% of its whole lifecycle.
  Context* c = new (b.ptr) Context(lifetime, arena, heap, region, options);
  if (c->alloc_.config_error() != ContextAllocator::ConfigError::none) [[unlikely]] {
    c->alloc_.~ContextAllocator();
    arena->release(b);
    return nullptr;
  }
  return c;
}

std::size_t Context::bytes() const noexcept {
  return arena_->block_bytes();
}

std::uint64_t Context::live_blocks() const noexcept {
  return alloc_.stats().live_blocks() + spilled_live_.get();
}

Block Context::allocate_slow(Layout layout) noexcept {
  const Block b = alloc_.allocate(layout);
  if (b.ptr != nullptr) [[likely]]
    return b;
  return spill(layout);
}

Block Context::spill(Layout layout) noexcept {
  if (!layout.valid()) return alloc_.allocate(layout);  // counted there
  // Size 0 gets here only with an alignment the context's allocator could not meet (the
  // sentinel serves the others): like everywhere else, a real one-byte block.
  if (layout.size == 0) layout.size = 1;
  // [spill block start ... padding][SpillHeader][caller's bytes]: the caller's bytes
  // aligned as asked, the header right before them.
  const std::size_t align =
      layout.align < alignof(SpillHeader) ? alignof(SpillHeader) : layout.align;
  const std::size_t front = align_up(sizeof(SpillHeader), align);
  if (layout.size > SIZE_MAX - front) {
    spill_failures_.add(1);
    return Block{};
  }
  bool from_global = false;
  const Block s = heap_->allocate_spill(Layout{layout.size + front, align}, &from_global);
  if (s.ptr == nullptr) {
    spill_failures_.add(1);
    return Block{};
  }
  std::byte* user = s.ptr + front;
  SpillHeader* h = spill_header(user);
  h->context = this;
  h->offset = static_cast<std::uint32_t>(front);
  h->magic = kSpillMagic;
  h->next = spilled_.next;
  h->prev = &spilled_;
  spilled_.next->prev = h;
  spilled_.next = h;
  spills_.add(1);
  if (from_global) spills_to_global_.add(1);
  spilled_live_.add(1);
  const std::size_t usable = s.size - front;
  spilled_bytes_.add(usable);
  return Block{user, usable};
}

void Context::free_spilled(SpillHeader* h) noexcept {
  h->prev->next = h->next;
  h->next->prev = h->prev;
  h->magic = 0;
  std::byte* start = reinterpret_cast<std::byte*>(h + 1) - h->offset;
  const std::size_t usable = heap_->spill_size(start) - h->offset;
  spilled_live_.sub(1);
  spilled_bytes_.sub(usable);
  heap_->free_spill(start);
}

Context* Context::of(const void* p, const OwnerTag* tag) noexcept {
  const auto* arena = static_cast<const ContextArena*>(tag->owner);
  auto* c =
      reinterpret_cast<Context*>(reinterpret_cast<std::uintptr_t>(p) & ~(arena->block_bytes() - 1));
  // A released block is back in the arena, which poisons it under ASan: released.
  if (detail::is_poisoned(&c->magic_, sizeof c->magic_)) return nullptr;
  return c->magic_ == kLive ? c : nullptr;
}

void Context::free_in_arena(void* p, const ContextArena* arena) noexcept {
  auto* c =
      reinterpret_cast<Context*>(reinterpret_cast<std::uintptr_t>(p) & ~(arena->block_bytes() - 1));
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

void Context::free_local(void* p, const OwnerTag* tag) noexcept {
  if (tag->kind == OwnerKind::spill) {
    SpillHeader* h = spill_header(p);
    if (h->magic != kSpillMagic || h->context->magic_ != kLive) {
      report_misuse(Misuse::double_free, "context", "deallocate", p);
      return;
    }
    h->context->free_spilled(h);
    return;
  }
  free_in_arena(p, static_cast<const ContextArena*>(tag->owner));
}

void Context::free_owned(void* p, const OwnerTag* tag) noexcept {
  if (tag->kind == OwnerKind::context_arena) {
    const auto* arena = static_cast<const ContextArena*>(tag->owner);
    if (arena->heap() == detail::t_state.heap) [[likely]]
      return free_in_arena(p, arena);
    return detail::free_remote_other(arena->heap(), p);
  }
  ThreadHeap* owner = ThreadHeap::of_tag(tag);
  if (owner == detail::t_state.heap) {
    free_local(p, tag);
  } else {
    detail::free_remote_other(owner, p);
  }
}

std::size_t Context::usable_size(const void* p, const OwnerTag* tag) noexcept {
  if (tag->kind == OwnerKind::spill) {
    const SpillHeader* h = spill_header(p);
    if (h->magic != kSpillMagic) return 0;
    const std::byte* start = reinterpret_cast<const std::byte*>(p) - h->offset;
    const std::size_t s = h->context->heap_->spill_size(start);
    return s > h->offset ? s - h->offset : 0;
  }
  const Context* c = of(p, tag);
  return c == nullptr ? 0 : c->alloc_.allocated_size(p);
}

void* Context::reallocate(void* p, const OwnerTag* tag, Layout layout) noexcept {
  layout = linkable(layout);
  if (tag->kind == OwnerKind::context_arena && of(p, tag) == nullptr) {
    report_misuse(Misuse::released_context, "context", "reallocate", p);  // not a double free
    return nullptr;
  }
  std::size_t have = usable_size(p, tag);
  // A bump context knows the size of its most recent block only; an older live block is
  // moved, copying up to where the free space begins (bump_extent). Found by the
  // switchable fuzzer: reallocate() of such a block was reported as a double free.
  bool recorded = true;
  if (have == 0 && tag->kind == OwnerKind::context_arena) {
    if (const Context* owner = of(p, tag))
      have = detail::addressable_prefix(p, owner->alloc_.bump_extent(p));
    recorded = false;
  }
  if (have == 0) {
    report_misuse(Misuse::double_free, "context", "reallocate", p);
    return nullptr;
  }
  Context* c = tag->kind == OwnerKind::spill ? spill_header(p)->context : of(p, tag);
  if (!c->owned_by_this_thread()) {
    report_misuse(Misuse::wrong_thread, "context", "reallocate", p);
    return nullptr;
  }
  if (tag->kind == OwnerKind::context_arena && recorded) {
    const Block old{static_cast<std::byte*>(p), have};
    const Block r = layout.size >= have ? c->alloc_.grow(old, layout, Move::forbidden)
                                        : c->alloc_.shrink(old, layout, Move::forbidden);
    if (r.ptr != nullptr) return r.ptr;
  }
  const Block fresh = c->allocate(layout);
  if (fresh.ptr == nullptr) return nullptr;
  std::memcpy(fresh.ptr, p, have < layout.size ? have : layout.size);
  free_local(p, tag);
  return fresh.ptr;
}

void Context::release_block() noexcept {
  while (spilled_.next != &spilled_)
    free_spilled(spilled_.next);
  ContextArena* arena = arena_;
  const Block b{reinterpret_cast<std::byte*>(this), arena->block_bytes()};
  alloc_.~ContextAllocator();
  magic_ = kReleased;  // what a late free finds while the block waits in the arena
  arena->release(b);
}

void Context::release_all() noexcept {
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

void Context::release() noexcept {
  if (magic_ == kLive && owned_by_this_thread() && live_blocks() != 0) {
    report_misuse(Misuse::live_on_release, "context", "release", this);
  }
  release_all();
}

ContextStats Context::stats() const noexcept {
  ContextStats s;
  s.local = alloc_.stats();
  s.spills = spills_.get();
  s.spills_to_global = spills_to_global_.get();
  s.spill_failures = spill_failures_.get();
  s.spilled_live = spilled_live_.get();
  s.spilled_bytes = spilled_bytes_.get();
  return s;
}

CheckResult Context::check_invariants() const {
  CTXALLOC_INVARIANT(magic_ == kLive, "context ", this, ": not live");
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
        tag != nullptr && tag->kind == OwnerKind::spill && ThreadHeap::of_tag(tag) == heap_,
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

void ContextScope::wrong_thread(const Context* c) noexcept {
  report_misuse(Misuse::wrong_thread, "context", "install", c);
}

}  // namespace ctxalloc
