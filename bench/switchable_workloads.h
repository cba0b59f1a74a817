// Workloads of the switchable suite: allocate+free through the switchable allocator in
// thread mode, or through `malloc`/`free` (whichever malloc the binary was linked with),
// or a std::pmr resource: small pairs and batches, per-packet buffers (64-2048 B freed
// soon after), per-flow lifecycles, a producer/consumer pair and thread churn
// (larson-like).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory_resource>
#include <semaphore>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc::bench {

/// The sizes cycle through 16, 32, ... 256 bytes.
inline std::size_t small_size(std::uint64_t i) {
  return 16 + (i & 15) * 16;
}

struct CtxallocApi {
  static void* alloc(std::size_t n) noexcept { return ctxalloc::allocate(n); }
  static void release(void* p) noexcept { ctxalloc::deallocate(p); }
};
struct MallocApi {
  static void* alloc(std::size_t n) noexcept { return std::malloc(n); }
  static void release(void* p) noexcept { std::free(p); }
};

/// A pseudo-random sequence (xorshift64), the same for every allocator measured.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept : x_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint64_t next() noexcept {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_;
  }

 private:
  std::uint64_t x_;
};

/// Packet buffer sizes, 64 to 2048 B, mostly small as on a real link: picked by the low
/// bits of a pseudo-random number.
inline std::size_t packet_size(std::uint64_t r) {
  static constexpr std::size_t kSizes[16] = {64,  64,  64,  64,   128,  128,  256,  256,
                                             512, 512, 576, 1024, 1280, 1500, 1518, 2048};
  return kSizes[r & 15];
}

/// Per-packet: n operations on a window of 32 live packet buffers; each operation frees
/// the oldest buffer and allocates a new one (64-2048 B), so a buffer lives 32
/// operations, as a packet does between rx and tx of a burst.
template <class Alloc, class Free>
void packet_loop_with(std::uint64_t n, Alloc alloc, Free release) {
  void* window[32] = {};
  Rng rng(7);
  for (std::uint64_t i = 0; i < n; ++i) {
    void*& slot = window[i & 31];
    if (slot != nullptr) release(slot);
    slot = alloc(packet_size(rng.next()));
    keep(slot);
  }
  for (void* p : window)
    if (p != nullptr) release(p);
}

template <class Api>
void packet_loop(std::uint64_t n) {
  packet_loop_with(n, Api::alloc, Api::release);
}

/// The same on a std::pmr pool resource (sizes are passed back on deallocate).
inline void packet_loop_pmr(std::pmr::memory_resource& r, std::uint64_t n) {
  struct Slot {
    void* p = nullptr;
    std::size_t size = 0;
  };
  Slot window[32];
  Rng rng(7);
  for (std::uint64_t i = 0; i < n; ++i) {
    Slot& slot = window[i & 31];
    if (slot.p != nullptr) r.deallocate(slot.p, slot.size);
    slot.size = packet_size(rng.next());
    slot.p = r.allocate(slot.size);
    keep(slot.p);
  }
  for (Slot& s : window)
    if (s.p != nullptr) r.deallocate(s.p, s.size);
}

/// A flow's objects: 16 allocations of 32-512 B (a flow record, its queue's chunks, a
/// payload copy), all freed when the flow ends.
inline constexpr unsigned kFlowObjects = 16;
inline std::size_t flow_object_size(unsigned i) {
  return 32u << (i & 4);  // 32 B and 512 B, alternating in runs of four
}

/// Per-flow lifecycle through malloc: 16 allocations, then 16 frees. n flows.
template <class Api>
void flow_loop(std::uint64_t n) {
  void* objs[kFlowObjects];
  for (std::uint64_t f = 0; f < n; ++f) {
    for (unsigned i = 0; i < kFlowObjects; ++i) {
      objs[i] = Api::alloc(flow_object_size(i));
      keep(objs[i]);
    }
    for (unsigned i = 0; i < kFlowObjects; ++i)
      Api::release(objs[i]);
  }
}

/// Per-flow lifecycle with a std::pmr::monotonic_buffer_resource per flow (upstream: the
/// default resource, i.e. operator new), released whole when the flow ends.
inline void flow_loop_pmr(std::uint64_t n) {
  for (std::uint64_t f = 0; f < n; ++f) {
    std::pmr::monotonic_buffer_resource r(1024);
    for (unsigned i = 0; i < kFlowObjects; ++i)
      keep(r.allocate(flow_object_size(i)));
  }
}

/// Per-flow lifecycle with a ctxalloc context: made (a ready 16 KiB bump context of the
/// thread's arena), made current, 16 allocations through the switchable API, released
/// whole.
inline void flow_loop_context(std::uint64_t n) {
  for (std::uint64_t f = 0; f < n; ++f) {
    Context* c = Context::create(Lifetime::short_lived, 16 << 10);
    {
      ContextScope scope(*c);
      for (unsigned i = 0; i < kFlowObjects; ++i)
        keep(ctxalloc::allocate(flow_object_size(i)));
    }
    c->release_all();
  }
}

/// n allocate+free pairs, each block freed at once (the page stays warm).
template <class Api>
void pairs_loop(std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p = Api::alloc(small_size(i));
    keep(p);
    Api::release(p);
  }
}

/// n allocations and frees in batches of 64: 64 allocations, then the 64 frees.
template <class Api>
void batch_loop(std::uint64_t n) {
  void* ps[64];
  for (std::uint64_t i = 0; i < n / 64; ++i) {
    for (unsigned j = 0; j < 64; ++j) {
      ps[j] = Api::alloc(small_size(j));
      keep(ps[j]);
    }
    for (unsigned j = 0; j < 64; ++j)
      Api::release(ps[j]);
  }
}

