/* ctxalloc's DPDK plugin, for C and C++ DPDK applications.
 *
 * Linking libctxalloc_dpdk (or loading librte_mempool_ctxalloc.so with EAL -d, or
 * LD_PRELOAD) registers the "ctxalloc" mempool ops, the "ctxalloc" log type and the
 * /ctxalloc/ telemetry commands. The configuration is read on first use: the first
 * ctxalloc mempool, a telemetry request, or ctxalloc_dpdk_init(). docs/dpdk.md has the
 * details. Every function returns 0 (or a value) on success and a negative errno on
 * failure; none lets a C++ exception out.
 */
#ifndef CTXALLOC_DPDK_H
#define CTXALLOC_DPDK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rte_mempool;

/** Mempool ops name of the driver: rte_pktmbuf_pool_create_by_ops(..., CTXALLOC_MEMPOOL_OPS)
 *  or EAL --mbuf-pool-ops-name=ctxalloc. */
#define CTXALLOC_MEMPOOL_OPS "ctxalloc"

/** The lcore id of the slot that threads without an lcore id share. */
#define CTXALLOC_LCORE_NON_EAL 128u

/**
 * Reads the configuration now instead of on first use.
 * @param config_path  an INI file, or NULL for $CTXALLOC_CONFIG or the embedded default
 * @return 0; -EINVAL when the file is bad (the errors are logged with file:line);
 *         -EALREADY when another file was loaded already; -ENOMEM.
 */
int ctxalloc_dpdk_init(const char* config_path);

/** The file the configuration came from ("embedded:config/default.ini" for the default),
 *  or NULL before it was loaded. */
const char* ctxalloc_dpdk_config_source(void);

/**
 * Checks a configuration file without loading it.
 * @param path    the file
 * @param errors  receives the errors, one "file:line: [section] key: message" per line
 *                (may be NULL)
 * @param len     size of errors
 * @return 0 when the file is valid; -EINVAL when it is not; -ENOMEM.
 */
int ctxalloc_dpdk_check_config(const char* path, char* errors, size_t len);

/** Index of the "ctxalloc" ops in rte_mempool_ops_table, or the negative errno their
 *  registration failed with (-ENOSPC: the table's 16 slots were full). */
int ctxalloc_dpdk_ops_index(void);

/** The "ctxalloc" rte_log type. */
int ctxalloc_dpdk_log_type(void);

/** What telemetry reports of one account. */
struct ctxalloc_dpdk_stats {
  uint64_t allocations;   /**< objects or blocks handed out */
  uint64_t deallocations; /**< objects or blocks given back */
  uint64_t failures;      /**< requests refused */
  uint64_t misuses;       /**< double frees, foreign pointers, ... */
  uint64_t bytes_in_use;
  uint64_t peak_bytes; /**< exact per lcore; a sum of peaks (an upper bound) per socket */
  uint64_t capacity;
};

/** Kinds of allocator that report (sources are summed by account). */
enum ctxalloc_dpdk_account {
  CTXALLOC_ACCOUNT_THREAD = 0,      /**< per-lcore thread allocators */
  CTXALLOC_ACCOUNT_CONTEXT = 1,     /**< flow contexts */
  CTXALLOC_ACCOUNT_GLOBAL_HEAP = 2, /**< per-socket global heaps */
  CTXALLOC_ACCOUNT_MEMPOOL = 3,     /**< ctxalloc mempools */
};

/**
 * One lcore's figures for one account.
 * @param lcore_id  an lcore id, or CTXALLOC_LCORE_NON_EAL
 * @param account   a value of enum ctxalloc_dpdk_account (an int, so that any value a C
 *                  caller passes is checked rather than undefined)
 * @return 0, or -EINVAL (bad id, account or out pointer).
 */
int ctxalloc_dpdk_lcore_stats(unsigned int lcore_id, int account, struct ctxalloc_dpdk_stats* out);

/** One socket's figures for one account. @return 0, or -EINVAL. */
int ctxalloc_dpdk_socket_stats(unsigned int socket_id, int account,
                               struct ctxalloc_dpdk_stats* out);

/**
 * Checks a ctxalloc mempool's invariants (no thread may use the pool meanwhile): every
 * object it holds is one of its own and held once, no more than populated.
 * First it checks that the pool is a ctxalloc pool in this process: its ops_index must
 * name this process's ctxalloc driver and its pool data must be a ctxalloc pool's (read
 * only when in DPDK memory). An ops index is per process (docs/dpdk.md, "Secondary
 * processes"): when the two disagree the pool is refused, its data not walked.
 * @param why  receives the reason or the broken invariant (may be NULL)
 * @return 0; -EINVAL for a pool that is not a ctxalloc pool (neither its ops nor its
 *         data); -ENXIO when its ops_index and its pool data disagree (the message, also
 *         logged, names the pool, the index and the driver at that index here); -EFAULT
 *         when an invariant is broken; -ENOMEM.
 */
