// Workloads of the tree suite, shared by the Google Benchmark binaries (one per malloc
// peer, bench/tree_bench.cc) and the callgrind driver (bench/callgrind_tree.cc), written
// once over an "API" (alloc(size) / free(ptr, size)) so that every peer runs the same loop:
// - pairs:      allocate 64 B and free it again;
// - random:     100,000 live blocks of random sizes (16 B .. 64 KiB, fixed seed); each
//               step frees a random one and allocates a new random size in its place;
// - fragmented: 10,000 free 64 B holes between live 64 B blocks, then 200 B requests
//               (allocate and free), which no hole can serve.
#pragma once

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <vector>

#include "bench_util.h"
#include "ctxalloc/allocators/tree_allocator.h"
#include "ctxalloc/switchable/global_heap.h"
#include "ctxalloc/switchable/segment_source.h"

namespace ctxalloc::bench {

inline constexpr std::size_t kPairSize = 64;
inline constexpr std::size_t kRandomLive = 100'000;
inline constexpr std::size_t kHoles = 10'000;
inline constexpr std::size_t kHoleSize = 64;
inline constexpr std::size_t kFragmentedRequest = 200;
inline constexpr std::uint64_t kSeed = 0x5EED'7EE5;

[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "benchmark: %s\n", what);
  std::exit(1);
}

/// xorshift64*: a few instructions, the same for every peer.
struct Rng {
  std::uint64_t s = kSeed;
  std::uint64_t next() noexcept {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
};

/// Sizes from 16 B to 64 KiB: a power-of-two band [2^e, 2^(e+1)) for e = 4..15, each
/// band 1/sqrt(2) as likely as the one below, then uniform inside the band. Mean about
/// 1.5 KiB, so 100,000 live blocks take ~150 MB (rte_malloc gets 512 MB).
class SizeDist {
 public:
  SizeDist() {
    double w[kBands];
    double total = 0;
    for (unsigned b = 0; b < kBands; ++b) {
      w[b] = 1.0;
      for (unsigned k = 0; k < b; ++k)
        w[b] *= 0.70710678118654752;
      total += w[b];
    }
    unsigned at = 0;
    double cum = 0;
    for (unsigned b = 0; b < kBands; ++b) {
      cum += w[b] / total;
      const auto until = b + 1 == kBands ? kTable : static_cast<unsigned>(cum * kTable);
      while (at < until)
        band_[at++] = static_cast<std::uint8_t>(4 + b);
    }
  }
  std::size_t operator()(Rng& rng) const noexcept {
    const std::uint64_t r = rng.next();
    const unsigned e = band_[r >> 52];  // top 12 bits pick the band
    return (std::size_t{1} << e) + ((r >> 8) & ((std::size_t{1} << e) - 1));
  }

 private:
  static constexpr unsigned kBands = 12;
  static constexpr unsigned kTable = 4096;
  std::uint8_t band_[kTable];
};

// ------------------------------------------------------------------------ the APIs

/// A TreeAllocator over one large region (an anonymous, lazily committed mapping, so
/// pages count in RSS only once touched).
/// The lockable GlobalHeap (a tree behind a mutex, growing by 4 MiB chunks from its
/// segment source, large requests mapped): every call takes its lock, uncontended here.
struct GlobalHeapApi {
  void* alloc(std::size_t n) noexcept { return heap.allocate(Layout{n, 16}).ptr; }
  void free(void* p, std::size_t n) noexcept {
    heap.deallocate(Block{static_cast<std::byte*>(p), n}, 16);
  }
  SegmentSource segments;
  GlobalHeap heap{segments};
};

struct TreeApi {
  explicit TreeApi(std::size_t region_bytes = std::size_t{2} << 30) : bytes(region_bytes) {
    void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) die("mmap of the tree region failed");
    region = static_cast<std::byte*>(m);
    if (!tree.add_region(Block{region, bytes}, /*known_zero=*/true)) die("add_region failed");
  }
  ~TreeApi() { ::munmap(region, bytes); }
  TreeApi(const TreeApi&) = delete;
  TreeApi& operator=(const TreeApi&) = delete;

  void* alloc(std::size_t n) noexcept { return tree.allocate(Layout{n, 16}).ptr; }
  void free(void* p, std::size_t n) noexcept {
    tree.deallocate(Block{static_cast<std::byte*>(p), n}, 16);
  }

  std::size_t bytes;
  std::byte* region;
  TreeAllocator tree;
};

/// The process's malloc (glibc, mimalloc, jemalloc or tcmalloc, by the binary).
struct MallocApi {
  void* alloc(std::size_t n) noexcept { return std::malloc(n); }
  void free(void* p, std::size_t) noexcept { std::free(p); }
};

