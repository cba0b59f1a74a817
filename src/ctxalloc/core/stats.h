// Usage statistics. Each allocator owns one StatsCounters and is its only writer; other
// threads (telemetry, tests) may read at any time. Counters are never updated with a
// locked read-modify-write: the fast path pays one plain `add`.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "ctxalloc/core/sanitizers.h"

namespace ctxalloc {

/// A snapshot of an allocator's counters.
struct Stats {
  std::uint64_t allocations = 0;    ///< successful allocate / allocate_zeroed calls
  std::uint64_t deallocations = 0;  ///< deallocate calls of real (non zero-size) blocks
  std::uint64_t grows = 0;          ///< successful grow calls
  std::uint64_t shrinks = 0;        ///< successful shrink calls
  std::uint64_t failures = 0;       ///< requests refused (no memory, bad layout, must-not-move)
  std::uint64_t misuses = 0;        ///< double frees, foreign pointers, ... (counted, see misuse.h)
  std::uint64_t bytes_in_use = 0;   ///< bytes of the allocator's memory held by live blocks
  std::uint64_t peak_bytes = 0;     ///< highest bytes_in_use seen
  std::uint64_t capacity = 0;       ///< bytes the allocator can hand out in all (0: unbounded)

  /// Allocations minus deallocations: blocks still live (a balanced sequence gives 0).
  std::uint64_t live_blocks() const noexcept { return allocations - deallocations; }

  Stats& operator+=(const Stats& o) noexcept;
  friend bool operator==(const Stats&, const Stats&) = default;
};

/// One line, for logs and examples: "allocations=3 deallocations=1 ...".
std::string to_string(const Stats& s);

/// A value with one writer and any number of readers on other threads: relaxed loads and
/// stores, which compile to plain moves on x86.
template <class T>
class Relaxed {
 public:
  constexpr Relaxed() noexcept = default;
  constexpr explicit Relaxed(T v) noexcept : v_(v) {}
  T get() const noexcept { return v_.load(std::memory_order_relaxed); }
  void set(T v) noexcept { v_.store(v, std::memory_order_relaxed); }

 private:
  std::atomic<T> v_{};
};

/// A counter with one writer and any number of readers. On x86-64 add() is a single
/// `add` to memory, without a lock prefix: the owner is the only writer, and aligned
/// 8-byte stores are atomic, so readers see the old or the new value (GCC would emit
/// load, add, store for the relaxed atomic form). ThreadSanitizer builds use the atomic
/// form so that the tool sees every write.
class Counter {
 public:
  std::uint64_t get() const noexcept { return __atomic_load_n(&v_, __ATOMIC_RELAXED); }
  void set(std::uint64_t n) noexcept { __atomic_store_n(&v_, n, __ATOMIC_RELAXED); }
  void add(std::uint64_t n) noexcept {
#if defined(__x86_64__) && !defined(CTXALLOC_TSAN)
    asm("addq %1, %0" : "+m"(v_) : "er"(n));
#else
    set(get() + n);
#endif
  }
  void sub(std::uint64_t n) noexcept {
#if defined(__x86_64__) && !defined(CTXALLOC_TSAN)
    asm("subq %1, %0" : "+m"(v_) : "er"(n));
#else
    set(get() - n);
#endif
  }
  void raise_to(std::uint64_t n) noexcept {
    if (n > get()) set(n);
  }

 private:
  alignas(8) std::uint64_t v_ = 0;
};

/// The counters every allocator keeps. Allocators that can derive bytes in use from
/// their own state (the bump allocator) skip the byte counters on the fast path.
struct StatsCounters {
  Counter allocations;
  Counter deallocations;
  Counter grows;
  Counter shrinks;
  Counter failures;
  Counter misuses;
  Counter bytes_in_use;
  Counter peak_bytes;

  void on_allocate(std::uint64_t bytes) noexcept {
    allocations.add(1);
    bytes_in_use.add(bytes);
    peak_bytes.raise_to(bytes_in_use.get());
  }
  void on_deallocate(std::uint64_t bytes) noexcept {
    deallocations.add(1);
    bytes_in_use.sub(bytes);
  }
  void on_resize(std::uint64_t old_bytes, std::uint64_t new_bytes) noexcept {
    if (new_bytes >= old_bytes) {
      grows.add(1);
      bytes_in_use.add(new_bytes - old_bytes);
      peak_bytes.raise_to(bytes_in_use.get());
    } else {
      shrinks.add(1);
      bytes_in_use.sub(old_bytes - new_bytes);
    }
  }

  /// The counters as a Stats (capacity left 0 for the allocator to fill in).
  Stats snapshot() const noexcept {
    Stats s;
    s.allocations = allocations.get();
    s.deallocations = deallocations.get();
    s.grows = grows.get();
    s.shrinks = shrinks.get();
    s.failures = failures.get();
    s.misuses = misuses.get();
    s.bytes_in_use = bytes_in_use.get();
    s.peak_bytes = peak_bytes.get();
    return s;
  }
};

}  // namespace ctxalloc
