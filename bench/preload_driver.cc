// The switchable suite's workloads (bench/switchable_workloads.h) through plain malloc and
// free, in a program that links no allocator: bench/preload_peers.sh runs it as a whole
// process under LD_PRELOAD of each malloc (ctxalloc's libctxalloc_preload.so, mimalloc,
// jemalloc, tcmalloc) and under glibc's.
//
//   preload_driver WORKLOAD N
// prints "<workload> <wall ns per op> <cpu ns per op> <library serving malloc>".
// workloads: pairs, batch (one thread), pc (producer/consumer over a ring, two threads
// spinning with yield), pc_lockstep (the same hand-over in chunks of 1,000 with
// semaphores, no spinning; its halves run in ctxbench_pc_lockstep_produce/_consume).
// The CPU time is the process's (both threads): a thread that is descheduled -- the
// machine is shared -- does not count, which makes it the steadier figure for the
// single-threaded and lock-step workloads; for pc it includes the spinning. Under
// callgrind, each workload's loop runs inside ctxbench_<workload>.
#include <dlfcn.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "switchable_workloads.h"

using namespace ctxalloc::bench;

namespace {

const char* malloc_library() {
  Dl_info info{};
  const void* fn = reinterpret_cast<const void*>(&std::malloc);
  if (dladdr(fn, &info) == 0 || info.dli_fname == nullptr) return "?";
  const char* slash = std::strrchr(info.dli_fname, '/');
  return slash != nullptr ? slash + 1 : info.dli_fname;
}

void nothing() {}

double cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

}  // namespace

extern "C" {

[[gnu::noinline]] void ctxbench_pairs(std::uint64_t n) {
  pairs_loop<MallocApi>(n);
}
[[gnu::noinline]] void ctxbench_batch(std::uint64_t n) {
  batch_loop<MallocApi>(n);
}
[[gnu::noinline]] void ctxbench_pc(std::uint64_t n) {
  producer_consumer<MallocApi>(n, nothing, produce<MallocApi>, consume<MallocApi>);
}
[[gnu::noinline]] void ctxbench_pc_lockstep_produce(void** out, std::uint64_t first,
                                                    std::uint64_t count) {
  produce_chunk<MallocApi>(out, first, count);
}
[[gnu::noinline]] void ctxbench_pc_lockstep_consume(void** in, std::uint64_t count) {
  consume_chunk<MallocApi>(in, count);
}
[[gnu::noinline]] void ctxbench_pc_lockstep(std::uint64_t n) {
  producer_consumer_lockstep<MallocApi>(n, nothing, ctxbench_pc_lockstep_produce,
                                        ctxbench_pc_lockstep_consume);
}

}  // extern "C"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s pairs|batch|pc|pc_lockstep N\n", argv[0]);
    return 2;
  }
  const std::string w = argv[1];
  const std::uint64_t n = std::strtoull(argv[2], nullptr, 10);
  void (*fn)(std::uint64_t) = w == "pairs"         ? ctxbench_pairs
                              : w == "batch"       ? ctxbench_batch
                              : w == "pc"          ? ctxbench_pc
                              : w == "pc_lockstep" ? ctxbench_pc_lockstep
                                                   : nullptr;
  if (fn == nullptr || n == 0) {
    std::fprintf(stderr, "unknown workload %s or N 0\n", argv[1]);
    return 2;
  }
  // Warm up outside the measurement: first pages, first segments, thread set-up (a pc
  // run also leaves a heap for the next consumer thread to adopt).
  batch_loop<MallocApi>(100000);
  if (w == "pc" || w == "pc_lockstep") fn(n / 10 + 1);
  const double c0 = cpu_ns();
  const auto t0 = std::chrono::steady_clock::now();
  fn(n);
  const auto t1 = std::chrono::steady_clock::now();
  const double c1 = cpu_ns();
  const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
  std::printf("%s %.3f %.3f %s\n", w.c_str(), ns / static_cast<double>(n),
              (c1 - c0) / static_cast<double>(n), malloc_library());
  return 0;
}
