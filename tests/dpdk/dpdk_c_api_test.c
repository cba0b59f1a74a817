/* The plugin used from C: ctxalloc_dpdk.h compiles as C11, and a C DPDK program gets the
 * ctxalloc ops, its statistics and its checks. Exits 0 when every check holds. */
#include <errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctxalloc_dpdk.h"

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

int main(void) {
  char* argv[] = {"dpdk_c_api_test",
                  "-l",
                  "0",
                  "--no-huge",
                  "-m",
                  "256",
                  "--no-shconf",
                  "--no-pci",
                  "--no-telemetry",
                  "--log-level=lib.eal:warning",
                  NULL};
  if (rte_eal_init((int)(sizeof argv / sizeof argv[0]) - 1, argv) < 0) {
    fprintf(stderr, "rte_eal_init failed\n");
    return 1;
  }
  CHECK(ctxalloc_dpdk_ops_index() >= 0);
  CHECK(ctxalloc_dpdk_log_type() >= 0);
  CHECK(ctxalloc_dpdk_config_source() == NULL); /* read on first use, not before */
  CHECK(ctxalloc_dpdk_init(NULL) == 0);
  CHECK(ctxalloc_dpdk_config_source() != NULL &&
        strcmp(ctxalloc_dpdk_config_source(), "embedded:config/default.ini") == 0);
  CHECK(ctxalloc_dpdk_init("/some/other.ini") == -EALREADY);

  struct rte_mempool* mp = rte_pktmbuf_pool_create_by_ops(
      "c_mbufs", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id(), CTXALLOC_MEMPOOL_OPS);
  CHECK(mp != NULL);
  if (mp != NULL) {
    struct ctxalloc_dpdk_stats before, after;
    CHECK(ctxalloc_dpdk_lcore_stats(rte_lcore_id(), CTXALLOC_ACCOUNT_MEMPOOL, &before) == 0);
    struct rte_mbuf* m[32];
    CHECK(rte_pktmbuf_alloc_bulk(mp, m, 32) == 0);
    CHECK(ctxalloc_dpdk_lcore_stats(rte_lcore_id(), CTXALLOC_ACCOUNT_MEMPOOL, &after) == 0);
    CHECK(after.bytes_in_use >= before.bytes_in_use + 32u * RTE_MBUF_DEFAULT_BUF_SIZE);
    CHECK(after.allocations == before.allocations + 32);
    rte_pktmbuf_free_bulk(m, 32);
    char why[128];
    CHECK(ctxalloc_dpdk_mempool_check(mp, why, sizeof why) == 0);
    rte_mempool_free(mp);
  }
  struct ctxalloc_dpdk_stats s;
  CHECK(ctxalloc_dpdk_lcore_stats(CTXALLOC_LCORE_NON_EAL + 1, CTXALLOC_ACCOUNT_THREAD, &s) ==
        -EINVAL);
  CHECK(ctxalloc_dpdk_lcore_stats(0, CTXALLOC_ACCOUNT_THREAD, NULL) == -EINVAL);

  /* A bad file: -EINVAL and its errors as text. */
  const char* root = getenv("CTXALLOC_SOURCE_ROOT");
  char path[4096], errors[1024];
  snprintf(path, sizeof path, "%s/tests/dpdk/configs/bad_unknown_kind.ini", root ? root : ".");
  CHECK(ctxalloc_dpdk_check_config(path, errors, sizeof errors) == -EINVAL);
  CHECK(strstr(errors, ":18: [flows] kind: \"slab\" is not growing, bump, bitset or tree") != NULL);
  snprintf(path, sizeof path, "%s/config/no-hugepages.ini", root ? root : ".");
  CHECK(ctxalloc_dpdk_check_config(path, errors, sizeof errors) == 0);
  CHECK(ctxalloc_dpdk_check_config(NULL, errors, sizeof errors) == -EINVAL);

  rte_eal_cleanup();
  if (failures == 0) printf("dpdk_c_api_test: all checks hold\n");
  return failures == 0 ? 0 : 1;
}
