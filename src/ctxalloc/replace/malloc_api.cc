// The C allocation functions of libctxalloc_preload.so, with glibc's semantics where C
// and POSIX leave a choice, so that a program cannot tell except by speed:
//   malloc(0), calloc(0, n), memalign(a, 0)...  a unique pointer (a one-byte block)
//   failure                                      null and errno ENOMEM (also for sizes
//                                                above PTRDIFF_MAX, as glibc)
//   calloc, reallocarray: n * size overflows     null, ENOMEM
//   realloc(NULL, n)                             malloc(n)
//   realloc(p, 0), p not null                    frees p, returns null (glibc)
//   realloc failure                              null, ENOMEM, p untouched
//   free(NULL)                                   nothing; free keeps errno
//   posix_memalign(&p, a, n)                     EINVAL (p untouched) unless a is a power
//                                                of two and a multiple of sizeof(void*);
//                                                ENOMEM on failure; returns, never errno
//   aligned_alloc(a, n)                          a not a power of two: null, EINVAL
//                                                (glibc 2.38, C23); any n
//   memalign(a, n)                               a rounded up to a power of two (glibc);
//                                                a above 2^63: null, EINVAL
//   valloc(n), pvalloc(n)                        page-aligned; pvalloc rounds n up to
//                                                pages (0 gives one page)
//   malloc_usable_size(p)                        bytes usable at p; 0 for null and
//                                                pointers ctxalloc does not own
// Alignments ctxalloc cannot give (above 1 GiB) fail with ENOMEM.
#include <errno.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "ctxalloc/replace/detail/front.h"

#define CTXALLOC_EXPORT __attribute__((visibility("default")))

namespace {

namespace front = ctxalloc::replace::detail;

bool is_pow2(std::size_t v) noexcept {
  return v != 0 && (v & (v - 1)) == 0;
}

void* aligned(std::size_t align, std::size_t size) noexcept {
  if (align <= ctxalloc::kDefaultAlign) return front::allocate(size);
  return front::allocate_slow(size, align);
}

std::size_t page() noexcept {
  static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

}  // namespace

extern "C" {

CTXALLOC_EXPORT void* malloc(std::size_t size) noexcept {
  return front::allocate(size);
}

CTXALLOC_EXPORT void free(void* p) noexcept {
  front::free(p);
}

CTXALLOC_EXPORT void* calloc(std::size_t n, std::size_t size) noexcept {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return front::allocate_zeroed(bytes);
}

CTXALLOC_EXPORT void* realloc(void* p, std::size_t size) noexcept {
  return front::reallocate(p, size);
}

CTXALLOC_EXPORT void* reallocarray(void* p, std::size_t n, std::size_t size) noexcept {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return front::reallocate(p, bytes);
}

CTXALLOC_EXPORT int posix_memalign(void** out, std::size_t align, std::size_t size) noexcept {
  if (!is_pow2(align) || align % sizeof(void*) != 0) return EINVAL;
  const int saved = errno;  // posix_memalign reports through its return value only
  void* p = aligned(align, size);
  const int result = p == nullptr ? errno : 0;
  errno = saved;
  if (p == nullptr) return result == 0 ? ENOMEM : result;
  *out = p;
  return 0;
}

CTXALLOC_EXPORT void* aligned_alloc(std::size_t align, std::size_t size) noexcept {
  if (!is_pow2(align)) {
    errno = EINVAL;
    return nullptr;
  }
  return aligned(align, size);
}

CTXALLOC_EXPORT void* memalign(std::size_t align, std::size_t size) noexcept {
  if (align > (std::size_t{1} << 63)) {
    errno = EINVAL;
    return nullptr;
  }
  if (!is_pow2(align)) align = align == 0 ? 1 : std::size_t{1} << (64 - __builtin_clzll(align));
  return aligned(align, size);
}

CTXALLOC_EXPORT void* valloc(std::size_t size) noexcept {
  return aligned(page(), size);
}

CTXALLOC_EXPORT void* pvalloc(std::size_t size) noexcept {
  const std::size_t pg = page();
  std::size_t rounded = 0;
  if (__builtin_add_overflow(size, pg - 1, &rounded)) {
    errno = ENOMEM;
    return nullptr;
  }
  rounded &= ~(pg - 1);
  return aligned(pg, rounded == 0 ? pg : rounded);
}

CTXALLOC_EXPORT std::size_t malloc_usable_size(void* p) noexcept {
  return front::usable_size(p);
}

}  // extern "C"
