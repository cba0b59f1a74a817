// Callgrind workloads of the switchable suite (see callgrind_main.h), one binary per
// malloc peer like bench_switchable.
#include "callgrind_main.h"
#include "malloc_peer.h"
#include "switchable_workloads.h"

using namespace ctxalloc::bench;

namespace {
constexpr std::uint64_t kWarm = 100000;
void thread_mode() {
  ctxalloc::set_mode(ctxalloc::Mode::thread);
}
void nothing() {}
}  // namespace

extern "C" {

[[gnu::noinline]] void ctxbench_malloc_pairs(std::uint64_t n) {
  pairs_loop<MallocApi>(n);
}
[[gnu::noinline]] void ctxbench_malloc_batch(std::uint64_t n) {
  batch_loop<MallocApi>(n);
}

// Producer/consumer: only the two halves are collected (ctxbench_<w>_*), so the
// semaphores of the lock-step hand-over are left out.
[[gnu::noinline]] void ctxbench_malloc_pc_produce(void** out, std::uint64_t first,
                                                  std::uint64_t count) {
  produce_chunk<MallocApi>(out, first, count);
}
[[gnu::noinline]] void ctxbench_malloc_pc_consume(void** in, std::uint64_t count) {
  consume_chunk<MallocApi>(in, count);
}
[[gnu::noinline]] void run_malloc_pc(std::uint64_t n) {
  producer_consumer_lockstep<MallocApi>(n, nothing, ctxbench_malloc_pc_produce,
                                        ctxbench_malloc_pc_consume);
}
[[gnu::noinline]] void ctxbench_malloc_packet(std::uint64_t n) {
  packet_loop<MallocApi>(n);
}
// Per object of a flow (its allocation and its free): n objects are n / 16 flows.
[[gnu::noinline]] void ctxbench_malloc_flow(std::uint64_t n) {
  flow_loop<MallocApi>(n / kFlowObjects);
}
// Larson: ten rounds of two threads, n / 20 operations each; the threads' loops are
// ctxbench_<w>_work, collected on every thread.
[[gnu::noinline]] void ctxbench_malloc_larson_work(LarsonTable& t, std::uint64_t seed,
                                                   std::uint64_t ops) {
  larson_work<MallocApi>(t, seed, ops);
}
[[gnu::noinline]] void run_malloc_larson(std::uint64_t n) {
  larson<MallocApi>(10, n / 20, nothing, ctxbench_malloc_larson_work);
}

#if CTXBENCH_WITH_CTXALLOC
[[gnu::noinline]] void ctxbench_ctxalloc_pairs(std::uint64_t n) {
  pairs_loop<CtxallocApi>(n);
}
[[gnu::noinline]] void ctxbench_ctxalloc_batch(std::uint64_t n) {
  batch_loop<CtxallocApi>(n);
}
[[gnu::noinline]] void ctxbench_ctxalloc_pc_produce(void** out, std::uint64_t first,
                                                    std::uint64_t count) {
  produce_chunk<CtxallocApi>(out, first, count);
}
[[gnu::noinline]] void ctxbench_ctxalloc_pc_consume(void** in, std::uint64_t count) {
  consume_chunk<CtxallocApi>(in, count);
}
ctxalloc::Context* g_context = nullptr;
[[gnu::noinline]] void ctxbench_context_scope(std::uint64_t n) {
  context_scope_loop(*g_context, n);
}
[[gnu::noinline]] void ctxbench_context_pairs(std::uint64_t n) {
  context_pairs_loop(*g_context, n);
}
[[gnu::noinline]] void run_ctxalloc_pc(std::uint64_t n) {
  producer_consumer_lockstep<CtxallocApi>(n, thread_mode, ctxbench_ctxalloc_pc_produce,
                                          ctxbench_ctxalloc_pc_consume);
}
[[gnu::noinline]] void ctxbench_ctxalloc_packet(std::uint64_t n) {
  packet_loop<CtxallocApi>(n);
}
[[gnu::noinline]] void ctxbench_ctxalloc_flow(std::uint64_t n) {
  flow_loop_context(n / kFlowObjects);
}
[[gnu::noinline]] void ctxbench_ctxalloc_larson_work(LarsonTable& t, std::uint64_t seed,
                                                     std::uint64_t ops) {
  larson_work<CtxallocApi>(t, seed, ops);
}
[[gnu::noinline]] void run_ctxalloc_larson(std::uint64_t n) {
  larson<CtxallocApi>(10, n / 20, thread_mode, ctxbench_ctxalloc_larson_work);
}
std::pmr::unsynchronized_pool_resource* g_pool = nullptr;
[[gnu::noinline]] void ctxbench_pmr_pool_packet(std::uint64_t n) {
  packet_loop_pmr(*g_pool, n);
}
[[gnu::noinline]] void ctxbench_pmr_monotonic_flow(std::uint64_t n) {
  flow_loop_pmr(n / kFlowObjects);
}
#endif

}  // extern "C"

int main(int argc, char** argv) {
  if (!malloc_is_the_peer()) return 1;
  // Warm up outside the measured functions: first pages, first segments, TLS set-up
  // (not in memory mode, where the workload's own growth is measured).
  const std::uint64_t warm = memory_mode() ? 0 : kWarm;
  thread_mode();
  batch_loop<MallocApi>(warm);
#if CTXBENCH_WITH_CTXALLOC
  batch_loop<CtxallocApi>(warm);
  g_context = ctxalloc::Context::create(ctxalloc::Lifetime::medium, 64 << 10);
  if (g_context == nullptr) return 1;
  context_pairs_loop(*g_context, warm);
  static std::pmr::unsynchronized_pool_resource pool;
  g_pool = &pool;
  packet_loop_pmr(pool, warm);
  packet_loop<CtxallocApi>(warm);
  flow_loop_context(warm / kFlowObjects);
#endif
  packet_loop<MallocApi>(warm);
  return callgrind_main(argc, argv, {
#if CTXBENCH_WITH_CTXALLOC
    {"ctxalloc_pairs", ctxbench_ctxalloc_pairs}, {"ctxalloc_batch", ctxbench_ctxalloc_batch},
        {"ctxalloc_pc", run_ctxalloc_pc}, {"context_scope", ctxbench_context_scope},
        {"context_pairs", ctxbench_context_pairs}, {"ctxalloc_packet", ctxbench_ctxalloc_packet},
        {"ctxalloc_flow", ctxbench_ctxalloc_flow}, {"ctxalloc_larson", run_ctxalloc_larson},
        {"pmr_pool_packet", ctxbench_pmr_pool_packet},
        {"pmr_monotonic_flow", ctxbench_pmr_monotonic_flow},
#endif
        {"malloc_pairs", ctxbench_malloc_pairs}, {"malloc_batch", ctxbench_malloc_batch},
        {"malloc_pc", run_malloc_pc}, {"malloc_packet", ctxbench_malloc_packet},
        {"malloc_flow", ctxbench_malloc_flow}, {"malloc_larson", run_malloc_larson},
  });
}