int ctxalloc_dpdk_mempool_check(const struct rte_mempool* mp, char* why, size_t len);

/* ------------------------------------------------------------------------------------
 * Per-lcore allocators (docs/dpdk.md, "Per-lcore allocators"): after rte_eal_init, a
 * global heap per socket and a thread heap per lcore on its socket's memory, flow
 * contexts from each lcore's arena, all torn down by ctxalloc_dpdk_fini().
 * ------------------------------------------------------------------------------------ */

/**
 * Builds the per-socket global heaps and per-lcore thread heaps from the configuration.
 * Call on the main lcore after rte_eal_init, before the lcores allocate.
 * @return 0 (also when already done); -EINVAL (bad configuration, or an lcore on a socket
 *         it does not describe); -ENODEV (EAL not initialised); -ENOMEM (memory could not
 *         be reserved: the log says where); -ENOTSUP (hugepages = require without
 *         hugepages in EAL). Nothing is left half made on failure.
 */
int ctxalloc_dpdk_lcores_setup(void);

/**
 * Binds the calling lcore to its heap: ctxalloc_dpdk_malloc() then serves from it
 * (unless its thread_allocator is none). Call it on the lcore itself (in its lcore main
 * function); ctxalloc_dpdk_flow_create() binds implicitly.
 * @return 0; -ENODEV (no heap for this thread: not set up, or no lcore id); -EBUSY.
 */
int ctxalloc_dpdk_lcore_bind(void);

/** Undoes ctxalloc_dpdk_lcore_bind() on the calling thread. @return 0, or -ENODEV. */
int ctxalloc_dpdk_lcore_unbind(void);

/** What ctxalloc_dpdk_fini() found and did. */
struct ctxalloc_dpdk_teardown {
  unsigned int lcores;      /**< lcore heaps */
  unsigned int sockets;     /**< global heaps */
  unsigned int busy_lcores; /**< lcores still running or bound on another thread */
  uint64_t bytes_returned;  /**< memory given back to DPDK or the kernel */
  uint64_t live_bytes;      /**< bytes still in use (0 for a clean tear-down) */
  uint64_t live_contexts;   /**< flow contexts not released */
};

/**
 * Tears the per-lcore allocators down: unbinds every lcore on its own thread (workers
 * must be waiting: call after rte_eal_mp_wait_lcore), checks that nothing is in use and
 * gives all memory back. Call on the main lcore, before rte_eal_cleanup.
 * @param report  receives what was found (may be NULL)
 * @return 0 (also when nothing was set up); -EBUSY when an lcore still runs or memory is
 *         still in use (logged per lcore and socket; nothing is freed).
 */
int ctxalloc_dpdk_fini(struct ctxalloc_dpdk_teardown* report);

/** A flow context (opaque): a bump, bit-set or tree allocator of the configured size. */
struct ctxalloc_dpdk_flow;

/**
 * A flow context of the configured kind and size from the calling lcore's arena.
 * @return the context, or NULL (no heap for this thread, max_flows live, or no memory
 *         left; counted in the lcore's figures).
 */
struct ctxalloc_dpdk_flow* ctxalloc_dpdk_flow_create(void);

/** The thread's allocation state saved by ctxalloc_dpdk_flow_enter(). */
struct ctxalloc_dpdk_scope {
  void* saved_context;
  unsigned char saved_mode;
};

/**
 * Makes a flow current on the calling lcore: ctxalloc_dpdk_malloc() serves from it
 * (falling back along the configured chain when it is full) until
 * ctxalloc_dpdk_flow_leave(saved). Scopes nest.
 * @return 0; -EINVAL (NULL); -EPERM (the flow belongs to another lcore).
 */
int ctxalloc_dpdk_flow_enter(struct ctxalloc_dpdk_flow* flow, struct ctxalloc_dpdk_scope* saved);

/** Restores what ctxalloc_dpdk_flow_enter() saved. */
void ctxalloc_dpdk_flow_leave(const struct ctxalloc_dpdk_scope* saved);

