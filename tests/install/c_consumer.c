/* A C program outside the tree, built as C11 against the installed ctxalloc.h and library
   with nothing but pkg-config: a context allocator on an mmap source, used and checked. */
#include <ctxalloc/adaptors/ctxalloc.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  ctxalloc_source* source = ctxalloc_source_create_mmap(NULL);
  ctxalloc_allocator* a =
      ctxalloc_context_allocator_create(source, CTXALLOC_LIFETIME_LONG, 64 * 1024, NULL);
  ctxalloc_stats stats;
  char* p;
  int ok;
  if (a == NULL) {
    fprintf(stderr, "c_consumer: %s\n", ctxalloc_last_error());
    return 1;
  }
  p = ctxalloc_allocate(a, 100, 16, NULL);
  if (p != NULL) strcpy(p, "hello");
  p = ctxalloc_reallocate(a, p, 0, 1000, 16, 0, NULL);
  ok = p != NULL && strcmp(p, "hello") == 0 && ctxalloc_free(a, p) == 0;
  ok = ok && ctxalloc_allocate(a, 16, 3, NULL) == NULL && ctxalloc_last_error()[0] != '\0';
  ok = ok && ctxalloc_get_stats(a, &stats) == 0 && stats.bytes_in_use == 0;
  ok = ok && ctxalloc_check_invariants(a, NULL, 0) == 0;
  printf("c_consumer: %s allocator, %llu allocations, %s\n", ctxalloc_allocator_name(a),
         (unsigned long long)stats.allocations, ok ? "ok" : "FAILED");
  ok = ok && ctxalloc_allocator_destroy(a) == 0 && ctxalloc_source_destroy(source) == 0;
  return ok ? 0 : 1;
}