/// n context installs and restores (a ContextScope entered and left), the cost a flow
/// pays per packet to make its context current.
inline void context_scope_loop(Context& c, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    ContextScope scope(c);
    keep(detail::t_state.context);
  }
}

/// n allocate+free pairs of 16-256 B in a context made current (a flow's per-packet
/// work), through the switchable API: the context's allocator behind the mode test.
inline void context_pairs_loop(Context& c, std::uint64_t n) {
  ContextScope scope(c);
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p = ctxalloc::allocate(small_size(i));
    keep(p);
    ctxalloc::deallocate(p);
  }
}

/// A single-producer single-consumer ring of pointers: the hand-over between an rx and a
/// tx lcore, the same for every allocator measured.
class PointerRing {
 public:
  static constexpr std::size_t kSize = 4096;
  bool push(void* p) noexcept {
    const std::size_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_.load(std::memory_order_acquire) == kSize) return false;
    slots_[t & (kSize - 1)] = p;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  void* pop() noexcept {
    const std::size_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return nullptr;
    void* p = slots_[h & (kSize - 1)];
    head_.store(h + 1, std::memory_order_release);
    return p;
  }

 private:
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) void* slots_[kSize];
};

/// The producer allocates n blocks and passes them on; the consumer frees them.
/// `setup` runs first on each thread (ctxalloc: thread mode).
template <class Api, class Setup>
void producer_consumer(std::uint64_t n, Setup setup,
                       void (*producer_fn)(PointerRing&, std::uint64_t),
                       void (*consumer_fn)(PointerRing&, std::uint64_t)) {
  PointerRing ring;
  std::thread consumer([&] {
    setup();
    consumer_fn(ring, n);
  });
  setup();
  producer_fn(ring, n);
  consumer.join();
}

template <class Api>
void produce(PointerRing& ring, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p = Api::alloc(small_size(i));
    keep(p);
    while (!ring.push(p))
      std::this_thread::yield();
  }
}

template <class Api>
void consume(PointerRing& ring, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n;) {
    void* p = ring.pop();
    if (p == nullptr) {
      std::this_thread::yield();
      continue;
    }
    Api::release(p);
    ++i;
  }
}

/// The same hand-over in lock-step, for instruction counts: the producer allocates a
/// chunk of blocks and sleeps on a semaphore while the consumer frees them, so neither
/// thread ever spins (spinning would make the count depend on the scheduling) while every
/// free is still a free from another thread. The semaphores cost a few dozen
/// instructions per chunk of 1,000.
template <class Api, class Setup>
void producer_consumer_lockstep(std::uint64_t n, Setup setup,
                                void (*produce_chunk)(void**, std::uint64_t, std::uint64_t),
                                void (*consume_chunk)(void**, std::uint64_t)) {
  constexpr std::uint64_t kChunk = 1000;
  std::vector<void*> chunk(kChunk);
  std::binary_semaphore full(0), empty(1);
  std::thread consumer([&] {
    setup();
    for (std::uint64_t done = 0; done < n; done += kChunk) {
      full.acquire();
      consume_chunk(chunk.data(), n - done < kChunk ? n - done : kChunk);
      empty.release();
    }
  });
  setup();
  for (std::uint64_t done = 0; done < n; done += kChunk) {
    empty.acquire();
    produce_chunk(chunk.data(), done, n - done < kChunk ? n - done : kChunk);
    full.release();
  }
  consumer.join();
}

template <class Api>
void produce_chunk(void** out, std::uint64_t first, std::uint64_t count) {
  for (std::uint64_t i = 0; i < count; ++i) {
    out[i] = Api::alloc(small_size(first + i));
    keep(out[i]);
  }
}

template <class Api>
void consume_chunk(void** in, std::uint64_t count) {
  for (std::uint64_t i = 0; i < count; ++i)
    Api::release(in[i]);
}

/// Thread churn, larson-like: `rounds` rounds of two threads; each thread takes over a
/// table of 1,000 blocks left by the previous round's thread (so its frees are frees of
/// blocks another, exited thread allocated), replaces `ops` random entries by blocks of
/// 16-1024 B and exits. Thread creation is part of the cost, as in a server that spawns
/// workers. `setup` runs first on each thread; `worker` is the per-thread loop (a named
/// function, so callgrind can collect it on every thread).
inline constexpr unsigned kLarsonSlots = 1000;
struct LarsonTable {
  void* slots[kLarsonSlots];
};

template <class Api>
void larson_work(LarsonTable& t, std::uint64_t seed, std::uint64_t ops) {
  Rng rng(seed);
  for (std::uint64_t i = 0; i < ops; ++i) {
    const std::uint64_t r = rng.next();
    void*& slot = t.slots[r % kLarsonSlots];
    Api::release(slot);
    slot = Api::alloc(16 + ((r >> 32) & 1008));
    keep(slot);
  }
}

template <class Api, class Setup>
void larson(unsigned rounds, std::uint64_t ops, Setup setup,
            void (*worker)(LarsonTable&, std::uint64_t, std::uint64_t)) {
  LarsonTable tables[2];
  for (LarsonTable& t : tables)
    for (void*& p : t.slots)
      p = Api::alloc(64);
  for (unsigned r = 0; r < rounds; ++r) {
    std::thread a([&] {
      setup();
      worker(tables[0], 2 * r + 1, ops);
    });
    std::thread b([&] {
      setup();
      worker(tables[1], 2 * r + 2, ops);
    });
    a.join();
    b.join();
  }
  for (LarsonTable& t : tables)
    for (void* p : t.slots)
      Api::release(p);
}

}  // namespace ctxalloc::bench