/// std::pmr::unsynchronized_pool_resource over new/delete (the process's malloc).
struct PmrApi {
  std::pmr::unsynchronized_pool_resource pool;
  void* alloc(std::size_t n) { return pool.allocate(n, 16); }
  void free(void* p, std::size_t n) { pool.deallocate(p, n, 16); }
};

// ------------------------------------------------------------------------ workloads

template <class Api>
inline void pairs_loop(Api& api, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    void* p = api.alloc(kPairSize);
    keep(p);
    api.free(p, kPairSize);
  }
}

/// 100,000 live blocks of random sizes; step() replaces a random one.
template <class Api>
class RandomWorkload {
 public:
  /// touch_all: write every byte of every block (for RSS-based footprints); otherwise
  /// only the first 64 bytes, as a cheap stand-in for a user (for timings).
  explicit RandomWorkload(Api& api, bool touch_all = false)
      : api_(api), ptr_(kRandomLive), size_(kRandomLive), touch_all_(touch_all) {}
  ~RandomWorkload() {
    for (std::size_t i = 0; i < kRandomLive; ++i)
      if (ptr_[i] != nullptr) api_.free(ptr_[i], size_[i]);
  }

  void fill() {
    for (std::size_t i = 0; i < kRandomLive; ++i)
      place(i, dist_(rng_));
  }

  /// n replacements: free a random live block, allocate a new random size.
  void steady(std::uint64_t n) {
    for (std::uint64_t k = 0; k < n; ++k) {
      const std::size_t i = rng_.next() % kRandomLive;
      api_.free(ptr_[i], size_[i]);
      live_ -= size_[i];
      place(i, dist_(rng_));
    }
  }

  std::uint64_t live_bytes() const { return live_; }
  std::uint64_t peak_live_bytes() const { return peak_; }

 private:
  void place(std::size_t i, std::size_t s) {
    void* p = api_.alloc(s);
    if (p == nullptr) die("random workload: allocation failed");
    std::memset(p, 1, touch_all_ || s < 64 ? s : 64);
    ptr_[i] = p;
    size_[i] = static_cast<std::uint32_t>(s);
    live_ += s;
    if (live_ > peak_) peak_ = live_;
  }

  Api& api_;
  std::vector<void*> ptr_;
  std::vector<std::uint32_t> size_;
  Rng rng_;
  SizeDist dist_;
  bool touch_all_;
  std::uint64_t live_ = 0;
  std::uint64_t peak_ = 0;
};

/// 10,000 free 64 B holes kept apart by live 64 B blocks; then 200 B requests.
template <class Api>
class FragmentedWorkload {
 public:
  explicit FragmentedWorkload(Api& api) : api_(api), keepers_(kHoles) {
    std::vector<void*> holes(kHoles);
    for (std::size_t i = 0; i < kHoles; ++i) {
      holes[i] = api_.alloc(kHoleSize);
      keepers_[i] = api_.alloc(kHoleSize);
      if (holes[i] == nullptr || keepers_[i] == nullptr) die("fragmented: allocation failed");
    }
    for (void* h : holes)
      api_.free(h, kHoleSize);
  }
  ~FragmentedWorkload() {
    for (void* k : keepers_)
      api_.free(k, kHoleSize);
  }

  void loop(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      void* p = api_.alloc(kFragmentedRequest);
      keep(p);
      api_.free(p, kFragmentedRequest);
    }
  }

 private:
  Api& api_;
  std::vector<void*> keepers_;
};

// ------------------------------------------------------------------------ fragmentation

/// A field of /proc/self/status in bytes (VmRSS, VmHWM), or 0.
inline std::uint64_t proc_status_bytes(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  std::uint64_t kb = 0;
  const std::size_t len = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, len) == 0 && line[len] == ':') {
      kb = std::strtoull(line + len + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kb * 1024;
}

struct FragmentationResult {
  std::uint64_t peak_live = 0;   // peak sum of live requested bytes
  std::uint64_t peak_taken = 0;  // peak RSS minus RSS before the workload
};

/// Runs the random workload (fill, then `steps` replacements) and measures the peak
/// memory taken from the system (VmHWM - VmRSS before) against the peak live bytes.
/// Run it in a fresh process, once: VmHWM is a process-wide high-water mark.
template <class Api>
FragmentationResult measure_fragmentation(Api& api, std::uint64_t steps) {
  RandomWorkload<Api> w(api, /*touch_all=*/true);  // its slot arrays are allocated first
  const std::uint64_t before = proc_status_bytes("VmRSS");
  w.fill();
  w.steady(steps);
  FragmentationResult r;
  r.peak_live = w.peak_live_bytes();
  r.peak_taken = proc_status_bytes("VmHWM") - before;
  return r;
}

}  // namespace ctxalloc::bench
