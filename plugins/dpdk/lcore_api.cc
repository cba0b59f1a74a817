// The per-lcore API (ctxalloc/dpdk/lcore.h): binding, flow contexts, figures, and what
// the registry reads. make_flow_context and release_flow_context are on the per-flow
// path: a few loads and the context's own create/release. No shared write: max_flows is
// enforced through per-lcore shares (LcoreHeap::flow_share), for growing flows by the
// lcore's FlowChunks context limit, for fixed kinds by the lcore's own live count.
#include <pthread.h>
#include <rte_lcore.h>

#include <cerrno>
#include <new>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/registry.h"
#include "ctxalloc/switchable/growing_context.h"
#include "detail/lcore_heaps.h"

namespace ctxalloc::dpdk {
namespace detail {

LcoreRuntime& lcore_runtime() noexcept {
  // Static storage built once, never destroyed: lcores may read it while the process exits.
  alignas(LcoreRuntime) static unsigned char storage[sizeof(LcoreRuntime)];
  static LcoreRuntime* rt = new (storage) LcoreRuntime();
  return *rt;
}

Lifetime lifetime_of(AllocatorKind flow_kind) noexcept {
  switch (flow_kind) {
    case AllocatorKind::bitset:
      return Lifetime::medium;
    case AllocatorKind::tree:
      return Lifetime::long_lived;
    case AllocatorKind::bump:
    case AllocatorKind::growing:
    case AllocatorKind::none:
      break;
  }
  return Lifetime::short_lived;
}

// Growing flows: the bytes of their chunks (large blocks are in the spill tree's figure).
std::uint64_t flow_bytes_in_use(const LcoreHeap& h, const ThreadHeapStats& s) noexcept {
  if (lcore_runtime().growing) return h.heap.flow_chunks().figures().chunk_bytes;
  return s.contexts_live * lcore_runtime().flow_bytes;
}

std::uint64_t lcore_bytes_in_use(const LcoreHeap& h) noexcept {
  const ThreadHeapStats s = h.heap.stats();
  return s.total().bytes_in_use + flow_bytes_in_use(h, s) + s.spill.bytes_in_use;
}

int bind_heap(LcoreHeap& h) noexcept {
  const unsigned long self = pthread_self();
  unsigned long holder = 0;
  if (!h.bound_thread.compare_exchange_strong(holder, self, std::memory_order_acq_rel) &&
      holder != self)
    return -EBUSY;
  attach_thread_heap(&h.heap);
  if (h.thread_mode) set_mode(Mode::thread);
  return 0;
}

void unbind_heap(LcoreHeap& h) noexcept {
  if (h.bound_thread.load(std::memory_order_relaxed) != pthread_self()) return;
  if (thread_heap_now() == &h.heap) detach_thread_heap();  // flushes, then abandons
  h.bound_thread.store(0, std::memory_order_release);
}

// ------------------------------------------------------------------ registry readers

Stats read_thread_account(const void* self) noexcept {
  return static_cast<const LcoreHeap*>(self)->heap.stats().total();
}

// Flow contexts of the lcore: a context holds its whole block; spilled blocks count too.
Stats read_context_account(const void* self) noexcept {
  const auto& h = *static_cast<const LcoreHeap*>(self);
  const ThreadHeapStats t = h.heap.stats();
  Stats s;
  s.allocations = h.contexts_made.get();
  s.deallocations = h.contexts_released.get();
  s.failures = h.context_failures.get() + h.flow_limit_hits.get() + t.context_spill_failures;
  s.bytes_in_use = flow_bytes_in_use(h, t) + t.spill.bytes_in_use;
  if (lcore_runtime().growing) {
    const FlowChunks::Figures f = h.heap.flow_chunks().figures();
    s.allocations = f.contexts_made;
    s.deallocations = f.contexts_made - f.contexts_live;
    for (const std::uint64_t r : f.refusals)
      s.failures += r;
    // The flows' segments at their peak plus the spill tree's own peak: an upper bound.
    s.peak_bytes = (f.peak_segments[0] + f.peak_segments[1]) * SegmentSource::kSegmentSize +
                   t.spill.peak_bytes;
  } else {
    // Peak of the contexts' blocks plus the spill tree's own peak: an upper bound.
    s.peak_bytes = h.peak_context_bytes.get() + t.spill.peak_bytes;
  }
  s.capacity = h.region.bytes();
  return s;
}

Stats read_global_account(const void* self) noexcept {
  const auto& s = *static_cast<const SocketHeap*>(self);
  Stats st = s.heap.stats();
  st.capacity = s.region.bytes();
  return st;
}

// The fallback chain as the lcore's counters: context -> thread, context -> global (and
// thread-mode requests the heap passed on), and what no tier served.
void read_lcore_counts(const void* self, LcoreCounts& sum) noexcept {
  const ThreadHeapStats t = static_cast<const LcoreHeap*>(self)->heap.stats();
  sum.fallback_to_thread += t.context_spills_thread;
  sum.fallback_to_global += t.context_spills_global + t.fallbacks;
  sum.fallback_failures += t.context_spill_failures + t.refused;
}

}  // namespace detail

namespace {

using detail::LcoreHeap;

Memory memory_of(const detail::SegmentRegion& r) noexcept {
  switch (r.kind()) {
    case detail::PageKind::hugepages:
      return Memory::hugepages;
    case detail::PageKind::normal_pages:
      return Memory::normal_pages;
    case detail::PageKind::none:
      break;
  }
  return Memory::none;
}

// The calling thread's lcore heap, bound to this thread (binding it if needed), or null.
LcoreHeap* bound_heap() noexcept {
  LcoreHeap* h = detail::heap_of_lcore(rte_lcore_id());
  if (h == nullptr) [[unlikely]]
    return nullptr;
  if (thread_heap_now() == &h->heap) [[likely]]
    return h;
  return detail::bind_heap(*h) == 0 ? h : nullptr;
}

}  // namespace

const char* to_string(Memory m) noexcept {
  switch (m) {
    case Memory::none:
      return "none";
    case Memory::hugepages:
      return "hugepages";
    case Memory::normal_pages:
      return "normal_pages";
  }
  return "?";
}

int bind_lcore() noexcept {
  LcoreHeap* h = detail::heap_of_lcore(rte_lcore_id());
  if (h == nullptr) return -ENODEV;
  return detail::bind_heap(*h);
}

int unbind_lcore() noexcept {
  LcoreHeap* h = detail::heap_of_lcore(rte_lcore_id());
  if (h == nullptr || h->bound_thread.load(std::memory_order_relaxed) != pthread_self())
    return -ENODEV;
  detail::unbind_heap(*h);
  return 0;
}

Context* make_flow_context() noexcept {
  LcoreHeap* h = bound_heap();
  if (h == nullptr) [[unlikely]]
    return nullptr;
  const detail::LcoreRuntime& rt = detail::lcore_runtime();
  if (rt.growing) [[likely]] {
    if (h->flow_share == 0) [[unlikely]] {  // not a flow lcore
      h->flow_limit_hits.add(1);
      return nullptr;
    }
    // The lcore's share of max_flows is the pool's context limit (set at set-up): a
    // refusal there is counted as Refusal::limit, one for no first chunk as memory.
    GrowingContext* g = GrowingContext::create(h->heap.flow_chunks());
    if (g == nullptr) [[unlikely]] {
      h->context_failures.add(1);
      return nullptr;
    }
    return g;
  }
  // Fixed kinds: the lcore's own live count against its share (owner-written counters).
  if (h->contexts_made.get() - h->contexts_released.get() >= h->flow_share) [[unlikely]] {
    h->flow_limit_hits.add(1);
    return nullptr;
  }
  Context* c = Context::create(rt.flow_lifetime, rt.flow_bytes);
  if (c == nullptr) [[unlikely]] {
    h->context_failures.add(1);
    return nullptr;
  }
  h->contexts_made.add(1);
  const std::uint64_t live = h->contexts_made.get() - h->contexts_released.get();
  h->peak_context_bytes.raise_to(live * rt.flow_bytes);
  return c;
}

int release_flow_context(Context* flow) noexcept {
  if (flow == nullptr) return -EINVAL;
  LcoreHeap* h = detail::heap_of_lcore(rte_lcore_id());
  // The lcore's own flow after an unbind (a tear-down that found it busy): bind again.
  if (flow->heap() != thread_heap_now() && h != nullptr && &h->heap == flow->heap())
    (void)detail::bind_heap(*h);
  if (flow->heap() != thread_heap_now()) {
    report_misuse(Misuse::wrong_thread, "dpdk", "release_flow_context", flow);
    return -EPERM;
  }
  const bool fixed = flow->form() != ContextForm::growing;
  flow->release_all();
  if (fixed && h != nullptr && &h->heap == thread_heap_now()) h->contexts_released.add(1);
  return 0;
}

LcoreFigures lcore_figures(unsigned lcore_id) noexcept {
  LcoreFigures f;
  const LcoreHeap* h = detail::heap_of_lcore(lcore_id);
  if (h == nullptr) return f;
  const ThreadHeapStats t = h->heap.stats();
  f.present = true;
  f.bound = h->bound_thread.load(std::memory_order_relaxed) != 0;
  f.thread_mode = h->thread_mode;
  f.socket = h->socket;
  f.memory = memory_of(h->region);
  f.page_size = h->region.page_size();
  f.region_bytes = h->region.bytes();
  f.segment_bytes = h->segments.bytes_out();
  f.peak_segment_bytes = h->segments.peak_bytes_out();
  f.thread = t.total();
  f.contexts_made = h->contexts_made.get();
  f.contexts_released = h->contexts_released.get();
  f.contexts_live = t.contexts_live;
  f.context_failures = h->context_failures.get();
  f.flow_limit_hits = h->flow_limit_hits.get();
  f.context_bytes = detail::lcore_runtime().flow_bytes;
  f.flow_share = h->flow_share;
  std::uint64_t flow_peak = h->peak_context_bytes.get();
  if (detail::lcore_runtime().growing) {
    const FlowChunks::Figures g = h->heap.flow_chunks().figures();
    f.growing = true;
    f.contexts_made = g.contexts_made;
    f.contexts_released = g.contexts_made - g.contexts_live;
    f.contexts_live = g.contexts_live;
    f.peak_contexts = g.peak_contexts;
    f.flow_limit_hits += g.refusals[static_cast<unsigned>(Refusal::limit)];
    f.refused_budget = g.refusals[static_cast<unsigned>(Refusal::budget)];
    f.refused_memory = g.refusals[static_cast<unsigned>(Refusal::memory)];
    f.refused_too_large = g.refusals[static_cast<unsigned>(Refusal::too_large)];
    f.chunk_bytes = g.chunk_bytes;
    f.large_bytes = g.large_bytes;
    f.first_chunk_bytes = h->first_chunks.limit_bytes();
    f.growth_bytes = h->growth.limit_bytes();
    f.flow_segment_bytes = h->first_chunks.bytes_out() + h->growth.bytes_out();
    f.flow_peak_segment_bytes = h->first_chunks.peak_bytes_out() + h->growth.peak_bytes_out();
    flow_peak = f.flow_peak_segment_bytes;
  }
  f.spills_to_thread = t.context_spills_thread;
  f.spills_to_global = t.context_spills_global;
  f.spill_failures = t.context_spill_failures;
  f.spilled_bytes = t.spill.bytes_in_use;
  f.thread_to_global = t.fallbacks;
  f.refused = t.refused;
  f.remote_received = t.remote_received;
  f.bytes_in_use = detail::lcore_bytes_in_use(*h);
  // Each part's own peak, summed: an upper bound of the lcore's peak.
  f.peak_bytes = t.small.peak_bytes + t.medium.peak_bytes + t.spill.peak_bytes + flow_peak;
  return f;
}

SocketFigures socket_figures(unsigned socket_id) noexcept {
  SocketFigures f;
  if (socket_id >= kMaxSockets) return f;
  detail::LcoreRuntime& rt = detail::lcore_runtime();
  const detail::SocketHeap* s = rt.sockets[socket_id].load(std::memory_order_acquire);
  if (s == nullptr) return f;
  f.present = true;
  f.memory = memory_of(s->region);
  f.page_size = s->region.page_size();
  f.region_bytes = s->region.bytes();
  f.segment_bytes = s->segments.bytes_out();
  f.peak_segment_bytes = s->segments.peak_bytes_out();
  f.heap = s->heap.stats();
  for (const auto& l : rt.lcores) {
    const LcoreHeap* h = l.load(std::memory_order_acquire);
    if (h != nullptr && h->socket == socket_id) ++f.lcores;
  }
  return f;
}

}  // namespace ctxalloc::dpdk
