// Workloads of the switchable suite: small (16-256 B) allocate+free through the
// switchable allocator in thread mode, or through `malloc`/`free` (whichever malloc the
// binary was linked with), single-threaded and as a producer/consumer pair.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
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

}  // namespace ctxalloc::bench
