/*
 * The C API from C: compiled as C11 with -Wall -Wextra -Werror -pedantic, linked against
 * the library like any C program. Every function of ctxalloc.h is called, on its success
 * paths and on its error paths (bad alignment, bad sizes, bad options, an exhausted
 * region, foreign pointers and double frees under the count policy, and one misuse under
 * the abort policy in a child process). Prints one line per failed check and exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctxalloc/adaptors/ctxalloc.h"

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    ++g_checks;                                                                                    \
    if (!(cond)) {                                                                                 \
      ++g_failures;                                                                                \
      fprintf(stderr, "%s:%d: check failed: %s (last error: \"%s\")\n", __FILE__, __LINE__, #cond, \
              ctxalloc_last_error());                                                              \
    }                                                                                              \
  } while (0)

/* The last error mentions `part`. */
#define CHECK_ERROR(part) CHECK(strstr(ctxalloc_last_error(), (part)) != NULL)

#define KIB ((size_t)1024)

static int all_bytes(const void* p, size_t n, unsigned char value) {
  const unsigned char* b = (const unsigned char*)p;
  size_t i;
  for (i = 0; i < n; ++i) {
    if (b[i] != value) return 0;
  }
  return 1;
}

static ctxalloc_source* mmap_source(void) {
  ctxalloc_source* s = ctxalloc_source_create_mmap(NULL);
  CHECK(s != NULL);
  return s;
}

/* ------------------------------------------------------------------ errors, policy */

static void test_errors_and_policy(void) {
  CHECK(ctxalloc_set_misuse_policy(7) == -EINVAL);
  CHECK_ERROR("7 is not a policy");
  CHECK(ctxalloc_set_misuse_policy(CTXALLOC_MISUSE_ABORT) == 0);
  CHECK(ctxalloc_get_misuse_policy() == CTXALLOC_MISUSE_ABORT);
  CHECK(ctxalloc_set_misuse_policy(CTXALLOC_MISUSE_COUNT) == 0);
  CHECK(ctxalloc_get_misuse_policy() == CTXALLOC_MISUSE_COUNT);
  /* NULL handles are errors, never crashes. */
  CHECK(ctxalloc_allocate(NULL, 16, 0, NULL) == NULL && errno == EINVAL);
  CHECK_ERROR("null allocator");
  CHECK(ctxalloc_free(NULL, NULL) == -EINVAL);
  CHECK(ctxalloc_contains(NULL, NULL) == -EINVAL);
  CHECK(ctxalloc_reset(NULL) == -EINVAL);
  CHECK(ctxalloc_get_stats(NULL, NULL) == -EINVAL);
  CHECK(ctxalloc_source_get_stats(NULL, NULL) == -EINVAL);
  CHECK(ctxalloc_check_invariants(NULL, NULL, 0) == -EINVAL);
  CHECK(ctxalloc_source_check_invariants(NULL, NULL, 0) == -EINVAL);
  CHECK(ctxalloc_source_release(NULL, NULL, 0) == -EINVAL);
  CHECK(ctxalloc_source_obtain(NULL, 1, 0, NULL) == NULL && errno == EINVAL);
  CHECK(ctxalloc_reallocate(NULL, NULL, 0, 1, 0, 0, NULL) == NULL && errno == EINVAL);
  CHECK(ctxalloc_usable_size(NULL, NULL) == 0);
  CHECK(strcmp(ctxalloc_allocator_name(NULL), "") == 0);
  CHECK(strcmp(ctxalloc_source_name(NULL), "") == 0);
  CHECK(ctxalloc_allocator_destroy(NULL) == 0);
  CHECK(ctxalloc_source_destroy(NULL) == 0);
}

/* A misuse under the abort policy kills the process (here a child) with SIGABRT, after
   one line on stderr that names the misuse, the allocator and the call. */
