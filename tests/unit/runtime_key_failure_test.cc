// Issue 19, item 7: the switchable runtime wrote key_ok_ when pthread_key_create failed
// and never read it, so the failure went unnoticed (and pthread_setspecific was called
// with a key that does not exist). Here every pthread key is taken before the runtime
// starts: it must say so once on stderr, report it in heap_census(), never set the key,
// and still serve every mode, threads that exit included. Its own process: the runtime
// is made once per process. Not a gtest program: gtest must not start the runtime first.
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/switchable/switchable.h"

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  using namespace ctxalloc;
  std::vector<pthread_key_t> keys;
  for (;;) {
    pthread_key_t k;
    if (pthread_key_create(&k, nullptr) != 0) break;
    keys.push_back(k);
  }
  std::printf("took %zu pthread keys\n", keys.size());
  // stderr into a file while the runtime starts.
  char path[] = "/tmp/ctxalloc-key-failure-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return 1;
  unlink(path);
  const int saved = dup(2);
  dup2(fd, 2);
  set_mode(Mode::thread);
  void* p = allocate(100);
  dup2(saved, 2);
  close(saved);
  char said[512] = {};
  const ssize_t n = pread(fd, said, sizeof said - 1, 0);
  close(fd);
  std::printf("stderr of the runtime's start: %s", n > 0 ? said : "(nothing)\n");
  expect(std::strstr(said, "ctxalloc: pthread_key_create failed") != nullptr,
         "the failure is said on stderr");
  expect(p != nullptr, "thread mode allocates");
  const HeapCensus c0 = heap_census();
  expect(!c0.thread_exit_hook, "heap_census().thread_exit_hook is false");
  // Threads that allocate, free each other's blocks and exit without the exit hook.
  std::vector<void*> handed;
  for (int round = 0; round < 4; ++round) {
    std::thread t([&] {
      set_mode(round % 2 == 0 ? Mode::thread : Mode::global);
      for (int i = 0; i < 1000; ++i) {
        void* q = allocate(16 + static_cast<std::size_t>(i % 500));
        if (q == nullptr) {
          expect(false, "a thread's allocate");
          return;
        }
        std::memset(q, 0x5a, 16);
        if (i % 10 == 0) {
          handed.push_back(q);
        } else {
          deallocate(q);
        }
      }
    });
    t.join();
  }
  for (void* q : handed)
    deallocate(q);  // blocks of exited threads' heaps, from this thread
  flush();
  deallocate(p);
  expect(misuse_count() == 0, "no misuse");
  const HeapCensus c = heap_census();
  std::printf("heaps %zu, abandoned %zu, node fallbacks %llu\n", c.heaps, c.abandoned,
              static_cast<unsigned long long>(c.node_fallbacks));
  expect(c.abandoned == 0, "without the hook no heap is abandoned");
  expect(c.node_fallbacks == 0, "no node fallback on this machine");
  for (pthread_key_t k : keys)
    pthread_key_delete(k);
  std::printf(failures == 0 ? "ok\n" : "%d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
