// fork() and the process allocator. POSIX lets a multi-threaded program fork, and the
// child runs on with only the forking thread. Three things must hold in the child:
// (1) no lock is held by a thread that is gone, (2) no heap was caught half-way through
// an update by its owner, (3) the heaps of the vanished threads are abandoned, so that
// frees of their blocks (which the child still holds) go back into them and new threads
// adopt them.
//
// prepare (the last prepare handler to run: it is registered first, at load):
//   take fork_mutex; mark this thread forking; raise g_fork_pending; membarrier();
//   take the registry lock; wait until no registered thread is busy; take the late
//   lock; take the runtime's lock and every heap's (switchable/runtime_hooks.h).
// After the barrier no thread can become busy without seeing the flag (detail/front.h),
// and those that see it block on fork_mutex, which is held until fork returns.
// parent: release everything in reverse. child: release, push the vanished threads'
// remote-free batches (their TLS is still mapped), abandon their heaps, leave only this
// thread in the registry, fresh mutexes.
//
// Limits: the locks a prepare handler takes are taken before glibc takes its own (stdio
// list, its malloc arenas), as with every allocator that uses pthread_atfork: a thread
// that allocates while holding glibc's stdio list lock during a concurrent fork (an
// exit() flushing streams) can deadlock the fork. ctxalloc API calls made directly
// (not through malloc/new) are not waited for.
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ctxalloc/replace/detail/front_internal.h"
#include "ctxalloc/sources/os_memory.h"
#include "ctxalloc/switchable/runtime_hooks.h"

namespace ctxalloc::replace::detail {
namespace {

// How the forker makes every other CPU running this process execute a barrier.
enum class Barrier : int { private_expedited, global, mprotect };
Barrier g_barrier = Barrier::mprotect;
void* g_barrier_page = nullptr;
std::uint32_t g_saved_word = kIdle;  // the forker's word before prepare

long membarrier(int cmd) noexcept {
  return syscall(__NR_membarrier, cmd, 0, 0);
}

// Asymmetric barrier: every thread of the process running now executes a full memory
// barrier before this returns. PRIVATE_EXPEDITED costs a few microseconds (IPIs to the
// CPUs running this process); GLOBAL (older kernels) waits for a grace period;
// without membarrier, a permission downgrade of a touched page makes the kernel shoot
// down the TLB of every CPU running this mm, and the IPI serialises them all.
void process_barrier() noexcept {
  if (g_barrier == Barrier::private_expedited &&
      membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
    return;
  }
  if (g_barrier != Barrier::mprotect && membarrier(MEMBARRIER_CMD_GLOBAL) == 0) return;
  if (g_barrier_page != nullptr) {
    *static_cast<volatile char*>(g_barrier_page) = 1;
    mprotect(g_barrier_page, 4096, PROT_READ);
    mprotect(g_barrier_page, 4096, PROT_READ | PROT_WRITE);
  }
}

void wait_until_not_busy(const FrontThread& t) noexcept {
  for (unsigned spins = 0; t.word.load(std::memory_order_acquire) == kBusy; ++spins) {
    if (spins > 64) sched_yield();
  }
}

void prepare() noexcept {
  FrontThread& me = t_front;
  pthread_mutex_lock(&fork_mutex());
  g_saved_word = me.word.load(std::memory_order_relaxed);
  // First: this thread's own calls from here on (later prepare handlers, glibc) must not
  // wait for the fork it is running.
  me.word.store(kForking, std::memory_order_relaxed);
  g_fork_pending.store(1, std::memory_order_relaxed);
  process_barrier();
  pthread_mutex_lock(&registry_mutex());
  for (FrontThread* t = registry_first(); t != nullptr; t = t->next) {
    if (t != &me) wait_until_not_busy(*t);
  }
  pthread_mutex_lock(&late_mutex());
  ctxalloc::detail::fork_prepare();
}

void parent() noexcept {
  ctxalloc::detail::fork_parent();
  pthread_mutex_unlock(&late_mutex());
  pthread_mutex_unlock(&registry_mutex());
  g_fork_pending.store(0, std::memory_order_release);
  t_front.word.store(g_saved_word, std::memory_order_relaxed);
  front_counters().forks.fetch_add(1, std::memory_order_relaxed);
  pthread_mutex_unlock(&fork_mutex());
}

void child() noexcept {
  FrontThread& me = t_front;
  ctxalloc::detail::fork_child_unlock();
  for (FrontThread* t = registry_first(); t != nullptr; t = t->next) {
    if (t != &me && t->state != nullptr) ctxalloc::detail::flush_vanished_thread(*t->state);
  }
  const bool registered = g_saved_word != kUnregistered && g_saved_word != kExited;
  registry_reset_in_child(registered ? &me : nullptr);
  ctxalloc::detail::fork_child_abandon();
  g_fork_pending.store(0, std::memory_order_release);
  me.word.store(g_saved_word, std::memory_order_relaxed);
}

// Registered when the library is loaded, before main and before any thread: the prepare
// handler runs after those registered later (which may still allocate), the child
// handler before them (so theirs may allocate in the child).
[[gnu::constructor]] void install_fork_handlers() noexcept {
  pthread_atfork(&prepare, &parent, &child);
  // Registering runs the process init (environment, configure) if no allocation did.
  FrontThread& me = t_front;
  if (me.word.load(std::memory_order_relaxed) == kUnregistered) register_thread(me);
}

}  // namespace

void init_process_barrier() noexcept {
  if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0) {
    g_barrier = Barrier::private_expedited;
    return;
  }
  const long supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported > 0 && (supported & MEMBARRIER_CMD_GLOBAL) != 0) {
    g_barrier = Barrier::global;
    return;
  }
  g_barrier_page = os_map_rw(4096);
  g_barrier = Barrier::mprotect;
}

}  // namespace ctxalloc::replace::detail