static void test_abort_policy(void) {
  int fds[2];
  char line[256] = {0};
  size_t got = 0;
  ssize_t n;
  pid_t child;
  int status = 0;
  CHECK(pipe(fds) == 0);
  fflush(NULL);
  child = fork();
  if (child == 0) {
    ctxalloc_source* s = ctxalloc_source_create_mmap(NULL);
    ctxalloc_allocator* a = ctxalloc_bitset_create(s, 64 * KIB, 64);
    int local = 0;
    dup2(fds[1], 2);
    ctxalloc_set_misuse_policy(CTXALLOC_MISUSE_ABORT);
    ctxalloc_free(a, &local);
    _exit(0); /* not reached when the misuse aborts */
  }
  close(fds[1]);
  while (got + 1 < sizeof line && (n = read(fds[0], line + got, sizeof line - 1 - got)) > 0)
    got += (size_t)n;
  close(fds[0]);
  CHECK(child > 0);
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  CHECK(strstr(line, "ctxalloc: foreign pointer in bitset.deallocate(0x") != NULL);
}

/* ------------------------------------------------------------------ sources */

static void test_mmap_source(void) {
  ctxalloc_mmap_options o;
  ctxalloc_source* s;
  ctxalloc_source_stats st;
  size_t actual = 0;
  char message[128];
  void* p;

  ctxalloc_mmap_options_init(&o);
  CHECK(o.huge_pages == CTXALLOC_HUGE_NONE && o.numa_mode == CTXALLOC_NUMA_DEFAULT);
  CHECK(ctxalloc_mmap_options_add_node(&o, CTXALLOC_MAX_NUMA_NODES) == -EINVAL);
  CHECK_ERROR("not below 1024");
  CHECK(ctxalloc_mmap_options_add_node(NULL, 0) == -EINVAL);

  /* An enum field out of range, and a node the machine does not have. */
  o.huge_pages = 9;
  CHECK(ctxalloc_source_create_mmap(&o) == NULL && errno == EINVAL);
  CHECK_ERROR("outside its enum");
  ctxalloc_mmap_options_init(&o);
  o.numa_mode = CTXALLOC_NUMA_BIND;
  CHECK(ctxalloc_mmap_options_add_node(&o, 1000) == 0);
  CHECK(ctxalloc_source_create_mmap(&o) == NULL && errno == EINVAL);

  /* Bound to node 0 (which every Linux with NUMA support has), populated. */
  ctxalloc_mmap_options_init(&o);
  o.populate = 1;
  if (access("/sys/devices/system/node/node0", F_OK) == 0) {
    o.numa_mode = CTXALLOC_NUMA_BIND;
    CHECK(ctxalloc_mmap_options_add_node(&o, 0) == 0);
  }
  s = ctxalloc_source_create_mmap(&o);
  CHECK(s != NULL);
  if (s == NULL) return;
  CHECK(strcmp(ctxalloc_source_name(s), "mmap") == 0);
  p = ctxalloc_source_obtain(s, 10000, 0, &actual);
  CHECK(p != NULL);
  CHECK(actual >= 10000 && actual % 4096 == 0);
  memset(p, 0x5A, actual);
  CHECK(ctxalloc_source_obtain(s, 0, 0, NULL) == NULL && errno == EINVAL);
  CHECK(ctxalloc_source_obtain(s, 4096, 3, NULL) == NULL && errno == EINVAL);
  CHECK_ERROR("not a power of two");
  CHECK(ctxalloc_source_get_stats(s, &st) == 0);
  CHECK(st.obtains == 1 && st.bytes_held == actual);
  CHECK(ctxalloc_source_check_invariants(s, message, sizeof message) == 0);
  CHECK(message[0] == '\0');
  CHECK(ctxalloc_source_release(s, p, actual) == 0);
  /* Released twice: refused and counted (count policy). */
  CHECK(ctxalloc_source_release(s, p, actual) == -EINVAL);
  CHECK(ctxalloc_source_get_stats(s, &st) == 0);
  CHECK(st.releases == 1 && st.misuses == 1 && st.bytes_held == 0);
  CHECK(ctxalloc_source_destroy(s) == 0);
}

