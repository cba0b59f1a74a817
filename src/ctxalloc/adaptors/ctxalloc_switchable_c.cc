// The C API of the switchable allocator and its contexts (ctxalloc.h, "Switchable").
#include <cerrno>
#include <cstring>

#include "ctxalloc/adaptors/ctxalloc.h"
#include "ctxalloc/adaptors/detail/c_error.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/switchable.h"

using ctxalloc::capi::fail;
using ctxalloc::capi::fail_null;

namespace {

ctxalloc::Context* to_cpp(ctxalloc_context* c) noexcept {
  return reinterpret_cast<ctxalloc::Context*>(c);
}
ctxalloc_context* to_c(ctxalloc::Context* c) noexcept {
  return reinterpret_cast<ctxalloc_context*>(c);
}

void copy_stats(const ctxalloc::Stats& s, ctxalloc_stats* out) noexcept {
  out->allocations = s.allocations;
  out->deallocations = s.deallocations;
  out->grows = s.grows;
  out->shrinks = s.shrinks;
  out->failures = s.failures;
  out->misuses = s.misuses;
  out->bytes_in_use = s.bytes_in_use;
  out->peak_bytes = s.peak_bytes;
  out->capacity = s.capacity;
}

}  // namespace

extern "C" {

int ctxalloc_mode(void) noexcept {
  return static_cast<int>(ctxalloc::current_mode());
}

int ctxalloc_set_mode(int mode) noexcept {
  if (mode != CTXALLOC_MODE_GLOBAL && mode != CTXALLOC_MODE_THREAD) {
    return fail(EINVAL, "ctxalloc_set_mode: mode %d is neither global (1) nor thread (2)", mode);
  }
  const auto want = static_cast<ctxalloc::Mode>(mode);
  const ctxalloc::Mode before = ctxalloc::set_mode(want);
  if (ctxalloc::current_mode() != want) {
    return fail(ENOMEM, "ctxalloc_set_mode: no thread heap could be made");
  }
  return static_cast<int>(before == ctxalloc::Mode::uninitialized ? ctxalloc::current_mode()
                                                                  : before);
}

void* ctxalloc_malloc(size_t size) noexcept {
  void* p = ctxalloc::allocate(size);
  if (p == nullptr) return fail_null(ENOMEM, "ctxalloc_malloc: %zu bytes refused", size);
  return p;
}

void* ctxalloc_calloc(size_t count, size_t size) noexcept {
  if (size != 0 && count > SIZE_MAX / size) {
    return fail_null(ENOMEM, "ctxalloc_calloc: %zu x %zu bytes overflow", count, size);
  }
  void* p = ctxalloc::allocate_zeroed(count * size);
  if (p == nullptr) return fail_null(ENOMEM, "ctxalloc_calloc: %zu bytes refused", count * size);
  return p;
}

void* ctxalloc_aligned_alloc(size_t align, size_t size) noexcept {
  if (!ctxalloc::Layout::make(size, align)) {
    return fail_null(
        EINVAL, "ctxalloc_aligned_alloc: alignment %zu is not a power of two up to 1 GiB", align);
  }
  void* p = ctxalloc::allocate(size, align);
  if (p == nullptr) {
    return fail_null(ENOMEM, "ctxalloc_aligned_alloc: %zu bytes aligned %zu refused", size, align);
  }
  return p;
}

void* ctxalloc_realloc(void* p, size_t size) noexcept {
  void* r = ctxalloc::reallocate(p, size);
  if (r == nullptr && size != 0) {
    return fail_null(ENOMEM, "ctxalloc_realloc: %zu bytes for %p refused", size, p);
  }
  return r;
}

void ctxalloc_free_any(void* p) noexcept {
  ctxalloc::deallocate(p);
}

size_t ctxalloc_usable_size_any(const void* p) noexcept {
  return ctxalloc::usable_size(p);
}

void ctxalloc_flush(void) noexcept {
  ctxalloc::flush();
}

ctxalloc_context* ctxalloc_context_create(int lifetime, size_t bytes) noexcept {
  if (lifetime < CTXALLOC_LIFETIME_SHORT || lifetime > CTXALLOC_LIFETIME_LONG) {
    return fail_null(EINVAL, "ctxalloc_context_create: lifetime %d is not 0, 1 or 2", lifetime);
  }
  if (!ctxalloc::is_pow2(bytes) || bytes < ctxalloc::Context::kMinBytes ||
      bytes > ctxalloc::Context::kMaxBytes) {
    return fail_null(EINVAL,
                     "ctxalloc_context_create: %zu bytes is not a power of two from 4 KiB to 4 MiB",
                     bytes);
  }
  ctxalloc::Context* c =
      ctxalloc::Context::create(static_cast<ctxalloc::Lifetime>(lifetime), bytes);
  if (c == nullptr)
    return fail_null(ENOMEM, "ctxalloc_context_create: no block of %zu bytes", bytes);
  return to_c(c);
}

int ctxalloc_context_release_all(ctxalloc_context* context) noexcept {
  if (context == nullptr) return fail(EINVAL, "ctxalloc_context_release_all: NULL context");
  to_cpp(context)->release_all();
  return 0;
}

int ctxalloc_context_release(ctxalloc_context* context) noexcept {
  if (context == nullptr) return fail(EINVAL, "ctxalloc_context_release: NULL context");
  to_cpp(context)->release();
  return 0;
}

// ContextScope's enter and leave (ctxalloc::enter_context), split in two calls for C; a
// NULL context changes nothing (the state returned restores what is there).
ctxalloc_saved_state ctxalloc_context_enter(ctxalloc_context* context) noexcept {
  const ctxalloc::SavedContext saved = context == nullptr
                                           ? ctxalloc::unchanged_context()
                                           : ctxalloc::enter_context(*to_cpp(context));
  return ctxalloc_saved_state{static_cast<int>(saved.mode), to_c(saved.context)};
}

void ctxalloc_context_leave(ctxalloc_saved_state saved) noexcept {
  ctxalloc::leave_context(
      ctxalloc::SavedContext{static_cast<ctxalloc::Mode>(saved.mode), to_cpp(saved.context)});
}

int ctxalloc_context_get_stats(const ctxalloc_context* context,
                               ctxalloc_context_stats* out) noexcept {
  if (context == nullptr || out == nullptr) {
    return fail(EINVAL, "ctxalloc_context_get_stats: NULL argument");
  }
  const ctxalloc::ContextStats s = reinterpret_cast<const ctxalloc::Context*>(context)->stats();
  copy_stats(s.local, &out->local);
  out->spills = s.spills;
  out->spills_to_global = s.spills_to_global;
  out->spill_failures = s.spill_failures;
  out->spilled_live = s.spilled_live;
  out->spilled_bytes = s.spilled_bytes;
  return 0;
}

}  // extern "C"
