// The flow mix of the flow-scale benchmark (issue 16, item 5), shared by
// bench/flow_scale_bench.cc (time, page faults, memory) and
// bench/callgrind_flow_contexts.cc (instructions): flows of three kinds drawn from a
// seeded generator, each flow's memory through a Peer (open() a flow handle,
// allocate/free in it, close() it with every block it keeps).
//   short  80%: a 48 B key and a 96 B state, then 2-6 packets each keeping a 40-200 B
//          record until the flow ends;
//   long   18%: key, state, 50-400 packets of 64-512 B records in a rolling window of
//          the last 8;
//   large   2%: as long ones, 100-1000 packets, plus a 16 KiB block at the start.
// A flow that ends is replaced by a new one at once (Driver::packet), so the count of
// live flows stays constant.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>
#include <vector>

#include "ctxalloc/switchable/context.h"

namespace flowmix {

[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "flow mix: %s\n", what);
  std::exit(1);
}

constexpr unsigned kWindow = 8;
constexpr std::size_t kKey = 48, kState = 96, kLargeBlock = 16384, kObject = 256;

enum class Kind : std::uint8_t { short_flow, long_flow, large_flow };

// One live flow: its peer handle, the blocks it keeps (key, state, large block, then the
// records: all of them for a short flow, the last kWindow for the others).
struct Flow {
  void* handle = nullptr;
  std::vector<std::pair<void*, std::uint32_t>> blocks;
  std::uint32_t packets_left = 0, head = 0;  // head: the window's oldest record
  std::size_t asked = 0;
  Kind kind = Kind::short_flow;
};

struct Mix {
  std::mt19937_64 rng;
  explicit Mix(std::uint64_t seed) : rng(seed) {}
  unsigned below(unsigned n) { return static_cast<unsigned>(rng() % n); }
  unsigned between(unsigned lo, unsigned hi) { return lo + below(hi - lo + 1); }
};

// Its steps always inline, so that every peer's loop has the same driver code (the
// callgrind null peer's count is the driver's own for every peer).
template <class Peer>
struct Driver {
  Peer& peer;
  std::size_t asked = 0;

  [[gnu::always_inline]] void* take(Flow& f, std::size_t bytes) {
    void* p = peer.allocate(f.handle, bytes);
    if (p == nullptr) die("allocation refused");
    static_cast<volatile char*>(p)[0] = 1;
    f.asked += bytes;
    asked += bytes;
    return p;
  }
  [[gnu::always_inline]] void open(Flow& f, Mix& mix) {
    const unsigned r = mix.below(100);
    f.kind = r < 80 ? Kind::short_flow : r < 98 ? Kind::long_flow : Kind::large_flow;
    f.packets_left = f.kind == Kind::short_flow  ? mix.between(2, 6)
                     : f.kind == Kind::long_flow ? mix.between(50, 400)
                                                 : mix.between(100, 1000);
    f.head = 0;
    f.asked = 0;
    f.blocks.clear();
    f.handle = peer.open();
    f.blocks.emplace_back(take(f, kKey), kKey);
    f.blocks.emplace_back(take(f, kState), kState);
    if (f.kind == Kind::large_flow) f.blocks.emplace_back(take(f, kLargeBlock), kLargeBlock);
  }
  [[gnu::always_inline]] void close(Flow& f) {
    peer.close(f.handle, f.blocks);
    asked -= f.asked;
    f.handle = nullptr;
  }
  [[gnu::always_inline]] void packet(Flow& f, Mix& mix) {
    if (f.kind == Kind::short_flow) {
      const unsigned s = mix.between(40, 200);
      f.blocks.emplace_back(take(f, s), s);
    } else {
      const unsigned s = mix.between(64, 512);
      const std::size_t fixed = f.kind == Kind::large_flow ? 3 : 2;
      void* p = take(f, s);
      if (f.blocks.size() < fixed + kWindow) {
        f.blocks.emplace_back(p, s);
      } else {
        auto& old = f.blocks[fixed + f.head];
        peer.free(f.handle, old.first, old.second);
        f.asked -= old.second;
        asked -= old.second;
        old = {p, s};
        f.head = (f.head + 1) % kWindow;
      }
    }
    if (--f.packets_left == 0) {
      close(f);
      open(f, mix);
    }
  }
};

// The peers both benchmarks run: a GrowingContext per flow (the calling thread's pool),
// and glibc malloc/free per block.
struct GrowingFlows {
  ctxalloc::FlowChunks& pool = ctxalloc::current_thread_heap()->flow_chunks();
  void* open() {
    ctxalloc::GrowingContext* g = ctxalloc::GrowingContext::create(pool);
    if (g == nullptr) die("growing context refused");
    return g;
  }
  void* allocate(void* h, std::size_t n) {
    return static_cast<ctxalloc::GrowingContext*>(h)->allocate(ctxalloc::Layout{n, 8}).ptr;
  }
  void free(void* h, void* p, std::size_t n) {
    static_cast<ctxalloc::GrowingContext*>(h)->free(p, n);
  }
  void close(void* h, const std::vector<std::pair<void*, std::uint32_t>>&) {
    static_cast<ctxalloc::GrowingContext*>(h)->release();
  }
};

struct MallocFlows {
  void* open() { return nullptr; }
  void* allocate(void*, std::size_t n) { return std::malloc(n); }
  void free(void*, void* p, std::size_t) { std::free(p); }
  void close(void*, const std::vector<std::pair<void*, std::uint32_t>>& blocks) {
    for (auto& b : blocks)
      std::free(b.first);
  }
};

}  // namespace flowmix