static void test_region_source(void) {
  static _Alignas(4096) unsigned char buf[256 * 1024];
  ctxalloc_source* s;
  ctxalloc_allocator* a;
  ctxalloc_source_stats st;
  char message[256];
  unsigned char saved;
  int n = 0;

  CHECK(ctxalloc_source_create_region(NULL, 4096, 0) == NULL && errno == EINVAL);
  CHECK(ctxalloc_source_create_region(buf, sizeof buf, 3) == NULL && errno == EINVAL);
  CHECK(ctxalloc_source_create_region(buf, 100, 0) == NULL && errno == EINVAL);
  s = ctxalloc_source_create_region(buf, sizeof buf, 0);
  CHECK(s != NULL);
  if (s == NULL) return;
  CHECK(strcmp(ctxalloc_source_name(s), "region") == 0);

  /* A bump allocator on 64 KiB of it, filled until the region is exhausted. */
  a = ctxalloc_bump_create(s, 64 * KIB);
  CHECK(a != NULL);
  while (ctxalloc_allocate(a, 1000, 8, NULL) != NULL)
    ++n;
  CHECK(errno == ENOMEM);
  CHECK_ERROR("do not fit in bump allocator");
  CHECK(n == 65); /* 65 blocks of 1,000 bytes (no padding at alignment 8) in 65,536 */
  CHECK(ctxalloc_bump_create(s, 1024 * KIB) == NULL && errno == ENOMEM);
  CHECK_ERROR("no region of 1048576 bytes");

  /* The source cannot go while the allocator uses it. */
  CHECK(ctxalloc_source_destroy(s) == -EBUSY);
  CHECK_ERROR("still has 1 allocators");
  CHECK(ctxalloc_allocator_destroy(a) == 0);
  CHECK(ctxalloc_source_get_stats(s, &st) == 0);
  CHECK(st.obtains == 1 && st.releases == 1 && st.bytes_held == 0);

  /* Its bitmaps are the first bytes of buf: a used bit on a free granule is caught. */
  CHECK(ctxalloc_source_check_invariants(s, message, sizeof message) == 0);
  saved = buf[2];
  buf[2] ^= 0x10;
  CHECK(ctxalloc_source_check_invariants(s, message, sizeof message) == -EUCLEAN);
  CHECK(strstr(message, "region") != NULL);
  CHECK(strstr(ctxalloc_last_error(), message) != NULL);
  CHECK(ctxalloc_source_check_invariants(s, message, 8) == -EUCLEAN);
  CHECK(strlen(message) == 7); /* truncated to the caller's buffer */
  buf[2] = saved;
  CHECK(ctxalloc_source_check_invariants(s, NULL, 0) == 0);
  CHECK(ctxalloc_source_destroy(s) == 0);
}

