// operator new and delete, every replaceable form ([new.delete]), served by the
// switchable allocator through the process allocator's front: the current mode's
// allocator (thread heap by default, or the installed context), frees to the owner.
//
// new follows [new.delete.single]: on failure it calls the std::new_handler and tries
// again while there is one; without one it throws std::bad_alloc. The nothrow forms run
// the same loop and return null where the throwing ones would throw (as libstdc++'s do,
// whatever the handler throws). Sizes and alignments are not trusted: an alignment that
// is not a power of two, or larger than 1 GiB, fails like exhausted memory.
#include <new>

#include "ctxalloc/replace/detail/front_internal.h"

#define CTXALLOC_EXPORT __attribute__((visibility("default")))

namespace {

namespace front = ctxalloc::replace::detail;

// One try: the inline fast path for default-aligned requests. An alignment that is not
// a power of two fails on the slow path (every try: the handler cannot help).
inline void* try_allocate(std::size_t size, std::size_t align) noexcept {
  if (align == ctxalloc::kDefaultAlign) return front::allocate(size);
  return front::allocate_slow(size, align < ctxalloc::kDefaultAlign && ctxalloc::is_pow2(align)
                                        ? ctxalloc::kDefaultAlign
                                        : align);
}

[[gnu::noinline]] void* new_loop(std::size_t size, std::size_t align) {
  for (;;) {
    if (void* p = try_allocate(size, align)) return p;
    const std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    front::front_counters().new_handler_calls.fetch_add(1, std::memory_order_relaxed);
    handler();
  }
}

inline void* new_impl(std::size_t size, std::size_t align) {
  if (void* p = try_allocate(size, align)) [[likely]]
    return p;
  return new_loop(size, align);
}

void* new_nothrow(std::size_t size, std::size_t align) noexcept {
  try {
    return new_impl(size, align);
  } catch (...) {
    return nullptr;
  }
}

inline std::size_t align_of(std::align_val_t a) noexcept {
  return static_cast<std::size_t>(a);
}

}  // namespace

CTXALLOC_EXPORT void* operator new(std::size_t size) {
  return new_impl(size, ctxalloc::kDefaultAlign);
}
CTXALLOC_EXPORT void* operator new[](std::size_t size) {
  return new_impl(size, ctxalloc::kDefaultAlign);
}
CTXALLOC_EXPORT void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow(size, ctxalloc::kDefaultAlign);
}
CTXALLOC_EXPORT void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow(size, ctxalloc::kDefaultAlign);
}
CTXALLOC_EXPORT void* operator new(std::size_t size, std::align_val_t align) {
  return new_impl(size, align_of(align));
}
CTXALLOC_EXPORT void* operator new[](std::size_t size, std::align_val_t align) {
  return new_impl(size, align_of(align));
}
CTXALLOC_EXPORT void* operator new(std::size_t size, std::align_val_t align,
                                   const std::nothrow_t&) noexcept {
  return new_nothrow(size, align_of(align));
}
CTXALLOC_EXPORT void* operator new[](std::size_t size, std::align_val_t align,
                                     const std::nothrow_t&) noexcept {
  return new_nothrow(size, align_of(align));
}

// Deletes: the owner is found from the pointer; the alignment is not needed. Sized forms
// pass the size on, so that a size larger than the block's is reported (wrong size).
CTXALLOC_EXPORT void operator delete(void* p) noexcept {
  front::free(p);
}
CTXALLOC_EXPORT void operator delete[](void* p) noexcept {
  front::free(p);
}
CTXALLOC_EXPORT void operator delete(void* p, std::size_t size) noexcept {
  front::free(p, size);
}
CTXALLOC_EXPORT void operator delete[](void* p, std::size_t size) noexcept {
  front::free(p, size);
}
CTXALLOC_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept {
  front::free(p);
}
CTXALLOC_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept {
  front::free(p);
}
CTXALLOC_EXPORT void operator delete(void* p, std::align_val_t) noexcept {
  front::free(p);
}
CTXALLOC_EXPORT void operator delete[](void* p, std::align_val_t) noexcept {
  front::free(p);
}
CTXALLOC_EXPORT void operator delete(void* p, std::size_t size, std::align_val_t) noexcept {
  front::free(p, size);
}
CTXALLOC_EXPORT void operator delete[](void* p, std::size_t size, std::align_val_t) noexcept {
  front::free(p, size);
}
CTXALLOC_EXPORT void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  front::free(p);
}
CTXALLOC_EXPORT void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  front::free(p);
}
