// Counting wrappers around glibc's malloc family, for the tests that prove a path never
// calls malloc (sources, NodeTopology and the C API's checks run inside malloc when
// ctxalloc serves it). Include in exactly one translation unit of a test binary: it
// defines malloc, calloc, realloc, aligned_alloc, memalign and posix_memalign. Between
// `g_counting = true` and `false`, every call adds one to g_calls. Sanitizer builds bring
// their own allocator, which cannot be wrapped: there CTXALLOC_COUNT_MALLOC stays
// undefined and the tests skip.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>

#include "ctxalloc/core/sanitizers.h"

#if !defined(CTXALLOC_ASAN_ACTIVE) && !defined(CTXALLOC_TSAN)
#define CTXALLOC_COUNT_MALLOC 1
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_calls{0};
void note() {
  if (g_counting.load(std::memory_order_relaxed)) g_calls.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);

void* malloc(std::size_t n) {
  note();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t m) {
  note();
  return __libc_calloc(n, m);
}
void* realloc(void* p, std::size_t n) {
  note();
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  note();
  return __libc_memalign(a, n);
}
void* memalign(std::size_t a, std::size_t n) {
  note();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  note();
  *out = __libc_memalign(a, n);
  return *out == nullptr ? ENOMEM : 0;
}
}
#endif