static void test_arena_source(void) {
  ctxalloc_source* parent = mmap_source();
  ctxalloc_source* arena;
  ctxalloc_allocator* a;
  ctxalloc_source_stats st;
  void* p;

  CHECK(ctxalloc_source_create_arena(NULL, 4096, 0) == NULL && errno == EINVAL);
  CHECK(ctxalloc_source_create_arena(parent, 0, 0) == NULL && errno == EINVAL);
  arena = ctxalloc_source_create_arena(parent, 64 * KIB, 256 * KIB);
  CHECK(arena != NULL);
  if (arena == NULL) return;
  CHECK(strcmp(ctxalloc_source_name(arena), "arena") == 0);
  CHECK(ctxalloc_source_destroy(parent) == -EBUSY);

  /* Blocks are aligned to their (power-of-two) size, and no more. */
  p = ctxalloc_source_obtain(arena, 1000, 64 * KIB, NULL);
  CHECK(p != NULL && (uintptr_t)p % (64 * KIB) == 0);
  CHECK(ctxalloc_source_obtain(arena, 1000, 128 * KIB, NULL) == NULL && errno == EINVAL);
  CHECK_ERROR("above the blocks' alignment");
  CHECK(ctxalloc_source_obtain(arena, 65 * KIB, 0, NULL) == NULL && errno == ENOMEM);
  CHECK(ctxalloc_source_release(arena, p, 64 * KIB) == 0);

  /* A context allocator per arena block, as the switchable layer's flows get them. */
  a = ctxalloc_context_allocator_create(arena, CTXALLOC_LIFETIME_MEDIUM, 64 * KIB, NULL);
  CHECK(a != NULL);
  CHECK(ctxalloc_context_allocator_create(arena, CTXALLOC_LIFETIME_LONG, 100 * KIB, NULL) == NULL);
  CHECK(errno == ENOMEM);
  CHECK(ctxalloc_allocate(a, 100, 0, NULL) != NULL);
  CHECK(ctxalloc_source_destroy(arena) == -EBUSY);
  CHECK(ctxalloc_allocator_destroy(a) == 0);
  CHECK(ctxalloc_source_get_stats(arena, &st) == 0);
  CHECK(st.obtains == 2 && st.releases == 2);
  CHECK(ctxalloc_source_check_invariants(arena, NULL, 0) == 0);
  CHECK(ctxalloc_source_destroy(arena) == 0);
  CHECK(ctxalloc_source_destroy(parent) == 0);
}

/* ------------------------------------------------------------------ allocators */

static void test_bump(void) {
  ctxalloc_source* s = mmap_source();
  ctxalloc_allocator* a;
  ctxalloc_stats st;
  char *x, *y, *g;
  size_t usable = 0;

  CHECK(ctxalloc_bump_create(NULL, 4096) == NULL && errno == EINVAL);
  CHECK(ctxalloc_bump_create(s, 0) == NULL && errno == EINVAL);
  a = ctxalloc_bump_create(s, 64 * KIB);
  CHECK(a != NULL);
  if (a == NULL) return;
  CHECK(strcmp(ctxalloc_allocator_name(a), "bump") == 0);
  x = ctxalloc_allocate(a, 100, 8, &usable);
  CHECK(x != NULL && usable == 100);
  y = ctxalloc_allocate(a, 50, 8, NULL);
  CHECK(y == x + 104);
  CHECK(ctxalloc_contains(a, y) == 1);
  CHECK(ctxalloc_contains(a, &usable) == 0);
  /* Only the most recent block grows in place; an older one cannot without moving. */
  memset(y, 0x11, 50);
  g = ctxalloc_reallocate(a, y, 50, 500, 8, CTXALLOC_REALLOC_NO_MOVE, &usable);
  CHECK(g == y && usable == 500 && all_bytes(g, 50, 0x11));
  CHECK(ctxalloc_reallocate(a, x, 100, 200, 8, CTXALLOC_REALLOC_NO_MOVE, NULL) == NULL);
  CHECK(errno == ENOMEM);
  CHECK_ERROR("in place");
  /* A bump allocator cannot recover sizes: realloc without one is refused. */
  CHECK(ctxalloc_usable_size(a, x) == 0);
  CHECK(ctxalloc_reallocate(a, x, 0, 200, 8, 0, NULL) == NULL && errno == EINVAL);
  CHECK_ERROR("pass old_size");
  CHECK(ctxalloc_free_sized(a, g, 500, 8) == 0);
  CHECK(ctxalloc_allocate(a, 10, 8, NULL) == y); /* freed in place: the space is reused */
  CHECK(ctxalloc_free(a, x) == 0);               /* older: counted, reclaimed by reset */
  CHECK(ctxalloc_get_stats(a, &st) == 0);
  CHECK(st.allocations == 3 && st.deallocations == 2 && st.grows == 1);
  CHECK(st.bytes_in_use == 114 && st.capacity == 64 * KIB);
  CHECK(ctxalloc_reset(a) == 0);
  CHECK(ctxalloc_allocate(a, 64 * KIB, 1, NULL) == x); /* the whole region again */
  CHECK(ctxalloc_check_invariants(a, NULL, 0) == 0);
  CHECK(ctxalloc_allocator_destroy(a) == 0);
  CHECK(ctxalloc_source_destroy(s) == 0);
}

