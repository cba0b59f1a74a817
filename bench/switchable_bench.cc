// The switchable suite against the malloc peers: glibc here, mimalloc, jemalloc, tcmalloc
// in their own binaries (a process has one malloc); the glibc binary also runs ctxalloc
// (thread mode, and contexts) and the std::pmr resources. Benchmarks are named
// `workload/implementation`; bench/all.sh runs every binary, alternating.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <string>

#include "malloc_peer.h"
#include "switchable_workloads.h"

namespace ctxalloc::bench {
namespace {

constexpr std::uint64_t kOps = 4096;
constexpr std::uint64_t kFlows = 256;
constexpr std::uint64_t kPcOps = 100000;
constexpr unsigned kLarsonRounds = 10;
constexpr std::uint64_t kLarsonOps = 20000;

void nothing() {}

/// Registers `workload/impl` running `body` once per iteration, `items` operations each.
void add(const std::string& workload, const std::string& impl, std::uint64_t items,
         std::function<void()> body, bool real_time = false) {
  auto* b =
      benchmark::RegisterBenchmark((workload + "/" + impl).c_str(), [=](benchmark::State& state) {
        for (auto _ : state)
          body();
        state.SetItemsProcessed(state.iterations() * items);
      });
  if (real_time) b->UseRealTime();
}

template <class Api, class Setup>
void add_workloads(const std::string& impl, Setup setup) {
  add("pairs", impl, kOps, [] { pairs_loop<Api>(kOps); });
  add("batch", impl, kOps, [] { batch_loop<Api>(kOps); });
  add("packet", impl, kOps, [] { packet_loop<Api>(kOps); });
  add(
      "producer_consumer", impl, kPcOps,
      [setup] { producer_consumer<Api>(kPcOps, setup, produce<Api>, consume<Api>); }, true);
  add(
      "larson", impl, 2 * kLarsonRounds * kLarsonOps,
      [setup] { larson<Api>(kLarsonRounds, kLarsonOps, setup, larson_work<Api>); }, true);
}

#if CTXBENCH_WITH_CTXALLOC
void thread_mode() {
  ctxalloc::set_mode(ctxalloc::Mode::thread);
}

void add_ctxalloc() {
  add_workloads<CtxallocApi>("ctxalloc", thread_mode);
  add("flow", "ctxalloc", kFlows * kFlowObjects, [] { flow_loop_context(kFlows); });
  // The cost of making a context current and of allocating in it.
  static Context* c = Context::create(Lifetime::medium, 64 << 10);
  add("context_scope", "ctxalloc", kOps, [] { context_scope_loop(*c, kOps); });
  add("context_pairs", "ctxalloc", kOps, [] { context_pairs_loop(*c, kOps); });
}

void add_pmr() {
  // unsynchronized_pool_resource: the per-thread pool people pick for per-packet buffers;
  // monotonic_buffer_resource: the per-flow arena released whole.
  static std::pmr::unsynchronized_pool_resource pool;
  add("packet", "pmr_pool", kOps, [] { packet_loop_pmr(pool, kOps); });
  add("flow", "pmr_monotonic", kFlows * kFlowObjects, [] { flow_loop_pmr(kFlows); });
}
#endif

void register_all() {
#if CTXBENCH_WITH_CTXALLOC
  thread_mode();
  add_ctxalloc();
  add_pmr();
#endif
  add_workloads<MallocApi>(kMallocName, nothing);
  add("flow", kMallocName, kFlows * kFlowObjects, [] { flow_loop<MallocApi>(kFlows); });
}

}  // namespace
}  // namespace ctxalloc::bench

int main(int argc, char** argv) {
  if (!ctxalloc::bench::malloc_is_the_peer()) {
    std::fprintf(stderr, "malloc is not %s: wrong link order\n", ctxalloc::bench::kMallocName);
    return 1;
  }
  ctxalloc::bench::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
