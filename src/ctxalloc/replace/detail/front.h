// The process allocator's front: what malloc/free and operator new/delete call. It puts
// the switchable allocator behind the C and C++ entry points with three extra duties:
//
// * Fork safety. A thread heap is changed by its owner without a lock, so a fork while
//   another thread is half-way through a free-list pop would leave the child a broken
//   heap. Each thread brackets every call with a word in its TLS (kBusy inside, kIdle
//   outside). A forking thread raises g_fork_pending, runs membarrier() (a barrier on
//   every CPU running this process, so each thread either saw the flag before it marked
//   itself busy, or the forker sees it busy), waits until no registered thread is busy,
//   and holds the runtime's locks across fork. A thread that sees the flag waits for the
//   fork to end. Cost on the fast path: two stores and a load, all in lines this thread
//   owns, no fence, no atomic read-modify-write (fork_guard.cc has the rest).
// * Reentrancy. A call that arrives while the thread is already inside (its word is not
//   kIdle: a library function the allocator called allocated) goes to the bootstrap
//   arena instead of recursing.
// * Thread life. The first call registers the thread (so a fork can find its word); after
//   the thread's exit handler ran, calls serialise on a lock the forker also takes.
//
// Inline here: the small-block fast paths, a copy of switchable.h's with the bracket
// around it. Everything else is in front.cc.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc::replace::detail {

/// The states of a thread's word.
enum : std::uint32_t {
  kUnregistered = 0,  ///< the thread has not called the allocator yet
  kIdle = 1,          ///< registered, outside the allocator
  kBusy = 2,          ///< inside the allocator: a fork waits, a nested call is served aside
  kExited = 3,        ///< the thread's exit handler ran: calls take the late lock
  kForking = 4,       ///< this thread is forking: its calls are served aside
};

/// One per thread, in static TLS. The forker reads `word` of every registered thread;
/// only the thread itself writes it (and the forker its own).
struct FrontThread {
  std::atomic<std::uint32_t> word;
  FrontThread* next;  // the registry of threads (fork_guard.cc), under its lock
  FrontThread* prev;
  ctxalloc::detail::ThreadState* state;  // this thread's switchable state
};

// Hidden: defined in the same library as every user, so g_fork_pending is one
// rip-relative load (no GOT).
extern constinit thread_local FrontThread t_front
    [[gnu::tls_model("initial-exec"), gnu::visibility("hidden")]];
/// Non-zero while a fork is being prepared or runs.
[[gnu::visibility("hidden")]] extern std::atomic<std::uint32_t> g_fork_pending;

/// Marks the thread busy when it is idle and no fork is pending; false otherwise (the
/// slow path then finds out why).
inline bool enter() noexcept {
  FrontThread& f = t_front;
  if (f.word.load(std::memory_order_relaxed) != kIdle) return false;
  f.word.store(kBusy, std::memory_order_relaxed);
  // Only a compiler barrier between the store and the load: the forker's membarrier
  // orders them on the CPU (the asymmetric half of a Dekker handshake).
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (g_fork_pending.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    f.word.store(kIdle, std::memory_order_release);
    return false;
  }
  return true;
}

/// Marks the thread idle again; release: a forker that sees it idle sees its writes.
inline void leave() noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_front.word.store(kIdle, std::memory_order_release);
}

// ------------------------------------------------------------------------- slow paths
/// Any size (0 gets a one-byte block: C and C++ want a unique pointer) and alignment (a
/// power of two), from whatever the thread's state allows. Null when nothing is left
/// (errno is then ENOMEM); errno is kept on success.
void* allocate_slow(std::size_t size, std::size_t align) noexcept;
/// Frees p (null, arena blocks, foreign pointers included); size 0: unknown.
void free_slow(void* p, std::size_t size) noexcept;
/// realloc: p null allocates, size 0 frees and returns null; null on failure (errno
/// ENOMEM) with p intact.
void* reallocate(void* p, std::size_t size) noexcept;
/// malloc_usable_size: 0 for null and foreign pointers.
std::size_t usable_size(const void* p) noexcept;
/// Allocate and zero (calloc, without the overflow check); fresh mappings are not
/// written again.
void* allocate_zeroed(std::size_t size) noexcept;
/// Inside the bracket: adds another thread's small block to this thread's remote batch
/// for its owner (the rx lcore allocated, the tx lcore frees), then leaves the bracket.
void free_remote_and_leave(void* p, const OwnerTag* tag) noexcept;

// ------------------------------------------------------------------------- fast paths
/// malloc(size): the thread heap's size-class front when the thread is idle, in thread
/// mode and size is small; otherwise the slow path.
inline void* allocate(std::size_t size) noexcept {
  using ctxalloc::detail::t_state;
  if (enter()) [[likely]] {
    ctxalloc::detail::ThreadState& s = t_state;
    if (s.mode == Mode::thread && size - 1 < ThreadHeap::kSmallMax) [[likely]] {
      // No call inside the bracket: a class whose page ran dry is refilled on the slow
      // path, so this stays a leaf function without a stack frame.
      void* p = s.heap->small().try_allocate_small(size);
      leave();
      if (p != nullptr) [[likely]]
        return p;
    } else {
      leave();
    }
  }
  return allocate_slow(size, kDefaultAlign);
}

/// free(p) (size 0) or a sized delete: this thread's own small block directly, another
/// thread's into a remote batch, the rest on the slow path.
inline void free(void* p, std::size_t size = 0) noexcept {
  if (enter()) [[likely]] {
    const OwnerTag* tag = SegmentMap::lookup(p);
    const void* mine = ctxalloc::detail::t_state.small_owner;
    if (tag != nullptr && tag->owner == mine) [[likely]] {
      // The rest of free_owned (a page leaving the full list, a misuse) is on the slow
      // path, as above.
      if (static_cast<SizeClassAllocator*>(const_cast<void*>(mine))->try_free_owned(p, tag, size))
          [[likely]] {
        leave();
        return;
      }
    } else if (tag != nullptr && tag->kind == owner_kind::size_class) {
      return free_remote_and_leave(p, tag);  // a tail call: still no stack frame here
    }
    leave();
  }
  free_slow(p, size);
}

}  // namespace ctxalloc::replace::detail