static void test_bitset(void) {
  ctxalloc_source* s = mmap_source();
  ctxalloc_allocator* a;
  ctxalloc_stats st;
  uint64_t misuses;
  int local = 0;
  char *p, *q, *z;
  char message[256];
  size_t usable = 0;

  CHECK(ctxalloc_bitset_create(s, 64 * KIB, 12) == NULL && errno == EINVAL);
  CHECK_ERROR("not a power of two");
  a = ctxalloc_bitset_create(s, 64 * KIB, 64);
  CHECK(a != NULL);
  if (a == NULL) return;
  CHECK(strcmp(ctxalloc_allocator_name(a), "bitset") == 0);

  /* Bad alignments and impossible sizes. */
  CHECK(ctxalloc_allocate(a, 16, 3, NULL) == NULL && errno == EINVAL);
  CHECK_ERROR("alignment 3");
  CHECK(ctxalloc_allocate(a, 16, (size_t)1 << 31, NULL) == NULL && errno == EINVAL);
  CHECK(ctxalloc_allocate(a, SIZE_MAX, 8, NULL) == NULL && errno == ENOMEM);
  CHECK(ctxalloc_allocate(a, SIZE_MAX / 2, 4096, NULL) == NULL && errno == ENOMEM);
  CHECK(ctxalloc_allocate(a, 128 * KIB, 8, NULL) == NULL && errno == ENOMEM);
  CHECK(ctxalloc_reallocate(a, NULL, 0, 16, 0, 2, NULL) == NULL && errno == EINVAL);
  CHECK_ERROR("unknown flags");

  p = ctxalloc_allocate(a, 100, 0, &usable);
  CHECK(p != NULL && usable == 128 && (uintptr_t)p % 64 == 0);
  CHECK(ctxalloc_usable_size(a, p) == 128);
  CHECK(ctxalloc_usable_size(a, p + 64) == 0);
  /* Grown in place (the blocks after it are free), then shrunk, size recovered. */
  memset(p, 0x22, 100);
  q = ctxalloc_reallocate(a, p, 0, 1000, 0, CTXALLOC_REALLOC_NO_MOVE, &usable);
  CHECK(q == p && usable == 1024 && all_bytes(q, 100, 0x22));
  q = ctxalloc_reallocate(a, q, 0, 10, 0, 0, &usable);
  CHECK(q == p && usable == 64);
  CHECK(ctxalloc_free(a, q) == 0);

  /* Misuse under the count policy: refused, counted, the allocator stays consistent. */
  misuses = ctxalloc_misuse_count();
  CHECK(ctxalloc_free(a, q) == -EINVAL);
  CHECK_ERROR("freed before");
  CHECK(ctxalloc_free(a, &local) == -EINVAL);
  CHECK_ERROR("foreign pointer");
  CHECK(ctxalloc_reallocate(a, &local, 4, 64, 0, 0, NULL) == NULL && errno == EINVAL);
  CHECK(ctxalloc_reallocate(a, &local, 0, 64, 0, 0, NULL) == NULL && errno == EINVAL);
  CHECK_ERROR("foreign pointer");
  p = ctxalloc_allocate(a, 64, 0, NULL);
  CHECK(ctxalloc_free_sized(a, p, 300, 0) == -EINVAL); /* 5 blocks: not this one's size */
  CHECK(ctxalloc_free_sized(a, p, 64, 5) == -EINVAL);  /* bad alignment: not even tried */
  CHECK(ctxalloc_misuse_count() == misuses + 5);
  CHECK(ctxalloc_get_stats(a, &st) == 0);
  CHECK(st.misuses == 4 && st.allocations == 2 && st.deallocations == 1);
  CHECK(ctxalloc_free_sized(a, p, 64, 0) == 0);
  CHECK(ctxalloc_check_invariants(a, message, sizeof message) == 0);

  /* allocate_zeroed zeroes memory that was used before. */
  p = ctxalloc_allocate(a, 256, 0, NULL);
  memset(p, 0xFF, 256);
  CHECK(ctxalloc_free(a, p) == 0);
  z = ctxalloc_allocate_zeroed(a, 256, 0, &usable);
  CHECK(z == p && usable == 256 && all_bytes(z, 256, 0));

  /* Corrupted metadata: the bit sets lie at the start of the region (its first page;
     the 256-byte block above is block 0, the run [0, 4)): mark block 1 free. */
  {
    uint64_t* free_set = (uint64_t*)((uintptr_t)z & ~(uintptr_t)4095);
    free_set[0] |= 2;
    CHECK(ctxalloc_check_invariants(a, message, sizeof message) == -EUCLEAN);
    CHECK(strstr(message, "bitset") != NULL);
    free_set[0] &= ~(uint64_t)2;
    CHECK(ctxalloc_check_invariants(a, message, sizeof message) == 0);
  }
  CHECK(ctxalloc_reset(a) == -ENOTSUP);
  CHECK_ERROR("bump and context allocators can");
  CHECK(ctxalloc_allocator_destroy(a) == 0);
  CHECK(ctxalloc_source_destroy(s) == 0);
}

