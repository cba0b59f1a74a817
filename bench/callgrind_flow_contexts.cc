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
//    a multiple of 1000) in a context whose first chunk (64 KiB) holds them; the context
//    is reset every 1000 (its first chunk kept),
//    malloc frees its 1000 then (so its figure is an allocate + free).
//  - scale_lifecycle_*, scale_packet_*: the flow-scale benchmark's mix (bench/flow_mix.h)
//    with 10,000 live flows, set up and run warm (40,000 packets) before the count: per
//    op, one flow closed and a new one opened in its place (lifecycle), or one packet of
//    a random live flow (packet). The _null peer serves every block from a static
//    buffer and frees nothing: its figure is the driver's own (the generator, the flow's
//    block list), the same in every peer's, so a peer's cost is its figure minus null's.
#include <cstdlib>
#include <memory_resource>

#include <cstring>
#include <vector>

#include "callgrind_main.h"
#include "ctxalloc/switchable/context.h"
#include "flow_mix.h"

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

// ---- the flow-scale mix's peers (as bench/flow_scale_bench.cc's)

struct ScaleNull {  // the driver alone: blocks from a static buffer, nothing freed
  alignas(64) static inline std::byte buf[1 << 20];
  std::size_t at = 0;
  void* open() { return buf; }
  void* allocate(void*, std::size_t n) {
    if (at + n > sizeof buf) at = 0;
    void* p = buf + at;
    at += (n + 7) & ~std::size_t{7};
    return p;
  }
  void free(void*, void*, std::size_t) {}
  void close(void*, const std::vector<std::pair<void*, std::uint32_t>>&) {}
};

constexpr unsigned kScaleFlows = 10000;

template <class Peer>
struct Scale {
  Peer peer;
  flowmix::Driver<Peer> d{peer};
  std::vector<flowmix::Flow> fs{kScaleFlows};
  flowmix::Mix mix{20261207};
  Scale() {
    for (flowmix::Flow& f : fs)
      d.open(f, mix);
    for (unsigned i = 0; i < 4 * kScaleFlows; ++i)
      d.packet(fs[mix.below(kScaleFlows)], mix);
  }
  void lifecycle(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      flowmix::Flow& f = fs[i % kScaleFlows];
      d.close(f);
      d.open(f, mix);
    }
  }
  void packet(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i)
      d.packet(fs[mix.below(kScaleFlows)], mix);
  }
};

Scale<flowmix::GrowingFlows>* g_scale_growing;
Scale<flowmix::MallocFlows>* g_scale_malloc;
Scale<ScaleNull>* g_scale_null;

// Set up (outside the counted functions) the state a scale_* workload runs on.
void set_up_scale(const char* workload) {
  if (workload == nullptr || std::strncmp(workload, "scale_", 6) != 0) return;
  const char* peer = std::strrchr(workload, '_') + 1;
  if (std::strcmp(peer, "growing") == 0) g_scale_growing = new Scale<flowmix::GrowingFlows>;
  if (std::strcmp(peer, "malloc") == 0) g_scale_malloc = new Scale<flowmix::MallocFlows>;
  if (std::strcmp(peer, "null") == 0) g_scale_null = new Scale<ScaleNull>;
}

template <class S>
S& scale(S* s) {
  if (s == nullptr) flowmix::die("scale workload not set up");
  return *s;
}

}  // namespace

extern "C" {

[[gnu::noinline]] void ctxbench_scale_lifecycle_growing(std::uint64_t n) {
  scale(g_scale_growing).lifecycle(n);
}
[[gnu::noinline]] void ctxbench_scale_lifecycle_malloc(std::uint64_t n) {
  scale(g_scale_malloc).lifecycle(n);
}
[[gnu::noinline]] void ctxbench_scale_lifecycle_null(std::uint64_t n) {
  scale(g_scale_null).lifecycle(n);
}
[[gnu::noinline]] void ctxbench_scale_packet_growing(std::uint64_t n) {
  scale(g_scale_growing).packet(n);
}
[[gnu::noinline]] void ctxbench_scale_packet_malloc(std::uint64_t n) {
  scale(g_scale_malloc).packet(n);
}
[[gnu::noinline]] void ctxbench_scale_packet_null(std::uint64_t n) {
  scale(g_scale_null).packet(n);
}

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
  // 64 KiB first chunks (set in main, before any context is live: set_options refuses
  // while contexts are), so that 1000 blocks of 32 B fit the first chunk.
  FlowChunks& pool = current_thread_heap()->flow_chunks();
  GrowingContext* g = GrowingContext::create(pool);
  for (std::uint64_t i = 0; i < n; i += 1000) {
    for (int k = 0; k < 1000; ++k)
      keep(g->allocate(Layout{32, 8}).ptr);
    g->reset();
  }
  g->release();
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
  if (argc > 1 && std::strcmp(argv[1], "alloc_growing") == 0) {
    GrowingOptions o;
    o.first_chunk = 65536;
    o.max_chunk = 65536;
    if (!current_thread_heap()->flow_chunks().set_options(o)) flowmix::die("set_options refused");
  }
  warm();
  set_up_scale(argc > 1 ? argv[1] : nullptr);
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
                            {"scale_lifecycle_growing", ctxbench_scale_lifecycle_growing},
                            {"scale_lifecycle_malloc", ctxbench_scale_lifecycle_malloc},
                            {"scale_lifecycle_null", ctxbench_scale_lifecycle_null},
                            {"scale_packet_growing", ctxbench_scale_packet_growing},
                            {"scale_packet_malloc", ctxbench_scale_packet_malloc},
                            {"scale_packet_null", ctxbench_scale_packet_null},
                        });
}
