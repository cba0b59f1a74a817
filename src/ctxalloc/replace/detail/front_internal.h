// What the parts of the process allocator share (front.cc, thread_registry.cc,
// fork_guard.cc, process_stats.cc). Internal.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "ctxalloc/replace/detail/front.h"

namespace ctxalloc::replace::detail {

/// Slow-path events, counted with relaxed atomics (never on a fast path).
struct FrontCounters {
  std::atomic<std::uint64_t> threads{0};          ///< threads registered
  std::atomic<std::uint64_t> threads_exited{0};   ///< their exit handlers ran
  std::atomic<std::uint64_t> late_operations{0};  ///< calls after a thread's exit handler
  std::atomic<std::uint64_t> failures{0};         ///< allocations answered with null
  std::atomic<std::uint64_t> nested{0};           ///< calls from inside the allocator
  std::atomic<std::uint64_t> dropped_frees{0};    ///< frees that could not be done (nested)
  std::atomic<std::uint64_t> fork_waits{0};       ///< calls that waited for a fork
  std::atomic<std::uint64_t> forks{0};            ///< forks (parent side)
  std::atomic<std::uint64_t> new_handler_calls{0};
};
FrontCounters& front_counters() noexcept;

/// Reads the environment and configures the switchable runtime (default mode thread
/// unless CTXALLOC_MODE=global), once per process; other first callers wait.
void ensure_process_init() noexcept;

/// Registers the calling thread (its word goes from kUnregistered to kIdle).
void register_thread(FrontThread& f) noexcept;

/// Blocks until the fork in progress is over.
void wait_for_fork() noexcept;

// The registry of threads whose words a forker must check, under registry_mutex().
pthread_mutex_t& registry_mutex() noexcept;
FrontThread* registry_first() noexcept;
/// In a fork's child: the registry holds only f (or nothing when f is null); the mutexes
/// are made fresh.
void registry_reset_in_child(FrontThread* f) noexcept;

/// Calls of threads whose exit handler ran go through this lock; a forker holds it.
pthread_mutex_t& late_mutex() noexcept;
/// Held by a forker from prepare to the end of fork; waiting threads block on it.
pthread_mutex_t& fork_mutex() noexcept;

/// Reads CTXALLOC_STATS (process_stats.cc); called at process init.
void init_exit_report() noexcept;

/// How the forker orders other CPUs (fork_guard.cc); called at process init.
void init_process_barrier() noexcept;

}  // namespace ctxalloc::replace::detail
