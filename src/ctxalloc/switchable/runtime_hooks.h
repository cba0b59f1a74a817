// Hooks of the switchable runtime for the process allocator (replace/: operator new and
// malloc replacement) and nothing else: fork support and exit statistics. Not part of
// the public API; switchable.cc defines them.
#pragma once

#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc::detail {

/// fork(), parent side, before: takes the runtime's lock and every heap's lock. The
/// caller has made sure that no thread is inside the allocator (replace/fork_guard.cc).
void fork_prepare() noexcept;
/// fork(), parent side, after: releases what fork_prepare took.
void fork_parent() noexcept;

// fork(), child side, in this order:
/// Releases what fork_prepare took.
void fork_child_unlock() noexcept;
/// Pushes the remote-free batches of a thread that does not exist in the child (its
/// ThreadState is still mapped: fork copied the whole address space).
void flush_vanished_thread(ThreadState& s) noexcept;
/// Abandons every heap but the calling thread's (their threads are gone), so that frees
/// of their blocks go straight into them and new threads adopt them.
void fork_child_abandon() noexcept;

/// Calls fn for every thread heap ever made (live or abandoned). The heaps of running
/// threads change meanwhile: their counters are read relaxed.
void for_each_heap(void (*fn)(void* context, const ThreadHeap& heap, bool abandoned),
                   void* context) noexcept;
/// Calls fn for each node's global heap that exists.
void for_each_global_heap(void (*fn)(void* context, const GlobalHeap& heap, unsigned node),
                          void* context) noexcept;

/// The mode threads start in (configure()).
Mode default_mode() noexcept;

}  // namespace ctxalloc::detail
