// SharedStack: the locked stack of a ctxalloc mempool. Threads without an lcore id use
// it for every get and put; lcores fall back to it when their own lane is empty (get)
// or full (put); objects the pool starts with are placed here, so that the first
// lcore to ask takes them in bulk instead of stealing them one lane at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

namespace ctxalloc::dpdk::detail {

/// A test-and-test-and-set spin lock: held for a memcpy of at most a burst, so spinning
/// is cheaper than sleeping. (DPDK's rte_spinlock is the same; this one keeps the header
/// free of DPDK for the unit tests.)
class SpinLock {
 public:
  void lock() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed))
        __builtin_ia32_pause();
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

class SharedStack {
 public:
  /// A stack over `slots` (capacity entries), which it does not own.
  SharedStack(void** slots, std::uint32_t capacity) noexcept : slots_(slots), capacity_(capacity) {}

  /// Pushes up to n objects; returns how many fit.
  unsigned push(void* const* objs, unsigned n) noexcept {
    lock_.lock();
    const unsigned room = capacity_ - count_.load(std::memory_order_relaxed);
    const unsigned k = n < room ? n : room;
    const std::uint32_t c = count_.load(std::memory_order_relaxed);
    std::memcpy(slots_ + c, objs, k * sizeof(void*));
    count_.store(c + k, std::memory_order_relaxed);
    lock_.unlock();
    return k;
  }

  /// Pops up to n objects (the most recently pushed first); returns how many.
  unsigned pop(void** out, unsigned n) noexcept {
    lock_.lock();
    const std::uint32_t c = count_.load(std::memory_order_relaxed);
    const unsigned k = n < c ? n : c;
    std::memcpy(out, slots_ + (c - k), k * sizeof(void*));
    count_.store(c - k, std::memory_order_relaxed);
    lock_.unlock();
    return k;
  }

  /// Pops exactly n objects or none.
  bool pop_all_or_nothing(void** out, unsigned n) noexcept {
    lock_.lock();
    const std::uint32_t c = count_.load(std::memory_order_relaxed);
    const bool ok = n <= c;
    if (ok) {
      std::memcpy(out, slots_ + (c - n), n * sizeof(void*));
      count_.store(c - n, std::memory_order_relaxed);
    }
    lock_.unlock();
    return ok;
  }

  /// Objects held (a snapshot from other threads).
  std::uint32_t size() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::uint32_t capacity() const noexcept { return capacity_; }

  /// Quiescent stack only: calls fn(obj) for every object.
  template <class Fn>
  void for_each(Fn&& fn) const {
    const std::uint32_t c = count_.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < c; ++i)
      fn(slots_[i]);
  }

  /// For tests that corrupt the stack on purpose (quiescent stack only).
  void overwrite_for_test(std::uint32_t i, void* obj) noexcept { slots_[i] = obj; }

  /// Objects got and put, and failed gets, by threads without an lcore id (several
  /// threads: atomic adds, off the lcores' path).
  std::atomic<std::uint64_t> gets{0}, puts{0}, failures{0};

 private:
  alignas(64) SpinLock lock_;
  std::atomic<std::uint32_t> count_{0};
  void** const slots_;
  const std::uint32_t capacity_;
};

}  // namespace ctxalloc::dpdk::detail
