/* A DPDK program outside the tree, built as C against the installed ctxalloc_dpdk.h and
   plugin library with nothing but `pkg-config --cflags --libs ctxalloc_dpdk` (which
   requires libdpdk): EAL on two lcores without hugepages, the per-lcore allocators set
   up, a flow on the worker filled through the C API and released, the figures read, and
   a tear-down that must find nothing in use. Exits 0 when every check holds. */
#include <ctxalloc_dpdk.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <stdio.h>
#include <string.h>

static int worker(void* arg) {
  int* ok = arg;
  struct ctxalloc_dpdk_flow* flow;
  struct ctxalloc_dpdk_scope saved;
  void* blocks[16];
  int i;
  *ok = ctxalloc_dpdk_lcore_bind() == 0;
  flow = ctxalloc_dpdk_flow_create();
  if (flow == NULL || ctxalloc_dpdk_flow_enter(flow, &saved) != 0) return *ok = 0;
  for (i = 0; i < 16; ++i) {
    blocks[i] = ctxalloc_dpdk_malloc(64 + 16 * (size_t)i);
    if (blocks[i] == NULL)
      *ok = 0;
    else
      memset(blocks[i], i, 64);
  }
  ctxalloc_dpdk_flow_leave(&saved);
  ctxalloc_dpdk_free(blocks[3]); /* one freed on its own, the rest with the flow */
  *ok = *ok && ctxalloc_dpdk_flow_release(flow) == 0;
  *ok = *ok && ctxalloc_dpdk_lcore_unbind() == 0;
  return 0;
}

int main(void) {
  char* argv[] = {"dpdk_consumer",
                  "-l",
                  "0-1",
                  "--no-huge",
                  "-m",
                  "256",
                  "--no-shconf",
                  "--no-pci",
                  "--no-telemetry",
                  "--log-level=lib.eal:warning",
                  NULL};
  struct ctxalloc_dpdk_lcore_info info;
  struct ctxalloc_dpdk_teardown report;
  unsigned int w;
  int ok = 0;
  if (rte_eal_init(10, argv) < 0) {
    fprintf(stderr, "dpdk_consumer: rte_eal_init failed\n");
    return 1;
  }
  if (ctxalloc_dpdk_lcores_setup() != 0) {
    fprintf(stderr, "dpdk_consumer: ctxalloc_dpdk_lcores_setup failed\n");
    return 1;
  }
  w = rte_get_next_lcore(-1, 1, 0);
  if (w >= RTE_MAX_LCORE || rte_eal_remote_launch(worker, &ok, w) != 0) return 1;
  rte_eal_mp_wait_lcore();
  ok = ok && ctxalloc_dpdk_lcore_info(w, &info) == 0 && info.present && info.contexts_made == 1 &&
       info.contexts_live == 0;
  ok = ok && ctxalloc_dpdk_fini(&report) == 0 && report.live_bytes == 0 && report.lcores == 2;
  printf("dpdk_consumer: lcore %u made %llu flow, %llu bytes returned: %s\n", w,
         (unsigned long long)info.contexts_made, (unsigned long long)report.bytes_returned,
         ok ? "ok" : "FAILED");
  rte_eal_cleanup();
  return ok ? 0 : 1;
}
