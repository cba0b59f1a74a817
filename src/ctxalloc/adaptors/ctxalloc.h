/*
 * ctxalloc.h: the C API of ctxalloc, usable from C11 and C++.
 *
 * Opaque handles: a memory source (ctxalloc_source: mmap with hugepage and NUMA options,
 * a region of the caller's memory, an arena of fixed blocks over another source) and an
 * allocator on a source (bump, bit set, tree, size classes, a context allocator of a
 * kind chosen by lifetime) or on its own mappings (mmap). docs/c_api.md is the guide.
 *
 * Errors: functions that return int return 0 (or a count, or a boolean 1/0) on success
 * and a negative errno on failure; functions that return a pointer return NULL and set
 * errno. Either way ctxalloc_last_error() says why, in one line, for the calling thread.
 * No C++ exception ever leaves these functions.
 *
 * Threads: a source may be shared by allocators on several threads (its calls are
 * serialised by a mutex; sources are called rarely, a region at a time). An allocator
 * belongs to one thread at a time, like the C++ allocators it wraps; only
 * ctxalloc_get_stats() may be called from any thread. Nothing here calls malloc: handles
 * live in their own mmap'd pages, so the API may be used from inside a malloc.
 *
 * Zero-size requests return a non-NULL pointer that must not be dereferenced (the
 * address equal to the alignment, never mapped); freeing it is a no-op. Alignments are
 * powers of two up to 1 GiB; 0 means the default, that of max_align_t (16).
 */