/**
 * Frees a flow context and everything allocated in it at once; every pointer into it is
 * dead afterwards. On the lcore that made it.
 * @return 0; -EINVAL (NULL); -EPERM (another lcore's flow: reported as misuse, kept).
 */
int ctxalloc_dpdk_flow_release(struct ctxalloc_dpdk_flow* flow);

/** size bytes (aligned for any type) from the current allocator: the flow entered, the
 *  lcore's heap, or the socket's global heap. NULL when the chain is exhausted. */
void* ctxalloc_dpdk_malloc(size_t size);
/** The same with an alignment (a power of two). */
void* ctxalloc_dpdk_aligned_alloc(size_t align, size_t size);
/** Frees a block of any allocator of ctxalloc, from any lcore: it goes back to its owner
 *  (a block of another lcore's flow returns to that lcore). NULL is ignored. */
void ctxalloc_dpdk_free(void* p);

/** Where a heap's memory comes from. */
enum ctxalloc_dpdk_memory {
  CTXALLOC_DPDK_MEMORY_NONE = 0,
  CTXALLOC_DPDK_MEMORY_HUGEPAGES = 1,    /**< a DPDK memzone on the socket */
  CTXALLOC_DPDK_MEMORY_NORMAL_PAGES = 2, /**< mmap bound to the node (no hugepages) */
};

/** One lcore's allocators (see LcoreFigures in ctxalloc/dpdk/lcore.h). */
struct ctxalloc_dpdk_lcore_info {
  int present;     /**< the lcore has a heap */
  int bound;       /**< a thread is bound to it */
  int thread_mode; /**< its thread allocator is tree (0: none) */
  unsigned int socket;
  int memory; /**< enum ctxalloc_dpdk_memory */
  uint64_t page_size;
  uint64_t region_bytes;  /**< reserved: thread_size + ready flow blocks */
  uint64_t segment_bytes; /**< taken by the heap now */
  uint64_t peak_segment_bytes;
  struct ctxalloc_dpdk_stats thread; /**< the thread heap */
  uint64_t contexts_made;
  uint64_t contexts_released;
  uint64_t contexts_live;
  uint64_t context_failures;
  uint64_t flow_limit_hits;
  uint64_t context_bytes;
  uint64_t spills_to_thread; /**< context -> thread fallbacks */
  uint64_t spills_to_global; /**< context -> global fallbacks */
  uint64_t spill_failures;
  uint64_t spilled_bytes;
  uint64_t thread_to_global; /**< thread heap -> global heap fallbacks */
  uint64_t refused;
  uint64_t remote_received;
  uint64_t bytes_in_use;
  uint64_t peak_bytes;
};

/** @return 0, or -EINVAL (lcore_id >= 128 or out NULL); present is 0 without a heap. */
int ctxalloc_dpdk_lcore_info(unsigned int lcore_id, struct ctxalloc_dpdk_lcore_info* out);

/** One socket's global heap. */
struct ctxalloc_dpdk_socket_info {
  int present;
  int memory; /**< enum ctxalloc_dpdk_memory */
  uint64_t page_size;
  uint64_t region_bytes;
  uint64_t segment_bytes;
  uint64_t peak_segment_bytes;
  struct ctxalloc_dpdk_stats heap;
  unsigned int lcores;
};

/** @return 0, or -EINVAL (socket_id >= 32 or out NULL); present is 0 without a heap. */
int ctxalloc_dpdk_socket_info(unsigned int socket_id, struct ctxalloc_dpdk_socket_info* out);

/** Where a heap's pages are, by the kernel's word (move_pages status query per page). */
struct ctxalloc_dpdk_placement {
  unsigned int node;     /**< the node the heap belongs on (its socket) */
  uint64_t page_size;    /**< the stride of the query */
  uint64_t pages;        /**< pages in the heap's region */
  uint64_t local_pages;  /**< on node */
  uint64_t remote_pages; /**< on another node */
  int remote_node;       /**< the first such node, -1 when none */
  uint64_t absent_pages; /**< not faulted in */
};

/** An lcore's heap region. @return 0; -ENODEV (no heap); -EINVAL (out NULL); -ENOSYS
 *  (no NUMA in the kernel). */
int ctxalloc_dpdk_lcore_placement(unsigned int lcore_id, struct ctxalloc_dpdk_placement* out);
/** A socket's global heap region. @return as ctxalloc_dpdk_lcore_placement. */
int ctxalloc_dpdk_socket_placement(unsigned int socket_id, struct ctxalloc_dpdk_placement* out);

#ifdef __cplusplus
}
#endif

#endif /* CTXALLOC_DPDK_H */