static void test_tree(void) {
  ctxalloc_source* s = mmap_source();
  ctxalloc_source* tiny = ctxalloc_source_create_arena(s, 128, 4096);
  ctxalloc_allocator* a;
  char *p, *q;
  size_t usable = 0;

  CHECK(ctxalloc_tree_create(s, 64 * KIB, 48, 0) == NULL && errno == EINVAL);
  CHECK_ERROR("powers of two");
  CHECK(ctxalloc_tree_create(s, 64 * KIB, 4096, 1024) == NULL && errno == EINVAL);
  CHECK(ctxalloc_tree_create(tiny, 128, 0, 0) == NULL && errno == EINVAL);
  CHECK_ERROR("cannot hold the tree's metadata");
  a = ctxalloc_tree_create(s, 256 * KIB, 32, 16 * KIB);
  CHECK(a != NULL);
  if (a == NULL) return;
  CHECK(strcmp(ctxalloc_allocator_name(a), "tree") == 0);
  CHECK(ctxalloc_allocate(a, 16 * KIB + 1, 0, NULL) == NULL && errno == ENOMEM);
  CHECK_ERROR("larger than it serves");
  p = ctxalloc_allocate(a, 40, 256, &usable);
  CHECK(p != NULL && usable == 64 && (uintptr_t)p % 256 == 0);
  memset(p, 0x33, 40);
  q = ctxalloc_reallocate(a, p, 0, 5000, 256, 0, &usable); /* size recovered */
  CHECK(q != NULL && usable >= 5000 && all_bytes(q, 40, 0x33));
  CHECK(ctxalloc_usable_size(a, q) == usable);
  q = ctxalloc_reallocate(a, q, 0, 0, 256, 0, NULL); /* to 0: freed */
  CHECK(q != NULL && ctxalloc_contains(a, q) == 0);  /* the zero-size pointer */
  CHECK(ctxalloc_free(a, q) == 0);
  CHECK(ctxalloc_reallocate(a, p, 0, 100, 256, 0, NULL) == NULL && errno == EINVAL);
  CHECK_ERROR("pass old_size");
  CHECK(ctxalloc_check_invariants(a, NULL, 0) == 0);
  CHECK(ctxalloc_allocator_destroy(a) == 0);
  CHECK(ctxalloc_source_destroy(tiny) == 0);
  CHECK(ctxalloc_source_destroy(s) == 0);
}

