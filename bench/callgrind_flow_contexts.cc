// Callgrind workloads of the flow-context suite (issue 16): a flow's memory made, used
// and dropped, through a growing context (the flow context), through the fixed 16 KiB
// context it replaces, and through its peers in the same run: glibc malloc/free and a
// std::pmr::monotonic_buffer_resource per flow.
//
//  - create_release_*: a flow context made and released, nothing in it (the lcore's
//    bookkeeping included: the pool's page pop and push, its live count).
//  - flow_*: a short flow: its context made, four blocks asked (a 5-tuple key, a state
//    record, two packet-sized records: 48, 96, 40, 200 B), then released (malloc: four
//    frees).
//  - alloc_*: one allocation that fits the current chunk (32 B), per op (N rounded up to
//    a multiple of 1000); the context is reset every 1000 (its first chunk kept),
//    malloc frees its 1000 then (so its figure is an allocate + free).
#include <cstdlib>
#include <memory_resource>

#include "callgrind_main.h"
#include "ctxalloc/switchable/context.h"

using namespace ctxalloc;
using namespace ctxalloc::bench;

namespace {

template <class T>
void keep(T* p) {
  asm volatile("" : : "r"(p) : "memory");
}

constexpr std::size_t kFlow[4] = {48, 96, 40, 200};

// A warm lcore: the pool's first page and the fixed context arena's first block taken
// before the counted function runs, and other flows live (so that a page does not empty
// at every release, as on a busy lcore).
void warm() {
  for (int i = 0; i < 64; ++i) {
    (void)Context::create_growing();
    (void)Context::create(Lifetime::short_lived, 16384);
  }
}

}  // namespace

extern "C" {

[[gnu::noinline]] void ctxbench_create_release_growing(std::uint64_t n) {
  FlowChunks& pool = current_thread_heap()->flow_chunks();
  for (std::uint64_t i = 0; i < n; ++i) {
    GrowingContext* g = GrowingContext::create(pool);
    keep(g);
    g->release();
  }
}
[[gnu::noinline]] void ctxbench_create_release_fixed(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    Context* c = Context::create(Lifetime::short_lived, 16384);
    keep(c);
    c->release_all();
  }
}
[[gnu::noinline]] void ctxbench_flow_growing(std::uint64_t n) {
  FlowChunks& pool = current_thread_heap()->flow_chunks();
  for (std::uint64_t i = 0; i < n; ++i) {
    GrowingContext* g = GrowingContext::create(pool);
    for (std::size_t s : kFlow)
      keep(g->allocate(Layout{s, 8}).ptr);
    g->release();
  }
}
[[gnu::noinline]] void ctxbench_flow_fixed(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    Context* c = Context::create(Lifetime::short_lived, 16384);
    for (std::size_t s : kFlow)
      keep(c->allocate(Layout{s, 8}).ptr);
    c->release_all();
  }
}
[[gnu::noinline]] void ctxbench_flow_malloc(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p[4];
    for (int k = 0; k < 4; ++k) {
      p[k] = std::malloc(kFlow[k]);
      keep(p[k]);
    }
    for (void* q : p)
      std::free(q);
  }
}
[[gnu::noinline]] void ctxbench_flow_pmr_monotonic(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    std::pmr::monotonic_buffer_resource r(1024, std::pmr::new_delete_resource());
    for (std::size_t s : kFlow)
      keep(r.allocate(s, 8));
  }
}
[[gnu::noinline]] void ctxbench_alloc_growing(std::uint64_t n) {
  FlowChunks& pool = current_thread_heap()->flow_chunks();
  GrowingOptions o;
  o.first_chunk = 65536;
  o.max_chunk = 65536;
  pool.set_options(o);
  GrowingContext* g = GrowingContext::create(pool);
  for (std::uint64_t i = 0; i < n; i += 1000) {
    for (int k = 0; k < 1000; ++k)
      keep(g->allocate(Layout{32, 8}).ptr);
    g->reset();
  }
  g->release();
  pool.set_options(GrowingOptions{});
}
[[gnu::noinline]] void ctxbench_alloc_malloc(std::uint64_t n) {
  static void* held[1000];
  for (std::uint64_t i = 0; i < n; i += 1000) {
    for (void*& p : held) {
      p = std::malloc(32);
      keep(p);
    }
    for (void* p : held)
      std::free(p);
  }
}

}  // extern "C"

int main(int argc, char** argv) {
  warm();
  return callgrind_main(argc, argv,
                        {
                            {"create_release_growing", ctxbench_create_release_growing},
                            {"create_release_fixed", ctxbench_create_release_fixed},
                            {"flow_growing", ctxbench_flow_growing},
                            {"flow_fixed", ctxbench_flow_fixed},
                            {"flow_malloc", ctxbench_flow_malloc},
                            {"flow_pmr_monotonic", ctxbench_flow_pmr_monotonic},
                            {"alloc_growing", ctxbench_alloc_growing},
                            {"alloc_malloc", ctxbench_alloc_malloc},
                        });
}
