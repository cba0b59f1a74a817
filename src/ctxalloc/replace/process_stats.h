// Statistics of the process allocator (operator new/delete and malloc replaced by
// ctxalloc: libctxalloc_new, libctxalloc_preload.so), so that a user and a test can see
// that ctxalloc really served a program. With CTXALLOC_STATS=1 (stderr) or
// CTXALLOC_STATS=/path (appended) in the environment, the report is written when the
// process exits, one "ctxalloc[<pid>]: <section> key=value ..." line per section.
#pragma once

#include <cstdint>

#include "ctxalloc/core/stats.h"
#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc {

struct ProcessStats {
  Mode default_mode = Mode::global;  ///< the mode threads start in
  // Threads.
  std::uint64_t threads = 0;         ///< threads that called the allocator
  std::uint64_t threads_exited = 0;  ///< of which exited
  // Thread heaps (thread mode), summed over every heap ever made.
  std::uint64_t heaps = 0;            ///< heap objects (live and abandoned)
  std::uint64_t heaps_abandoned = 0;  ///< heaps of exited threads, not yet adopted
  Stats small;                        ///< their size-class fronts (up to 2 KiB)
  Stats medium;                       ///< their trees (up to 1 MiB)
  std::uint64_t fallbacks = 0;        ///< requests a thread heap sent to the global heap
  std::uint64_t large = 0;            ///< requests above 1 MiB (global heap, own mapping)
  std::uint64_t remote_frees = 0;     ///< blocks freed by another thread, drained by the owner
  // Global heaps (global mode, fallbacks, large blocks, exited threads), all nodes.
  Stats global;
  std::uint64_t global_chunks = 0;
  std::uint64_t large_mappings = 0;  ///< live large blocks, one mapping each
  std::uint64_t large_cached = 0;    ///< freed mappings kept for reuse now
  std::uint64_t large_cached_bytes = 0;
  std::uint64_t large_reuses = 0;     ///< large requests served from the cache
  std::uint64_t large_evictions = 0;  ///< cached mappings unmapped (over the bound, trim)
  // The front (malloc/new entry points).
  std::uint64_t early_allocations = 0;  ///< served by the bootstrap arena (nested calls)
  std::uint64_t early_bytes = 0;
  std::uint64_t early_in_use = 0;       ///< bytes of the bootstrap arena in use now
  std::uint64_t nested_calls = 0;       ///< calls made from inside the allocator
  std::uint64_t dropped_frees = 0;      ///< frees that could not run (nested), left allocated
  std::uint64_t late_operations = 0;    ///< calls after a thread's exit handler
  std::uint64_t failures = 0;           ///< allocations answered with null / bad_alloc
  std::uint64_t new_handler_calls = 0;  ///< std::new_handler calls by operator new
  std::uint64_t forks = 0;              ///< forks, parent side
  std::uint64_t fork_waits = 0;         ///< calls that waited for a fork to finish
  std::uint64_t misuses = 0;            ///< misuse_count(): double/foreign frees...

  /// Blocks handed out by ctxalloc (thread heaps and global heaps, bootstrap excluded).
  std::uint64_t allocations() const noexcept {
    return small.allocations + medium.allocations + global.allocations;
  }
  /// Blocks given back to ctxalloc.
  std::uint64_t frees() const noexcept {
    return small.deallocations + medium.deallocations + global.deallocations;
  }
};

/// A snapshot: counters of running threads are read while they change (each value is
/// exact, their sum only close).
ProcessStats process_stats() noexcept;

/// Writes the report (the lines CTXALLOC_STATS gives) to fd. No allocation.
void write_process_stats(int fd) noexcept;

}  // namespace ctxalloc

/// The same from C, and the one extra symbol libctxalloc_preload.so exports: a program
/// (or a test) can look it up with dlsym(RTLD_DEFAULT, "ctxalloc_write_stats") to learn
/// whether the preload library is really in place, and print its report at any time.
extern "C" void ctxalloc_write_stats(int fd) noexcept;
