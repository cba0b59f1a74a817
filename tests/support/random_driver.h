// A seeded, reproducible randomized driver for any Allocator: allocate, allocate_zeroed,
// free, grow and shrink with random sizes and alignments, every result checked against
// the ReferenceModel, payloads written and verified, check_invariants() as it goes.
// Allocator-specific expectations come in through a Hooks type (see DefaultHooks).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "ctxalloc/core/allocator.h"
#include "reference_model.h"
#include "test_scale.h"

namespace ctxalloc::testing {

struct DriverOptions {
  std::uint64_t ops = 1'000'000;  // before scaling
  std::uint64_t seed = 1;
  std::size_t max_size = 4096;       // sizes are log-uniform in [1, max_size]
  std::size_t max_align = 4096;      // alignments: powers of two up to this, mostly small
  std::size_t target_live = 256;     // the driver frees more when above, allocates more below
  std::uint64_t check_every = 4096;  // check_invariants() and a full payload scan
  bool exact_bytes = true;           // stats().bytes_in_use == sum of live block sizes
  bool exact_counts = true;          // stats().live_blocks() == live blocks in the model
  bool claims_blocks = true;         // contains() is true for every block handed out
  // One resize in resize_realign_every asks for a new random alignment (0: never): every
  // resize path must honour the alignment it is given, not only the block's first one.
  std::uint64_t resize_realign_every = 4;
  // 0: no cap. Else the driver only frees while this many blocks are live: above
  // target_live allocations still outnumber frees, so an allocator that never fails
  // (malloc) would otherwise pile up blocks without bound.
  std::size_t max_live = 0;
};

struct DriverReport {
  std::uint64_t allocations = 0, frees = 0, grows = 0, shrinks = 0;
  std::uint64_t failed_allocations = 0, failed_resizes = 0, in_place = 0;
};

/// Default expectations. A Hooks type may override any of these (statically).
template <class A>
struct DefaultHooks {
  /// May allocating `layout` fail now, given what the model holds?
  bool failure_allowed(const A& a, const ReferenceModel& m, Layout layout) const {
    const std::uint64_t cap = a.stats().capacity;
    return cap == 0 || m.bytes() + layout.size * 2 + 4096 > cap / 2;
  }
  /// Called after every successful or failed operation, to compare with an oracle.
  void after_allocate(const A&, Layout, Block) {}
  void after_free(const A&, Block) {}
  void after_resize(const A&, Block /*old*/, Layout, Move, Block /*result*/) {}
  /// When an allocation fails, the driver frees half the live blocks to make room. An
  /// allocator that cannot reuse freed memory (bump) sets this: the driver then frees
  /// every block and calls reset().
  static constexpr bool kResetWhenExhausted = false;
  void reset(A&) {}
};

template <class A, class Hooks = DefaultHooks<A>>
class RandomDriver {
 public:
  RandomDriver(A& a, DriverOptions opt, Hooks hooks = Hooks{})
      : a_(a), opt_(opt), hooks_(std::move(hooks)), rng_(opt.seed), start_(a.stats()) {}