static void test_size_class(void) {
  ctxalloc_source* s = mmap_source();
  ctxalloc_allocator* a;
  ctxalloc_source_stats ss;
  void* p[100];
  size_t usable = 0;
  int i;

  CHECK(ctxalloc_size_class_create(NULL, 0) == NULL && errno == EINVAL);
  a = ctxalloc_size_class_create(s, 1);
  CHECK(a != NULL);
  if (a == NULL) return;
  CHECK(strcmp(ctxalloc_allocator_name(a), "size_class") == 0);
  for (i = 0; i < 100; ++i) {
    p[i] = ctxalloc_allocate(a, 100, 0, &usable);
    CHECK(p[i] != NULL && usable == 112);
  }
  CHECK(ctxalloc_source_get_stats(s, &ss) == 0);
  CHECK(ss.obtains == 1 && ss.bytes_held == 4096 * KIB); /* one 4 MiB segment */
  CHECK(ctxalloc_allocate(a, 3000, 0, NULL) == NULL && errno == ENOMEM);
  CHECK(ctxalloc_usable_size(a, p[7]) == 112);
  for (i = 0; i < 100; ++i)
    CHECK(ctxalloc_free(a, p[i]) == 0);
  CHECK(ctxalloc_free(a, p[0]) == -EINVAL);
  CHECK(ctxalloc_check_invariants(a, NULL, 0) == 0);
  CHECK(ctxalloc_source_destroy(s) == -EBUSY);
  CHECK(ctxalloc_allocator_destroy(a) == 0);
  CHECK(ctxalloc_source_get_stats(s, &ss) == 0);
  CHECK(ss.bytes_held == 0);
  CHECK(ctxalloc_source_destroy(s) == 0);
}

static void test_mmap_allocator(void) {
  ctxalloc_mmap_options o;
  ctxalloc_allocator* a;
  ctxalloc_stats st;
  char *p, *q;
  size_t usable = 0;

  ctxalloc_mmap_options_init(&o);
  o.numa_mode = 17;
  CHECK(ctxalloc_mmap_allocator_create(&o) == NULL && errno == EINVAL);
  ctxalloc_mmap_options_init(&o);
  o.no_reserve = 1;
  o.huge_pages = CTXALLOC_HUGE_2M;
  CHECK(ctxalloc_mmap_allocator_create(&o) == NULL && errno == EINVAL); /* contradictory */
  a = ctxalloc_mmap_allocator_create(NULL);
  CHECK(a != NULL);
  if (a == NULL) return;
  CHECK(strcmp(ctxalloc_allocator_name(a), "mmap") == 0);
  p = ctxalloc_allocate_zeroed(a, 1000 * KIB, 0, &usable);
  CHECK(p != NULL && usable == 1000 * KIB && all_bytes(p, usable, 0));
  memset(p, 0x44, usable);
  CHECK(ctxalloc_usable_size(a, p) == 1000 * KIB);
  CHECK(ctxalloc_usable_size(a, p + 4096) == 0);
  q = ctxalloc_reallocate(a, p, 0, 4096 * KIB, 0, 0, &usable);
  CHECK(q != NULL && usable == 4096 * KIB && all_bytes(q, 1000 * KIB, 0x44));
  CHECK(ctxalloc_free(a, q) == 0); /* unsized: the mapping's size is known */
  CHECK(ctxalloc_get_stats(a, &st) == 0);
  CHECK(st.allocations == 1 && st.deallocations == 1 && st.grows == 1 && st.bytes_in_use == 0);
  CHECK(ctxalloc_check_invariants(a, NULL, 0) == 0);
  CHECK(ctxalloc_allocator_destroy(a) == 0);
}

