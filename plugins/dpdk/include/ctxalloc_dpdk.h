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
 * @param why  receives the broken invariant (may be NULL)
 * @return 0; -EINVAL for a pool that does not use the ctxalloc ops; -EFAULT when an
 *         invariant is broken; -ENOMEM.
 */
int ctxalloc_dpdk_mempool_check(const struct rte_mempool* mp, char* why, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* CTXALLOC_DPDK_H */