  /// Runs the scaled number of operations; returns false (with a gtest failure) on the
  /// first discrepancy.
  bool run() {
    const std::uint64_t n = scaled(opt_.ops);
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!step()) return false;
      if ((i + 1) % opt_.check_every == 0 && !check("periodic")) return false;
    }
    return check("end of run");
  }

  /// Frees every live block in random order and checks the allocator is empty again:
  /// bytes in use and live blocks back to what they were when the driver started (0 for
  /// an allocator of its own), whatever exact_bytes says -- padding, rounding and blocks
  /// freed out of order must all come back.
  bool free_all() {
    while (!model_.empty()) {
      if (!free_one(pick(model_.count()))) return false;
    }
    const Stats s = a_.stats();
    if (s.bytes_in_use != start_.bytes_in_use || s.live_blocks() != start_.live_blocks()) {
      ADD_FAILURE() << "after freeing everything: " << s.bytes_in_use << " bytes in use and "
                    << s.live_blocks() << " live blocks, against " << start_.bytes_in_use << " and "
                    << start_.live_blocks() << " at the start";
      return false;
    }
    return check("after free_all");
  }

  const ReferenceModel& model() const { return model_; }
  const DriverReport& report() const { return report_; }
  Hooks& hooks() { return hooks_; }

 private:
  bool step() {
    const std::size_t live = model_.count();
    const unsigned roll = static_cast<unsigned>(rng_() % 100);
    if (live == 0) return allocate_one();
    if (opt_.max_live != 0 && live >= opt_.max_live) return free_one(choose());
    // Keep the live set near its target: allocations dominate below it, frees above.
    const unsigned alloc_share = live < opt_.target_live ? 55 : 35;
    if (roll < alloc_share) return allocate_one();
    if (roll < alloc_share + 30) return free_one(choose());
    if (roll < alloc_share + 38) return grow_one(choose());
    return shrink_one(choose());
  }

  // Half the time the most recent allocation (the bump allocator's in-place path),
  // otherwise any live block.
  std::size_t choose() {
    if (last_ != nullptr && rng_() % 2 == 0) {
      const std::size_t i = model_.index_of(last_);
      if (i < model_.count()) return i;
    }
    return pick(model_.count());
  }

  std::size_t pick(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }

  std::size_t random_size() {
    // log-uniform: as many tiny as large requests
    const unsigned bits = log2_floor(opt_.max_size);
    const unsigned b = static_cast<unsigned>(rng_() % (bits + 1));
    const std::size_t lo = std::size_t{1} << b;
    const std::size_t hi = std::min(opt_.max_size, lo * 2 - 1);
    return lo + static_cast<std::size_t>(rng_() % (hi - lo + 1));
  }

  std::size_t random_align() {
    const unsigned r = static_cast<unsigned>(rng_() % 16);
    if (r < 10) return std::min<std::size_t>(opt_.max_align, std::size_t{1} << (r % 5));
    const unsigned bits = log2_floor(opt_.max_align);
    return std::size_t{1} << (rng_() % (bits + 1));
  }

  bool allocate_one() {
    const Layout layout{random_size(), random_align()};
    const bool zeroed = rng_() % 8 == 0;
    const Stats before = a_.stats();
    const Block b = zeroed ? a_.allocate_zeroed(layout) : a_.allocate(layout);
    hooks_.after_allocate(a_, layout, b);
    if (b.ptr == nullptr) {
      ++report_.failed_allocations;
      if (!hooks_.failure_allowed(a_, model_, layout)) {
        ADD_FAILURE() << "allocation of " << layout.size << " bytes aligned " << layout.align
                      << " failed with " << model_.bytes() << " bytes live, capacity "
                      << before.capacity;
        return false;
      }
      if (a_.stats().failures != before.failures + 1) {
        ADD_FAILURE() << "a failed allocation was not counted";
        return false;
      }
      std::size_t to_free = Hooks::kResetWhenExhausted ? model_.count() : model_.count() / 2;
      for (; to_free > 0; --to_free) {
        if (!free_one(pick(model_.count()))) return false;
      }
      if constexpr (Hooks::kResetWhenExhausted) {
        hooks_.reset(a_);
        last_ = nullptr;
      }
      return true;
    }
    if (zeroed) {
      for (std::size_t i = 0; i < b.size; ++i) {
        if (b.ptr[i] != std::byte{0}) {
          ADD_FAILURE() << "allocate_zeroed left byte " << i << " of " << b.size << " non-zero";
          return false;
        }
      }
    }
    if (opt_.claims_blocks && !a_.contains(b.ptr)) {
      ADD_FAILURE() << "allocator does not claim its own block";
      return false;
    }
    ++report_.allocations;
    last_ = b.ptr;
    return expect_ok(model_.add(b.ptr, layout.size, b.size, layout.align), "allocate");
  }

  bool free_one(std::size_t index) {
    const LiveBlock lb = model_.nth(index);
    if (std::string e = model_.remove(lb.ptr); !e.empty()) return expect_ok(e, "free");
    const Block b{reinterpret_cast<std::byte*>(lb.ptr), sized(lb)};
    a_.deallocate(b, lb.align);
    hooks_.after_free(a_, b);
    ++report_.frees;
    return true;
  }

  bool grow_one(std::size_t index) {
    const LiveBlock lb = model_.nth(index);
    const std::size_t extra = 1 + random_size() / 2;
    const Layout nl{std::min(opt_.max_size * 2, lb.size + extra), resize_align(lb)};
    if (nl.size < lb.size) return true;
    return resize(lb, nl, true);
  }

  bool shrink_one(std::size_t index) {
    const LiveBlock lb = model_.nth(index);
    if (lb.requested <= 1) return true;
    const Layout nl{1 + static_cast<std::size_t>(rng_() % (lb.requested - 1)), resize_align(lb)};
    return resize(lb, nl, false);
  }

  // The block's own alignment, or now and then another one (larger or smaller).
  std::size_t resize_align(const LiveBlock& lb) {
    if (opt_.resize_realign_every == 0 || rng_() % opt_.resize_realign_every != 0) return lb.align;
    return random_align();
  }

  bool resize(const LiveBlock& lb, Layout nl, bool grow) {
    const Move move = rng_() % 4 == 0 ? Move::forbidden : Move::allowed;
    const Block old{reinterpret_cast<std::byte*>(lb.ptr), lb.size};
    // The model checks the payload, so verify it before the allocator touches the block.
    if (std::string e = model_.verify(lb); !e.empty()) return expect_ok(e, "pre-resize");
    const Block r = grow ? a_.grow(old, nl, move) : a_.shrink(old, nl, move);
    hooks_.after_resize(a_, old, nl, move, r);
    if (r.ptr == nullptr) {
      ++report_.failed_resizes;
      // the old block must be untouched and still live
      return expect_ok(model_.verify(lb), "failed resize");
    }
    if (move == Move::forbidden && r.ptr != old.ptr) {
      ADD_FAILURE() << "block moved although Move::forbidden";
      return false;
    }
    if (r.ptr == old.ptr) ++report_.in_place;
    (grow ? report_.grows : report_.shrinks)++;
    if (last_ == static_cast<const void*>(lb.ptr) || r.ptr != old.ptr) last_ = r.ptr;
    return expect_ok(model_.resize(lb.ptr, r.ptr, nl.size, r.size, nl.align),
                     grow ? "grow" : "shrink");
  }

  // Free with the size the allocator reported or, sometimes, the size asked for: both
  // must be accepted.
  std::size_t sized(const LiveBlock& lb) { return rng_() % 2 == 0 ? lb.size : lb.requested; }

  bool check(const char* when) {
    if (CheckResult r = a_.check_invariants(); !r) {
      ADD_FAILURE() << "check_invariants failed (" << when << "): " << r.error();
      return false;
    }
    if (std::string e = model_.verify_all(); !e.empty()) return expect_ok(e, when);
    const Stats s = a_.stats();
    if (opt_.exact_bytes && s.bytes_in_use != model_.bytes()) {
      ADD_FAILURE() << "stats bytes_in_use " << s.bytes_in_use << " but the model holds "
                    << model_.bytes() << " (" << when << ")";
      return false;
    }
    if (opt_.exact_counts && s.live_blocks() != model_.count()) {
      ADD_FAILURE() << "stats live blocks " << s.live_blocks() << " but the model holds "
                    << model_.count() << " (" << when << ")";
      return false;
    }
    if (s.peak_bytes < s.bytes_in_use) {
      ADD_FAILURE() << "peak " << s.peak_bytes << " below bytes in use " << s.bytes_in_use;
      return false;
    }
    return true;
  }

  bool expect_ok(const std::string& e, const char* op) {
    if (e.empty()) return true;
    ADD_FAILURE() << op << ": " << e << " (seed " << opt_.seed << ")";
    return false;
  }

  A& a_;
  DriverOptions opt_;
  Hooks hooks_;
  std::mt19937_64 rng_;
  ReferenceModel model_;
  DriverReport report_;
  Stats start_;                 // the allocator's figures when the driver started
  const void* last_ = nullptr;  // the most recent allocation, if still live
};

}  // namespace ctxalloc::testing