static void test_context_allocators(void) {
  static const char* const names[] = {"context(bump)", "context(bitset)", "context(tree)"};
  ctxalloc_source* s = mmap_source();
  ctxalloc_context_options o;
  ctxalloc_stats st;
  int life;

  CHECK(ctxalloc_context_allocator_create(s, 3, 64 * KIB, NULL) == NULL && errno == EINVAL);
  CHECK_ERROR("3 is not a lifetime");
  ctxalloc_context_options_init(&o);
  CHECK(o.bitset_block_size == 0 && o.tree_min_class == 0 && o.tree_max_class == 0);
  o.bitset_block_size = 12;
  CHECK(ctxalloc_context_allocator_create(s, CTXALLOC_LIFETIME_MEDIUM, 64 * KIB, &o) == NULL);
  CHECK(errno == EINVAL);
  CHECK_ERROR("block size");
  ctxalloc_context_options_init(&o);
  o.tree_min_class = 48;
  CHECK(ctxalloc_context_allocator_create(s, CTXALLOC_LIFETIME_LONG, 64 * KIB, &o) == NULL);
  CHECK(errno == EINVAL);
  o.tree_min_class = 0;
  o.tree_max_class = 64 * KIB; /* the largest class must fit in the region */
  CHECK(ctxalloc_context_allocator_create(s, CTXALLOC_LIFETIME_LONG, 64 * KIB, &o) == NULL);
  CHECK_ERROR("region too small");

  for (life = CTXALLOC_LIFETIME_SHORT; life <= CTXALLOC_LIFETIME_LONG; ++life) {
    ctxalloc_allocator* a = ctxalloc_context_allocator_create(s, life, 64 * KIB, NULL);
    char* blocks[64];
    int n = 0, i;
    size_t usable = 0;
    CHECK(a != NULL);
    if (a == NULL) continue;
    CHECK(strcmp(ctxalloc_allocator_name(a), names[life]) == 0);
    while (n < 64 && (blocks[n] = ctxalloc_allocate(a, 1500, 16, &usable)) != NULL) {
      memset(blocks[n], n, 1500);
      ++n;
    }
    CHECK(n > 30 && n < 64); /* 64 KiB hold about 42 blocks of 1,500 bytes */
    /* The most recent block's size is known to every kind: freed without it, in place. */
    CHECK(ctxalloc_usable_size(a, blocks[n - 1]) == usable);
    CHECK(ctxalloc_free(a, blocks[n - 1]) == 0);
    --n;
    for (i = 0; i < n; ++i)
      CHECK(all_bytes(blocks[i], 1500, (unsigned char)i));
    CHECK(ctxalloc_reset(a) == 0);
    CHECK(ctxalloc_get_stats(a, &st) == 0);
    CHECK(st.bytes_in_use == 0 && st.allocations == st.deallocations);
    CHECK(ctxalloc_allocate(a, 1500, 16, NULL) == blocks[0]); /* starts over */
    CHECK(ctxalloc_check_invariants(a, NULL, 0) == 0);
    CHECK(ctxalloc_allocator_destroy(a) == 0);
  }
  CHECK(ctxalloc_source_destroy(s) == 0);
}

static void test_zero_size_requests(void) {
  ctxalloc_source* s = mmap_source();
  ctxalloc_allocator* a = ctxalloc_tree_create(s, 64 * KIB, 0, 0);
  size_t usable = 1;
  char *z, *g;
  CHECK(a != NULL);
  if (a == NULL) return;
  z = ctxalloc_allocate(a, 0, 64, &usable);
  CHECK(z != NULL && usable == 0 && (uintptr_t)z % 64 == 0);
  CHECK(ctxalloc_contains(a, z) == 0);
  CHECK(ctxalloc_free(a, z) == 0);
  CHECK(ctxalloc_free_sized(a, z, 0, 64) == 0);
  g = ctxalloc_reallocate(a, z, 0, 100, 64, 0, &usable); /* grows into a real block */
  CHECK(g != NULL && ctxalloc_contains(a, g) == 1 && usable >= 100);
  CHECK(ctxalloc_free(a, g) == 0);
  CHECK(ctxalloc_allocator_destroy(a) == 0);
  CHECK(ctxalloc_source_destroy(s) == 0);
}

int main(void) {
  test_errors_and_policy(); /* leaves the count policy in force for the misuse checks */
  test_abort_policy();
  test_mmap_source();
  test_region_source();
  test_arena_source();
  test_bump();
  test_bitset();
  test_tree();
  test_size_class();
  test_mmap_allocator();
  test_context_allocators();
  test_zero_size_requests();
  printf("ctxalloc_c_test: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
