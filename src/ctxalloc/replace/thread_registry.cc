// Thread life in the process allocator: process init, the registry of threads a forker
// must wait for, and what happens after a thread's exit handler ran.
#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include <cstdlib>
#include <cstring>

#include "ctxalloc/replace/detail/front_internal.h"
#include "ctxalloc/switchable/runtime_hooks.h"

namespace ctxalloc::replace::detail {

constinit thread_local FrontThread t_front [[gnu::tls_model("initial-exec")]] = {};
constinit std::atomic<std::uint32_t> g_fork_pending{0};

namespace {

constinit FrontCounters g_counters;
pthread_mutex_t g_registry_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_late_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_fork_mutex = PTHREAD_MUTEX_INITIALIZER;
FrontThread* g_first = nullptr;  // the registry: a doubly linked list through the TLS records

// 0: not started, 1: running, 2: done.
constinit std::atomic<int> g_init{0};
pthread_key_t g_exit_key;

Mode mode_from_environment() noexcept {
  // getenv reads environ: no allocation.
  const char* m = std::getenv("CTXALLOC_MODE");
  if (m != nullptr && std::strcmp(m, "global") == 0) return Mode::global;
  return Mode::thread;  // a program that knows nothing of ctxalloc: one heap per thread
}

// The thread's exit handler (a pthread key destructor): takes the thread out of the
// registry before its TLS goes away. Calls it still makes (later destructors, glibc
// freeing the thread's DTV) take the late lock.
void on_thread_exit(void*) noexcept {
  FrontThread& f = t_front;
  pthread_mutex_lock(&g_registry_mutex);
  if (f.prev != nullptr) f.prev->next = f.next;
  if (f.next != nullptr) f.next->prev = f.prev;
  if (g_first == &f) g_first = f.next;
  f.next = f.prev = nullptr;
  pthread_mutex_unlock(&g_registry_mutex);
  f.word.store(kExited, std::memory_order_release);
  g_counters.threads_exited.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

FrontCounters& front_counters() noexcept {
  return g_counters;
}

void ensure_process_init() noexcept {
  if (g_init.load(std::memory_order_acquire) == 2) return;
  int expected = 0;
  if (!g_init.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    while (g_init.load(std::memory_order_acquire) != 2)
      sched_yield();
    return;
  }
  SwitchableOptions options;
  options.default_mode = mode_from_environment();
  // False when a program linked with ctxalloc configured it first: its choice stands.
  configure(options);
  // glibc's pthread_key_create allocates nothing (a static table).
  pthread_key_create(&g_exit_key, &on_thread_exit);
  init_process_barrier();
  init_exit_report();
  g_init.store(2, std::memory_order_release);
}

void register_thread(FrontThread& f) noexcept {
  // Busy while registering: whatever the calls below allocate is served aside.
  f.word.store(kBusy, std::memory_order_relaxed);
  const int saved_errno = errno;
  ensure_process_init();
  f.state = &ctxalloc::detail::t_state;
  pthread_mutex_lock(&g_registry_mutex);
  f.prev = nullptr;
  f.next = g_first;
  if (g_first != nullptr) g_first->prev = &f;
  g_first = &f;
  pthread_mutex_unlock(&g_registry_mutex);
  // Non-null: pthread calls the exit handler for this thread. For a key above 31 glibc
  // allocates its second-level array here (served by the bootstrap arena).
  pthread_setspecific(g_exit_key, &f);
  g_counters.threads.fetch_add(1, std::memory_order_relaxed);
  errno = saved_errno;
  f.word.store(kIdle, std::memory_order_release);
}

void wait_for_fork() noexcept {
  g_counters.fork_waits.fetch_add(1, std::memory_order_relaxed);
  pthread_mutex_lock(&g_fork_mutex);
  pthread_mutex_unlock(&g_fork_mutex);
}

pthread_mutex_t& registry_mutex() noexcept {
  return g_registry_mutex;
}

FrontThread* registry_first() noexcept {
  return g_first;
}

void registry_reset_in_child(FrontThread* f) noexcept {
  g_first = f;
  if (f != nullptr) f->next = f->prev = nullptr;
  // Fresh mutexes: whoever held them in the parent does not exist here.
  pthread_mutex_init(&g_registry_mutex, nullptr);
  pthread_mutex_init(&g_late_mutex, nullptr);
  pthread_mutex_init(&g_fork_mutex, nullptr);
}

pthread_mutex_t& late_mutex() noexcept {
  return g_late_mutex;
}

pthread_mutex_t& fork_mutex() noexcept {
  return g_fork_mutex;
}

}  // namespace ctxalloc::replace::detail