#ifndef CTXALLOC_H
#define CTXALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define CTXALLOC_NOEXCEPT noexcept
extern "C" {
#else
#define CTXALLOC_NOEXCEPT
#endif

/* ------------------------------------------------------------------------------------
 * Errors and misuse
 * ------------------------------------------------------------------------------------ */

/**
 * Why the calling thread's most recent failed call failed: "ctxalloc_allocate: 4096 bytes
 * aligned 64 do not fit in bump allocator (65536 of 65536 bytes in use)". Success does
 * not clear it (like errno). "" when no call on this thread has failed yet.
 * @return a thread-local string, valid until this thread's next failing call.
 */
const char* ctxalloc_last_error(void) CTXALLOC_NOEXCEPT;

/** What happens when the caller misuses an allocator (double free, foreign pointer, ...). */
typedef enum ctxalloc_misuse_policy {
  CTXALLOC_MISUSE_ABORT = 0, /**< print one line on stderr and abort() */
  CTXALLOC_MISUSE_COUNT = 1  /**< count it (ctxalloc_misuse_count, stats.misuses); the call
                                  fails with -EINVAL and the allocator stays consistent */
} ctxalloc_misuse_policy;

/**
 * Sets the process-wide misuse policy (default: abort in builds with checks, count in
 * release builds; CTXALLOC_MISUSE=abort|count in the environment overrides it).
 * @param policy CTXALLOC_MISUSE_ABORT or CTXALLOC_MISUSE_COUNT.
 * @return 0, or -EINVAL for any other value.
 */
int ctxalloc_set_misuse_policy(int policy) CTXALLOC_NOEXCEPT;

/** @return the policy in force (a ctxalloc_misuse_policy value). */
int ctxalloc_get_misuse_policy(void) CTXALLOC_NOEXCEPT;

/** @return misuses reported in this process so far (all allocators, all threads). */
uint64_t ctxalloc_misuse_count(void) CTXALLOC_NOEXCEPT;

/* ------------------------------------------------------------------------------------
 * Memory sources
 * ------------------------------------------------------------------------------------ */

/** A source of regions (pages or fixed blocks) that allocators are built on. */
typedef struct ctxalloc_source ctxalloc_source;

/** Pages to back mappings with. */
typedef enum ctxalloc_huge_pages {
  CTXALLOC_HUGE_NONE = 0,        /**< base pages */
  CTXALLOC_HUGE_TRANSPARENT = 1, /**< base pages advised for transparent hugepages */
  CTXALLOC_HUGE_2M = 2,          /**< hugetlb pages of 2 MiB */
  CTXALLOC_HUGE_1G = 3           /**< hugetlb pages of 1 GiB */
} ctxalloc_huge_pages;

/** What to do when hugetlb pages cannot be had. */
typedef enum ctxalloc_huge_fallback {
  CTXALLOC_HUGE_FALLBACK_TRANSPARENT = 0, /**< map base pages advised for THP, counted */
  CTXALLOC_HUGE_FALLBACK_FAIL = 1         /**< fail the request */
} ctxalloc_huge_fallback;

/** NUMA memory policy modes (mbind). */
typedef enum ctxalloc_numa_mode {
  CTXALLOC_NUMA_DEFAULT = 0,    /**< the thread's policy */
  CTXALLOC_NUMA_PREFERRED = 1,  /**< one node first, others when it is full */
  CTXALLOC_NUMA_BIND = 2,       /**< only the given nodes */
  CTXALLOC_NUMA_INTERLEAVE = 3, /**< page by page over the given nodes */
  CTXALLOC_NUMA_LOCAL = 4       /**< the node of the CPU that first touches a page */
} ctxalloc_numa_mode;

/** How node numbers are read (MPOL_F_STATIC_NODES / MPOL_F_RELATIVE_NODES). */
typedef enum ctxalloc_numa_node_flags {
  CTXALLOC_NODES_PLAIN = 0,
  CTXALLOC_NODES_STATIC = 1,
  CTXALLOC_NODES_RELATIVE = 2
} ctxalloc_numa_node_flags;

/** The highest node count a kernel can have; the node mask has this many bits. */
#define CTXALLOC_MAX_NUMA_NODES 1024

/** Options of mmap sources and of the mmap allocator. Fill with ctxalloc_mmap_options_init. */
typedef struct ctxalloc_mmap_options {
  int huge_pages;      /**< a ctxalloc_huge_pages value */
  int huge_fallback;   /**< a ctxalloc_huge_fallback value */
  int populate;        /**< nonzero: fault every page in at once */
  int lock;            /**< nonzero: mlock (needs RLIMIT_MEMLOCK or root) */
  int no_reserve;      /**< nonzero: MAP_NORESERVE (base pages only) */
  int dontdump;        /**< nonzero: leave the memory out of core dumps */
  int numa_mode;       /**< a ctxalloc_numa_mode value */
  int numa_node_flags; /**< a ctxalloc_numa_node_flags value */
  int numa_strict;     /**< nonzero: MPOL_MF_STRICT */
  int numa_move;       /**< nonzero: MPOL_MF_MOVE */
  /** Node i is bit (i % 64) of word i / 64 (ctxalloc_mmap_options_add_node sets one). */
  uint64_t numa_nodes[CTXALLOC_MAX_NUMA_NODES / 64];
} ctxalloc_mmap_options;

/** Base pages, no NUMA policy, nothing populated or locked. */
void ctxalloc_mmap_options_init(ctxalloc_mmap_options* options) CTXALLOC_NOEXCEPT;

/**
 * Adds a node to options->numa_nodes.
 * @return 0, or -EINVAL when options is NULL or node >= CTXALLOC_MAX_NUMA_NODES.
 */
int ctxalloc_mmap_options_add_node(ctxalloc_mmap_options* options, unsigned node) CTXALLOC_NOEXCEPT;

/**
 * A source that maps memory from the kernel, one mapping per region, with these options
 * (NULL: the defaults). The options are checked against this system at once.
 * @return the source, or NULL (EINVAL: bad options, e.g. a node that does not exist).
 */
ctxalloc_source* ctxalloc_source_create_mmap(const ctxalloc_mmap_options* options)
    CTXALLOC_NOEXCEPT;

/**
 * A source of page-granular pieces of [memory, memory + size), memory the caller owns
 * and keeps valid until the source is destroyed (a DPDK memzone, a static buffer). Its
 * bitmaps take the region's first pages.
 * @param granularity piece size unit: a power of two >= the page size; 0: the page size.
 * @return the source, or NULL (EINVAL: null memory, bad granularity, region too small).
 */
ctxalloc_source* ctxalloc_source_create_region(void* memory, size_t size,
                                               size_t granularity) CTXALLOC_NOEXCEPT;

/**
 * A source of blocks of one size carved from slabs of a parent source (O(1) obtain and
 * release; a power-of-two block size is also the blocks' alignment). The parent must
 * outlive the arena: destroying it first fails with -EBUSY.
 * @param slab_bytes bytes taken from the parent at a time; 0: 64 KiB or 4 blocks.
 * @return the source, or NULL (EINVAL: null parent, block size 0 or absurd).
 */
ctxalloc_source* ctxalloc_source_create_arena(ctxalloc_source* parent, size_t block_size,
                                              size_t slab_bytes) CTXALLOC_NOEXCEPT;

/**
 * Destroys a source and gives back what it holds (mmap: unmaps; arena: slabs to the
 * parent). NULL is a no-op.
 * @return 0, or -EBUSY (nothing destroyed) while allocators or arenas still use it.
 */
int ctxalloc_source_destroy(ctxalloc_source* source) CTXALLOC_NOEXCEPT;

/**
 * Takes a region directly from a source, for memory managed by the caller.
 * @param align a power of two (0: the source's natural alignment, at least a page; an
 *        arena honours at most its block alignment).
 * @param actual_size if not NULL, receives the region's size (size rounded up to the
 *        source's granularity).
 * @return the region, or NULL (EINVAL: bad size or alignment; ENOMEM: exhausted).
 */
void* ctxalloc_source_obtain(ctxalloc_source* source, size_t size, size_t align,
                             size_t* actual_size) CTXALLOC_NOEXCEPT;

/**
 * Gives back a region ctxalloc_source_obtain returned, with the size asked for or
 * reported.
 * @return 0, or -EINVAL when the source refused it (not its region, double release,
 *         wrong size: a misuse, counted or fatal by the misuse policy).
 */
int ctxalloc_source_release(ctxalloc_source* source, void* region, size_t size) CTXALLOC_NOEXCEPT;

/** Counters of a source. */
typedef struct ctxalloc_source_stats {
  uint64_t obtains;        /**< regions handed out */
  uint64_t releases;       /**< regions given back */
  uint64_t failures;       /**< refused requests */
  uint64_t misuses;        /**< refused releases */
  uint64_t bytes_held;     /**< bytes handed out and not given back */
  uint64_t peak_bytes;     /**< highest bytes_held */
  uint64_t capacity;       /**< bytes it can hand out in all (0: unbounded) */
  uint64_t upstream_bytes; /**< bytes it holds from its parent or the kernel */
} ctxalloc_source_stats;

/** @return 0 with *out filled, or -EINVAL for a NULL argument. */
int ctxalloc_source_get_stats(const ctxalloc_source* source,
                              ctxalloc_source_stats* out) CTXALLOC_NOEXCEPT;

/** @return "mmap", "region" or "arena"; "" for NULL. */
const char* ctxalloc_source_name(const ctxalloc_source* source) CTXALLOC_NOEXCEPT;

/**
 * Walks the source's metadata.
 * @param message if not NULL, receives the broken invariant (or "" when all hold),
 *        truncated to capacity - 1 bytes and NUL-terminated.
 * @return 0 when every invariant holds, -EUCLEAN when one is broken, -EINVAL for NULL,
 *         -ENOMEM when the check could not run.
 */
int ctxalloc_source_check_invariants(const ctxalloc_source* source, char* message,
                                     size_t capacity) CTXALLOC_NOEXCEPT;

/* ------------------------------------------------------------------------------------
 * Allocators
 * ------------------------------------------------------------------------------------ */

/** An allocator: one of the kinds created below. One owner thread at a time. */
typedef struct ctxalloc_allocator ctxalloc_allocator;

/**
 * A bump allocator over one region of region_size bytes (rounded up by the source) taken
 * from source: blocks are handed out in order; only the most recent one is freed, grown
 * or shrunk in place; ctxalloc_reset() reclaims everything.
 * @return the allocator, or NULL (EINVAL: NULL source or size 0; ENOMEM: the source
 *         had no region).
 */
ctxalloc_allocator* ctxalloc_bump_create(ctxalloc_source* source,
                                         size_t region_size) CTXALLOC_NOEXCEPT;

/**
 * A bit-set allocator over one region: blocks of block_size bytes (a power of two >= 8),
 * a request takes a run of them; frees need no size.
 * @return the allocator, or NULL (EINVAL: bad block size, region too small; ENOMEM).
 */
ctxalloc_allocator* ctxalloc_bitset_create(ctxalloc_source* source, size_t region_size,
                                           size_t block_size) CTXALLOC_NOEXCEPT;

/**
 * A tree allocator over one region: power-of-two size classes min_class..max_class
 * (0, 0: 32 B .. 1 MiB), one red-black tree of free spans per class, coalescing; frees
 * need no size. Requests above max_class fail (ENOMEM).
 * @return the allocator, or NULL (EINVAL: bad classes, region too small; ENOMEM).
 */
ctxalloc_allocator* ctxalloc_tree_create(ctxalloc_source* source, size_t region_size,
                                         size_t min_class, size_t max_class) CTXALLOC_NOEXCEPT;

/**
 * A size-class allocator (24 classes, 16 B .. 2 KiB) taking 4 MiB segments aligned to
 * 4 MiB from source as it grows, at most max_segments of them (0: no limit). Larger
 * requests fail (ENOMEM). Frees need no size.
 * @return the allocator, or NULL (EINVAL: NULL source).
 */
ctxalloc_allocator* ctxalloc_size_class_create(ctxalloc_source* source,
                                               size_t max_segments) CTXALLOC_NOEXCEPT;

/**
 * An allocator that maps every block separately (grow and shrink by mremap), with these
 * options (NULL: the defaults). For large blocks. Frees need no size.
 * @return the allocator, or NULL (EINVAL: bad options).
 */
ctxalloc_allocator* ctxalloc_mmap_allocator_create(const ctxalloc_mmap_options* options)
    CTXALLOC_NOEXCEPT;

/** How long a context's blocks live: it picks the context allocator's kind. */
typedef enum ctxalloc_lifetime {
  CTXALLOC_LIFETIME_SHORT = 0,  /**< bump */
  CTXALLOC_LIFETIME_MEDIUM = 1, /**< bit set */
  CTXALLOC_LIFETIME_LONG = 2    /**< tree */
} ctxalloc_lifetime;

/** Per-kind settings of a context allocator; 0 fields take the defaults. */
typedef struct ctxalloc_context_options {
  size_t bitset_block_size; /**< the bit set's block size (0: 64) */
  size_t tree_min_class;    /**< the tree's smallest class (0: 32) */
  size_t tree_max_class;    /**< the tree's largest class (0: a quarter of the region,
                                 rounded down to a power of two) */
} ctxalloc_context_options;

/** All defaults. */
void ctxalloc_context_options_init(ctxalloc_context_options* options) CTXALLOC_NOEXCEPT;

/**
 * A context allocator over one region: bump, bit set or tree by lifetime, behind one
 * interface; ctxalloc_reset() forgets every block at once (bump: rewinds; bit set, tree:
 * cleared metadata). (The switchable layer's contexts, which are made current per flow
 * or coroutine, are in switchable.h.)
 * @param options NULL: the defaults.
 * @return the allocator, or NULL (EINVAL: bad lifetime or options, region too small for
 *         the kind; ENOMEM: the source had no region).
 */
ctxalloc_allocator* ctxalloc_context_allocator_create(
    ctxalloc_source* source, int lifetime, size_t region_size,
    const ctxalloc_context_options* options) CTXALLOC_NOEXCEPT;

/**
 * Destroys an allocator and gives its region back to its source. Blocks still live
 * become invalid. NULL is a no-op.
 * @return 0.
 */
int ctxalloc_allocator_destroy(ctxalloc_allocator* allocator) CTXALLOC_NOEXCEPT;

/**
 * @return "bump", "bitset", "tree", "size_class", "mmap", "context(bump)",
 *         "context(bitset)" or "context(tree)"; "" for NULL.
 */
const char* ctxalloc_allocator_name(const ctxalloc_allocator* allocator) CTXALLOC_NOEXCEPT;

/**
 * A block of at least size bytes aligned to align.
 * @param align a power of two <= 1 GiB, or 0 for the default (16).
 * @param usable_size if not NULL, receives the block's size (>= size): all of it is the
 *        caller's, and it may be passed to ctxalloc_free_sized.
 * @return the block, or NULL (EINVAL: bad alignment; ENOMEM: no room, or a size the
 *         allocator does not serve).
 */
void* ctxalloc_allocate(ctxalloc_allocator* allocator, size_t size, size_t align,
                        size_t* usable_size) CTXALLOC_NOEXCEPT;

/** As ctxalloc_allocate, and the whole usable size is zero. */
void* ctxalloc_allocate_zeroed(ctxalloc_allocator* allocator, size_t size, size_t align,
                               size_t* usable_size) CTXALLOC_NOEXCEPT;

/** ctxalloc_reallocate flag: resize in place or fail, never move the block. */
#define CTXALLOC_REALLOC_NO_MOVE 1u

/**
 * Grows or shrinks a block, keeping its first min(old, new) bytes. In place where the
 * allocator can; otherwise (unless CTXALLOC_REALLOC_NO_MOVE) a new block is secured
 * first, the bytes copied, the old block freed. On failure the old block is untouched
 * and still live.
 * @param block NULL: the same as ctxalloc_allocate(new_size, align).
 * @param old_size the size asked for or reported; 0: recover it (every kind but bump,
 *        which knows only its most recent block's size).
 * @param new_size 0 frees the block and returns the zero-size pointer.
 * @param align the block's alignment (0: the default).
 * @param flags 0 or CTXALLOC_REALLOC_NO_MOVE.
 * @return the block (maybe moved), or NULL (EINVAL: bad arguments, a block the
 *         allocator does not hold, a size it cannot recover; ENOMEM: no room, or it
 *         would have to move under CTXALLOC_REALLOC_NO_MOVE).
 */
void* ctxalloc_reallocate(ctxalloc_allocator* allocator, void* block, size_t old_size,
                          size_t new_size, size_t align, unsigned flags,
                          size_t* usable_size) CTXALLOC_NOEXCEPT;

/**
 * Frees a block without its size: the allocator recovers it (bit set, tree, size
 * classes, mmap, context bit set and tree; bump and context bump for their most recent
 * block; other bump blocks are counted as freed and wait for ctxalloc_reset). NULL and
 * the zero-size pointer are no-ops.
 * @return 0, or -EINVAL when the allocator refused the pointer (not its block, freed
 *         before, interior): a misuse, counted or fatal by the misuse policy.
 */
int ctxalloc_free(ctxalloc_allocator* allocator, void* block) CTXALLOC_NOEXCEPT;

/**
 * Frees a block with its size (anything from the size asked for to the usable size) and
 * alignment (0: the default).
 * @return 0, or -EINVAL when the allocator refused it (as ctxalloc_free, or a size that
 *         does not match the block).
 */
int ctxalloc_free_sized(ctxalloc_allocator* allocator, void* block, size_t size,
                        size_t align) CTXALLOC_NOEXCEPT;

/**
 * @return 1 when p lies in memory the allocator manages (its region, its segments or
 *         mappings), 0 when not, -EINVAL for a NULL allocator.
 */
int ctxalloc_contains(const ctxalloc_allocator* allocator, const void* p) CTXALLOC_NOEXCEPT;

/**
 * @return the usable size of the live block that starts at p, or 0 when the allocator
 *         cannot tell (not a live block's start; bump: any but the most recent block).
 */
size_t ctxalloc_usable_size(const ctxalloc_allocator* allocator, const void* p) CTXALLOC_NOEXCEPT;

/**
 * Forgets every block of a bump or context allocator at once; the whole region serves
 * again. Counters carry over.
 * @return 0, -ENOTSUP for other kinds, -EINVAL for NULL.
 */
int ctxalloc_reset(ctxalloc_allocator* allocator) CTXALLOC_NOEXCEPT;

/** Counters of an allocator (docs/concepts.md, "Stats"). */
typedef struct ctxalloc_stats {
  uint64_t allocations;   /**< successful allocations */
  uint64_t deallocations; /**< frees of real blocks (and blocks a reset released) */
  uint64_t grows;         /**< successful grows */
  uint64_t shrinks;       /**< successful shrinks */
  uint64_t failures;      /**< refused requests */
  uint64_t misuses;       /**< caller errors detected */
  uint64_t bytes_in_use;  /**< bytes held by live blocks (bump: consumed from its region) */
  uint64_t peak_bytes;    /**< highest bytes_in_use */
  uint64_t capacity;      /**< bytes it can hand out in all (0: unbounded) */
} ctxalloc_stats;

/**
 * Reads the counters. Safe from any thread.
 * @return 0 with *out filled, or -EINVAL for a NULL argument.
 */
int ctxalloc_get_stats(const ctxalloc_allocator* allocator, ctxalloc_stats* out) CTXALLOC_NOEXCEPT;

/**
 * Walks the allocator's metadata (owner thread only).
 * @param message if not NULL, receives the broken invariant (or "" when all hold),
 *        truncated to capacity - 1 bytes and NUL-terminated.
 * @return 0 when every invariant holds, -EUCLEAN when one is broken, -EINVAL for NULL,
 *         -ENOMEM when the check could not run.
 */
int ctxalloc_check_invariants(const ctxalloc_allocator* allocator, char* message,
                              size_t capacity) CTXALLOC_NOEXCEPT;

/* ------------------------------------------------------------------------------------
 * Switchable
 *
 * The switchable allocator: every thread allocates from its current allocator -- the
 * global heap of its NUMA node (the default), its own thread heap, or a context made
 * current with ctxalloc_context_enter -- and every pointer goes back to the allocator
 * that owns it, whatever the mode and whichever thread frees (docs/switchable.md).
 * ------------------------------------------------------------------------------------ */

#define CTXALLOC_MODE_GLOBAL 1  /* the node's global heap (locked) */
#define CTXALLOC_MODE_THREAD 2  /* the thread's own heap (no locks) */
#define CTXALLOC_MODE_CONTEXT 3 /* the installed context */

/** The calling thread's mode (CTXALLOC_MODE_*). */
int ctxalloc_mode(void) CTXALLOC_NOEXCEPT;

/**
 * Sets the calling thread's mode to CTXALLOC_MODE_GLOBAL or CTXALLOC_MODE_THREAD (context
 * mode is entered with ctxalloc_context_enter).
 * @return the previous mode, -EINVAL for another value, -ENOMEM when the thread heap
 *         cannot be made (the mode is then unchanged).
 */
int ctxalloc_set_mode(int mode) CTXALLOC_NOEXCEPT;

/** malloc from the current allocator: NULL (errno ENOMEM) when everything refuses. */
void* ctxalloc_malloc(size_t size) CTXALLOC_NOEXCEPT;
/** calloc from the current allocator; NULL (errno ENOMEM) when count * size overflows. */
void* ctxalloc_calloc(size_t count, size_t size) CTXALLOC_NOEXCEPT;
/** An aligned block (align a power of two; else NULL, errno EINVAL). */
void* ctxalloc_aligned_alloc(size_t align, size_t size) CTXALLOC_NOEXCEPT;
/**
 * realloc: in place when the owner can, else moved to the current allocator. p NULL:
 * ctxalloc_malloc. size 0: frees p and returns NULL. NULL on failure, p then intact.
 */
void* ctxalloc_realloc(void* p, size_t size) CTXALLOC_NOEXCEPT;
/** Frees any pointer ctxalloc handed out, from any thread, in any mode; NULL is a no-op. */
void ctxalloc_free_any(void* p) CTXALLOC_NOEXCEPT;
/** Usable bytes of the live block p (0 for pointers ctxalloc does not own). */
size_t ctxalloc_usable_size_any(const void* p) CTXALLOC_NOEXCEPT;
/** Pushes this thread's batched frees of other threads' blocks; drains its own heap's. */
void ctxalloc_flush(void) CTXALLOC_NOEXCEPT;

/** A context: a flow's or a coroutine's allocator, released whole. */
typedef struct ctxalloc_context ctxalloc_context;

/**
 * A context of the calling thread: the lifetime picks bump / bit set / tree
 * (CTXALLOC_LIFETIME_*), over a block of `bytes` (a power of two, 4 KiB to 4 MiB) from
 * the thread heap's arena. When it runs out, blocks spill into the thread heap (then the
 * global heap's memory), counted and freed with the context.
 * @return the context, or NULL (errno EINVAL for a bad lifetime or size, ENOMEM).
 */
ctxalloc_context* ctxalloc_context_create(int lifetime, size_t bytes) CTXALLOC_NOEXCEPT;

/** Frees the context and everything in it (the end of a flow). Owner thread only.
 *  @return 0, or -EINVAL for NULL. */
int ctxalloc_context_release_all(ctxalloc_context* context) CTXALLOC_NOEXCEPT;

/**
 * The same for a context expected to be empty: live blocks are misuse (reported under
 * the abort policy, counted otherwise), and are freed all the same.
 * @return 0, or -EINVAL for NULL.
 */
int ctxalloc_context_release(ctxalloc_context* context) CTXALLOC_NOEXCEPT;

/** What ctxalloc_context_enter saved; give it back to ctxalloc_context_leave. */
typedef struct ctxalloc_saved_state {
  int mode;
  ctxalloc_context* context;
} ctxalloc_saved_state;

/**
 * Makes the context current on the calling thread; returns the state to restore. NULL
 * changes nothing. A context of another thread is misuse (wrong_thread), reported in
 * checked builds, as ContextScope does.
 */
ctxalloc_saved_state ctxalloc_context_enter(ctxalloc_context* context) CTXALLOC_NOEXCEPT;
/** Restores what ctxalloc_context_enter saved. */
void ctxalloc_context_leave(ctxalloc_saved_state saved) CTXALLOC_NOEXCEPT;

typedef struct ctxalloc_context_stats {
  ctxalloc_stats local;      /* the context's own allocator */
  uint64_t spills;           /* requests served by the thread heap's spill memory */
  uint64_t spills_to_global; /* of those, on the global heap's memory */
  uint64_t spill_failures;   /* requests nothing could serve */
  uint64_t spilled_live;     /* spilled blocks live now */
  uint64_t spilled_bytes;    /* their bytes */
} ctxalloc_context_stats;

/** The context's counters. @return 0, or -EINVAL for NULL. */
int ctxalloc_context_get_stats(const ctxalloc_context* context,
                               ctxalloc_context_stats* out) CTXALLOC_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* CTXALLOC_H */
