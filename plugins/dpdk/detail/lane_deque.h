// LaneDeque: one lcore's stack of free mempool objects, which other lcores may steal
// from. A bounded Chase-Lev work-stealing deque (Chase & Lev 2005; the C11 orderings of
// Le et al. 2013) that moves objects in bulk:
//
//  - the owner pushes and takes at the bottom. push() is plain stores and one release
//    store (no atomic read-modify-write); take() is one `xchg` (the claim must be
//    visible before the owner reads `top`) and plain loads. Both touch only the owner's
//    cache lines while nobody steals.
//  - thieves take up to kMaxSteal objects from the top with one CAS.
//
// Why the owner's bulk take is safe without a CAS: it lowers `bottom` to b, then reads
// top t. If t + kMaxSteal <= b, any thief that can still succeed CASes from t and
// takes at most kMaxSteal objects, all below b; a thief that starts later sees the new
// bottom (the xchg and the seq_cst loads order it). Otherwise the deque is nearly empty
// and the owner claims everything left with a CAS on top, keeping what it needs and
// pushing back the rest (fewer than kMaxSteal objects).
//
// Thieves read slots with relaxed atomic loads; the owner copies in bulk (see copy_in):
// a thief may read a slot the owner is rewriting, but then its CAS fails and it
// discards what it read.
//
// No DPDK here: tests/unit/lane_deque_test.cc drives it under ThreadSanitizer.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ctxalloc/core/sanitizers.h"

namespace ctxalloc::dpdk::detail {

/// No owner data (see BasicLaneDeque).
struct NoOwnerData {};

/// OwnerData: up to 32 bytes the owner keeps with its hot fields, on the cache line that
/// every push and take touches anyway (the mempool keeps its counters there).
template <class OwnerData = NoOwnerData>
class BasicLaneDeque {
 public:
  /// The most objects one steal() moves; the owner's fast path keeps this many below it.
  static constexpr unsigned kMaxSteal = 32;

  /// A deque over `slots` (capacity entries, a power of two), which it does not own.
  BasicLaneDeque(void** slots, std::uint32_t capacity) noexcept
      : slots_(slots), mask_(capacity - 1) {}

  BasicLaneDeque(const BasicLaneDeque&) = delete;
  BasicLaneDeque& operator=(const BasicLaneDeque&) = delete;

  /// The owner's data, on its cache line.
  OwnerData& owner() noexcept { return owner_; }
  const OwnerData& owner() const noexcept { return owner_; }

  /// Owner only. Pushes n objects, or none when they would not fit (returns false).
  bool push(void* const* objs, unsigned n) noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // limit_ = top + capacity as last read: top only grows, so it is a safe bound, and
    // top's cache line (which thieves write) is read only when the bound is reached.
    if (b + static_cast<std::int64_t>(n) > limit_) [[unlikely]] {
      limit_ = top_.load(std::memory_order_acquire) + static_cast<std::int64_t>(mask_ + 1);
      if (b + static_cast<std::int64_t>(n) > limit_) return false;
    }
    copy_in(b, objs, n);
    bottom_.store(b + n, std::memory_order_release);
    return true;
  }

