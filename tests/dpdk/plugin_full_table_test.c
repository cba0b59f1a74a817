/* The EAL plugin loaded into a DPDK process whose mempool ops table is already full
 * (16 slots): its registration must fail loudly (a logged error naming the full table),
 * and a pool asking for "ctxalloc" must then be refused rather than silently get other
 * ops. A C program that does not link ctxalloc: it only dlopen()s the plugin. */
#include <dlfcn.h>
#include <errno.h>
#include <rte_eal.h>
#include <rte_log.h>
#include <rte_mempool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static int dummy_alloc(struct rte_mempool* mp) {
  (void)mp;
  return -ENOTSUP;
}
static int dummy_enqueue(struct rte_mempool* mp, void* const* objs, unsigned n) {
  (void)mp, (void)objs, (void)n;
  return -ENOTSUP;
}
static int dummy_dequeue(struct rte_mempool* mp, void** objs, unsigned n) {
  (void)mp, (void)objs, (void)n;
  return -ENOTSUP;
}
static unsigned dummy_count(const struct rte_mempool* mp) {
  (void)mp;
  return 0;
}

int main(void) {
  char* argv[] = {"plugin_full_table_test",
                  "-l",
                  "0",
                  "--no-huge",
                  "-m",
                  "128",
                  "--no-shconf",
                  "--no-pci",
                  "--no-telemetry",
                  "--log-level=lib.eal:warning",
                  NULL};
  if (rte_eal_init((int)(sizeof argv / sizeof argv[0]) - 1, argv) < 0) return 1;
  struct rte_mempool_ops ops = {.alloc = dummy_alloc,
                                .enqueue = dummy_enqueue,
                                .dequeue = dummy_dequeue,
                                .get_count = dummy_count};
  unsigned i = 0;
  while (rte_mempool_ops_table.num_ops < RTE_MEMPOOL_MAX_OPS_IDX) {
    snprintf(ops.name, sizeof ops.name, "filler_%u", i++);
    CHECK(rte_mempool_register_ops(&ops) >= 0);
  }
  printf("filled the table with %u ops of our own (%u slots)\n", i, RTE_MEMPOOL_MAX_OPS_IDX);

  FILE* log = tmpfile();
  rte_openlog_stream(log);
  const char* plugin = getenv("CTXALLOC_PLUGIN");
  void* h = plugin ? dlopen(plugin, RTLD_NOW | RTLD_LOCAL) : NULL;
  if (h == NULL && plugin != NULL) fprintf(stderr, "dlopen: %s\n", dlerror());
  CHECK(h != NULL);
  rte_openlog_stream(NULL);
  char text[4096] = "";
  rewind(log);
  size_t n = fread(text, 1, sizeof text - 1, log);
  text[n] = '\0';
  printf("plugin log:\n%s", text);
  CHECK(strstr(text, "ctxalloc: cannot register mempool ops ctxalloc: the ops table is full") !=
        NULL);

  struct rte_mempool* mp = rte_mempool_create_empty("wants_ctxalloc", 64, 64, 0, 0, 0, 0);
  CHECK(mp != NULL);
  if (mp != NULL) {
    CHECK(rte_mempool_set_ops_byname(mp, "ctxalloc", NULL) == -EINVAL);
    rte_mempool_free(mp);
  }
  if (h != NULL) dlclose(h);
  fclose(log);
  rte_eal_cleanup();
  return failures == 0 ? 0 : 1;
}
