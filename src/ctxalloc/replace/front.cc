// The process allocator's slow paths: every call the inline fast paths (detail/front.h)
// do not finish. One dispatcher decides from the thread's word where a call may run:
// in the switchable allocator (idle), after waiting for a fork, after registering the
// thread, under the late lock (exited), or in the bootstrap arena (nested, forking).
#include <errno.h>
#include <pthread.h>

#include <cstring>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/replace/detail/bootstrap.h"
#include "ctxalloc/replace/detail/front_internal.h"
#include "ctxalloc/switchable/owner.h"

namespace ctxalloc::replace::detail {
namespace {

// Runs op() where the thread's state allows and returns its result; nested() when the
// thread is already inside the allocator or forking.
template <class Op, class Nested>
auto dispatch(Op&& op, Nested&& nested) noexcept {
  FrontThread& f = t_front;
  for (;;) {
    const std::uint32_t w = f.word.load(std::memory_order_relaxed);
    if (w == kIdle) {
      if (!enter()) {
        wait_for_fork();
        continue;
      }
      auto r = op();
      leave();
      return r;
    }
    if (w == kUnregistered) {
      register_thread(f);
      continue;
    }
    if (w == kExited) {
      front_counters().late_operations.fetch_add(1, std::memory_order_relaxed);
      pthread_mutex_lock(&late_mutex());
      f.word.store(kBusy, std::memory_order_relaxed);  // nested calls go aside
      auto r = op();
      f.word.store(kExited, std::memory_order_relaxed);
      pthread_mutex_unlock(&late_mutex());
      return r;
    }
    front_counters().nested.fetch_add(1, std::memory_order_relaxed);
    return nested();
  }
}

bool valid_alignment(std::size_t align) noexcept {
  return is_pow2(align) && align <= kMaxAlign;
}

std::size_t min_size(std::size_t a, std::size_t b) noexcept {
  return a < b ? a : b;
}

}  // namespace

void* allocate_slow(std::size_t size, std::size_t align) noexcept {
  if (size == 0) size = 1;  // a unique pointer, as glibc gives (not the zero-size sentinel)
  // PTRDIFF_MAX: what glibc refuses too (pointer differences must stay representable).
  if (!valid_alignment(align) || size > static_cast<std::size_t>(PTRDIFF_MAX)) {
    front_counters().failures.fetch_add(1, std::memory_order_relaxed);
    errno = ENOMEM;
    return nullptr;
  }
  const int saved_errno = errno;  // mmap failures on the way must not leak into errno
  void* p = dispatch([&] { return ctxalloc::allocate(size, align); },
                     [&] { return bootstrap_arena().allocate(size, align); });
  if (p == nullptr) {
    front_counters().failures.fetch_add(1, std::memory_order_relaxed);
    errno = ENOMEM;
  } else {
    errno = saved_errno;
  }
  return p;
}

void free_slow(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  BootstrapArena& arena = bootstrap_arena();
  if (arena.contains(p)) {
    arena.deallocate(p);
    return;
  }
  const int saved_errno = errno;  // free must not change errno (POSIX 2024)
  dispatch(
      [&] {
        if (size != 0) {
          ctxalloc::deallocate(p, size);
        } else {
          ctxalloc::deallocate(p);
        }
        return 0;
      },
      [&] {
        // Inside the allocator (or forking, its locks held): entering it again could
        // deadlock. The block stays allocated; counted.
        front_counters().dropped_frees.fetch_add(1, std::memory_order_relaxed);
        return 0;
      });
  errno = saved_errno;
}

void* reallocate(void* p, std::size_t size) noexcept {
  if (p == nullptr) return allocate_slow(size, kDefaultAlign);
  if (size == 0) {  // glibc's choice (C17 leaves it to the implementation): free, null
    free_slow(p, 0);
    return nullptr;
  }
  BootstrapArena& arena = bootstrap_arena();
  const bool from_arena = arena.contains(p);
  // Arena blocks, and any block while nested, move: allocate, copy, free.
  auto move = [&](std::size_t have) -> void* {
    void* fresh = allocate_slow(size, kDefaultAlign);
    if (fresh == nullptr) return nullptr;
    std::memcpy(fresh, p, min_size(have, size));
    free_slow(p, 0);
    return fresh;
  };
  if (from_arena) return move(arena.size_of(p));
  if (size > static_cast<std::size_t>(PTRDIFF_MAX)) {
    errno = ENOMEM;
    return nullptr;
  }
  const int saved_errno = errno;
  bool foreign = false;
  void* r = dispatch(
      [&]() -> void* {
        if (!ctxalloc::owns(p)) {
          foreign = true;
          return nullptr;
        }
        return ctxalloc::reallocate(p, size, kDefaultAlign);
      },
      [&]() -> void* {
        const std::size_t have = ctxalloc::usable_size(p);
        void* fresh = have == 0 ? nullptr : bootstrap_arena().allocate(size, kDefaultAlign);
        if (fresh == nullptr) return fresh;
        std::memcpy(fresh, p, min_size(have, size));
        // p cannot be freed from in here: it stays allocated, counted.
        front_counters().dropped_frees.fetch_add(1, std::memory_order_relaxed);
        return fresh;
      });
  if (foreign) {
    // Not ours (memory from before ctxalloc, or garbage): its size is unknown, so it
    // cannot be moved. Reported as misuse, refused like an allocation failure.
    report_misuse(Misuse::foreign_pointer, "process", "realloc", p);
  }
  if (r == nullptr) {
    front_counters().failures.fetch_add(1, std::memory_order_relaxed);
    errno = ENOMEM;
  } else {
    errno = saved_errno;
  }
  return r;
}

std::size_t usable_size(const void* p) noexcept {
  if (p == nullptr) return 0;
  BootstrapArena& arena = bootstrap_arena();
  if (arena.contains(p)) return arena.size_of(p);
  // Reads only; safe in any thread state (a fork does not change live blocks).
  return ctxalloc::usable_size(p);
}

void free_remote_and_leave(void* p, const OwnerTag* tag) noexcept {
  ctxalloc::detail::free_remote_small(p, tag);
  leave();
}

void* allocate_zeroed(std::size_t size) noexcept {
  void* p = allocate(size);
  if (p == nullptr) return nullptr;
  // Fresh mappings (large blocks) are zero already: writing them would only fault in
  // pages nobody asked for; a reused mapping is written up to the bytes it had before.
  // Arena blocks are reused memory, like heap blocks.
  const OwnerTag* tag = SegmentMap::lookup(p);
  std::size_t dirty = size;
  if (tag != nullptr && tag->kind == owner_kind::large) {
    dirty = GlobalHeap::last_large_dirty_bytes();
    if (dirty > size) dirty = size;
  }
  std::memset(p, 0, dirty);
  return p;
}

}  // namespace ctxalloc::replace::detail