  /// Owner only. push() of one object, without the burst copy's wrap-around handling:
  /// the single put of an mbuf free without a cache.
  bool push_one(void* obj) noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    if (b + 1 > limit_) [[unlikely]] {  // as in push()
      limit_ = top_.load(std::memory_order_acquire) + static_cast<std::int64_t>(mask_ + 1);
      if (b + 1 > limit_) return false;
    }
#if defined(CTXALLOC_TSAN)
    store_slot(b, obj);
#else
    slots_[static_cast<std::uint64_t>(b) & mask_] = obj;
#endif
    bottom_.store(b + 1, std::memory_order_release);
    return true;
  }

  /// Owner only. Takes n objects, or none: on 0, `out` is untouched (DPDK's mempool
  /// cache relies on that: a failed refill must leave its array as it was).
  unsigned take(void** out, unsigned n) noexcept {
    if (n == 0) return 0;
    const std::int64_t b0 = bottom_.load(std::memory_order_relaxed);
    const std::int64_t b = b0 - n;
    bottom_.exchange(b, std::memory_order_seq_cst);
    const std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t + static_cast<std::int64_t>(kMaxSteal) <= b) [[likely]] {
      copy_out(out, b, n);
      return n;
    }
    if (b < t) {
      // Fewer than n: put bottom back, which is a push of objects nobody else took.
      bottom_.store(b0, std::memory_order_release);
      return 0;
    }
    return claim_rest(out, n, b0, b, t, false);
  }

  /// Owner only. take() of one object; `*out` is untouched when it returns false.
  bool take_one(void** out) noexcept {
    const std::int64_t b0 = bottom_.load(std::memory_order_relaxed);
    const std::int64_t b = b0 - 1;
    bottom_.exchange(b, std::memory_order_seq_cst);
    const std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t + static_cast<std::int64_t>(kMaxSteal) <= b) [[likely]] {
      *out = load_slot(b);
      return true;
    }
    return take_one_nearly_empty(out, b0, b, t);
  }

  /// Owner only. Takes up to n objects (all n unless fewer are left); returns how many.
  unsigned take_some(void** out, unsigned n) noexcept {
    if (n == 0) return 0;
    const std::int64_t b0 = bottom_.load(std::memory_order_relaxed);
    const std::int64_t b = b0 - n;
    bottom_.exchange(b, std::memory_order_seq_cst);
    const std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t + static_cast<std::int64_t>(kMaxSteal) <= b) [[likely]] {
      copy_out(out, b, n);
      return n;
    }
    return claim_rest(out, n, b0, b, t, true);
  }

  /// Any thread but the owner. Takes up to min(n, kMaxSteal) objects from the top;
  /// returns 0 when the deque is empty or another thread won the race.
  unsigned steal(void** out, unsigned n) noexcept {
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return 0;
    const auto k = static_cast<unsigned>(
        std::min<std::int64_t>({b - t, static_cast<std::int64_t>(n), kMaxSteal}));
    for (unsigned i = 0; i < k; ++i)
      out[i] = load_slot(t + i);
    if (!top_.compare_exchange_strong(t, t + k, std::memory_order_seq_cst,
                                      std::memory_order_relaxed))
      return 0;
    return k;
  }

  /// Objects held; exact for the owner, a snapshot for others.
  std::uint32_t size() const noexcept {
    const std::int64_t t = top_.load(std::memory_order_acquire);
    const std::int64_t b = bottom_.load(std::memory_order_acquire);
    return b > t ? static_cast<std::uint32_t>(b - t) : 0;
  }

  std::uint32_t capacity() const noexcept {
    return mask_ + 1;
  }

  /// For check_invariants and tests (quiescent deque only): calls fn(obj) for each held
  /// object, bottom first; returns false when top > bottom.
  template <class Fn>
  bool for_each(Fn&& fn) const {
    const std::int64_t t = top_.load(std::memory_order_acquire);
    const std::int64_t b = bottom_.load(std::memory_order_acquire);
    if (t > b) return false;
    for (std::int64_t i = b - 1; i >= t; --i)
      fn(load_slot(i));
    return true;
  }

  /// For tests that corrupt the deque on purpose (quiescent deque only).
  void overwrite_for_test(std::uint32_t from_top, void* obj) noexcept {
    store_slot(top_.load(std::memory_order_relaxed) + from_top, obj);
  }

 private:
  [[gnu::noinline]] bool take_one_nearly_empty(void** out, std::int64_t b0, std::int64_t b,
                                               std::int64_t t) noexcept {
    if (b < t) {
      bottom_.store(b0, std::memory_order_release);  // empty: as in take()
      return false;
    }
    return claim_rest(out, 1, b0, b, t, false) == 1;
  }

  // The deque is nearly empty (fewer than kMaxSteal would stay): claims everything left,
  // [t, b0), with a CAS on top that races the thieves; keeps n and pushes the rest back
  // (fewer than kMaxSteal). With fewer than n claimed: hands them out if `partial`, else
  // pushes them all back and returns 0.
  unsigned claim_rest(void** out, unsigned n, std::int64_t b0, std::int64_t b, std::int64_t t,
                      bool partial) noexcept {
    while (t < b0 && !top_.compare_exchange_weak(t, b0, std::memory_order_seq_cst,
                                                 std::memory_order_seq_cst)) {
    }
    // Empty now (top == bottom == b0): thieves find nothing.
    bottom_.store(b0, std::memory_order_relaxed);
    if (t >= b0) return 0;
    const auto claimed = static_cast<unsigned>(b0 - t);
    if (claimed < n) {
      if (partial) {
        copy_out(out, t, claimed);
        return claimed;
      }
      // Back onto the deque, slot by slot upwards: slot (b0 + i) can only alias a source
      // slot t + j with j < i, already copied (the offset b0 - t is below the capacity).
      for (unsigned i = 0; i < claimed; ++i)
        store_slot(b0 + i, load_slot(t + i));
      bottom_.store(b0 + claimed, std::memory_order_release);
      return 0;
    }
    // [b, b0) to the caller, [t, b) (fewer than kMaxSteal) back onto the deque.
    void* extra[kMaxSteal];
    const auto e = static_cast<unsigned>(b - t);
    copy_out(extra, t, e);
    copy_out(out, b, n);
    push(extra, e);  // fits: it held them a moment ago
    return n;
  }

  // The owner's bulk copies: at most two memcpy (the slots wrap around). The owner is the
  // only writer of slots, so its reads race with nothing. Its writes can race with a
  // thief's read only when that thief's CAS is bound to fail and it discards what it read
  // (aligned 8-byte stores are single-copy atomic on x86-64). ThreadSanitizer builds copy
  // slot by slot with atomic accesses instead, so that the tool sees every one.
  void copy_out(void** out, std::int64_t from, unsigned n) const noexcept {
#if defined(CTXALLOC_TSAN)
    for (unsigned i = 0; i < n; ++i)
      out[i] = load_slot(from + i);
#else
    const std::uint64_t start = static_cast<std::uint64_t>(from) & mask_;
    if (start + n <= mask_ + 1) [[likely]] {
      copy(out, slots_ + start, n);
      return;
    }
    const std::uint64_t first = mask_ + 1 - start;
    copy(out, slots_ + start, first);
    copy(out + first, slots_, n - first);
#endif
  }

  void copy_in(std::int64_t to, void* const* objs, unsigned n) noexcept {
#if defined(CTXALLOC_TSAN)
    for (unsigned i = 0; i < n; ++i)
      store_slot(to + i, objs[i]);
#else
    const std::uint64_t start = static_cast<std::uint64_t>(to) & mask_;
    if (start + n <= mask_ + 1) [[likely]] {
      copy(slots_ + start, objs, n);
      return;
    }
    const std::uint64_t first = mask_ + 1 - start;
    copy(slots_ + start, objs, first);
    copy(slots_, objs + first, n - first);
#endif
  }

  // Inline, two pointers per SSE move: for bursts of up to a few dozen pointers a libc
  // memcpy call costs more than the copy, and a call on the fast path makes the compiler
  // save registers on every get and put.
  static void copy(void** to, void* const* from, std::uint64_t n) noexcept {
#if defined(__SSE2__)
    auto move2 = [&](std::uint64_t i) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(to + i),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i)));
    };
    std::uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      move2(i);
      move2(i + 2);
      move2(i + 4);
      move2(i + 6);
    }
    for (; i + 2 <= n; i += 2)
      move2(i);
    if (i < n) to[i] = from[i];
#else
    std::memcpy(to, from, n * sizeof(void*));
#endif
  }

  void* load_slot(std::int64_t i) const noexcept {
    return __atomic_load_n(&slots_[static_cast<std::uint64_t>(i) & mask_], __ATOMIC_RELAXED);
  }
  void store_slot(std::int64_t i, void* v) noexcept {
    __atomic_store_n(&slots_[static_cast<std::uint64_t>(i) & mask_], v, __ATOMIC_RELAXED);
  }

  // top_ is written by thieves only: its own cache line, so that the owner's line
  // (bottom_, slots_, mask_) stays private while nobody steals.
  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  void** const slots_;
  const std::uint64_t mask_;
  std::int64_t limit_ = static_cast<std::int64_t>(mask_ + 1);  // owner only (see push)
  [[no_unique_address]] OwnerData owner_{};
};

using LaneDeque = BasicLaneDeque<>;

}  // namespace ctxalloc::dpdk::detail
