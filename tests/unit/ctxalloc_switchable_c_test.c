/* The switchable part of ctxalloc.h from C11: modes, malloc-like calls, contexts entered
 * and left, and their errors. A plain C program: exits 0 when every check holds. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ctxalloc/adaptors/ctxalloc.h"

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

int main(void) {
  /* Modes */
  CHECK(ctxalloc_mode() == CTXALLOC_MODE_GLOBAL);
  CHECK(ctxalloc_set_mode(CTXALLOC_MODE_THREAD) == CTXALLOC_MODE_GLOBAL);
  CHECK(ctxalloc_mode() == CTXALLOC_MODE_THREAD);
  CHECK(ctxalloc_set_mode(7) == -EINVAL);
  CHECK(strstr(ctxalloc_last_error(), "mode 7") != NULL);

  /* malloc-like calls */
  char* p = ctxalloc_malloc(100);
  CHECK(p != NULL);
  memset(p, 'x', 100);
  CHECK(ctxalloc_usable_size_any(p) >= 100);
  p = ctxalloc_realloc(p, 5000);
  CHECK(p != NULL && p[99] == 'x');
  unsigned char* z = ctxalloc_calloc(10, 30);
  CHECK(z != NULL && z[0] == 0 && z[299] == 0);
  errno = 0;
  CHECK(ctxalloc_calloc(SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
  CHECK(ctxalloc_aligned_alloc(24, 10) == NULL && errno == EINVAL);
  void* a = ctxalloc_aligned_alloc(4096, 10);
  CHECK(a != NULL && ((uintptr_t)a & 4095) == 0);
  CHECK(ctxalloc_realloc(z, 0) == NULL);
  ctxalloc_free_any(a);
  ctxalloc_free_any(p);
  ctxalloc_free_any(NULL);

  /* Contexts */
  CHECK(ctxalloc_context_create(5, 65536) == NULL && errno == EINVAL);
  CHECK(ctxalloc_context_create(CTXALLOC_LIFETIME_LONG, 1000) == NULL && errno == EINVAL);
  ctxalloc_context* ctx = ctxalloc_context_create(CTXALLOC_LIFETIME_SHORT, 4096);
  CHECK(ctx != NULL);
  ctxalloc_saved_state saved = ctxalloc_context_enter(ctx);
  CHECK(ctxalloc_mode() == CTXALLOC_MODE_CONTEXT);
  void* blocks[100];
  for (int i = 0; i < 100; ++i) {
    blocks[i] = ctxalloc_malloc(64);
    CHECK(blocks[i] != NULL);
  }
  ctxalloc_context_leave(saved);
  CHECK(ctxalloc_mode() == CTXALLOC_MODE_THREAD);
  ctxalloc_context_stats cs;
  CHECK(ctxalloc_context_get_stats(ctx, &cs) == 0);
  CHECK(cs.spills > 0); /* 100 x 64 B do not fit in 4 KiB */
  CHECK(cs.spilled_live == cs.spills);
  ctxalloc_free_any(blocks[99]); /* a spilled block, freed alone */
  CHECK(ctxalloc_context_get_stats(ctx, &cs) == 0 && cs.spilled_live + 1 == cs.spills);
  CHECK(ctxalloc_context_release_all(ctx) == 0);
  CHECK(ctxalloc_context_release_all(NULL) == -EINVAL);

  /* release() of a context with live blocks: misuse, counted under the count policy. */
  ctxalloc_set_misuse_policy(CTXALLOC_MISUSE_COUNT);
  const uint64_t before = ctxalloc_misuse_count();
  ctx = ctxalloc_context_create(CTXALLOC_LIFETIME_MEDIUM, 8192);
  saved = ctxalloc_context_enter(ctx);
  CHECK(ctxalloc_malloc(32) != NULL);
  ctxalloc_context_leave(saved);
  CHECK(ctxalloc_context_release(ctx) == 0);
  CHECK(ctxalloc_misuse_count() == before + 1);

  ctxalloc_flush();
  if (failures == 0) printf("c switchable api: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
