// A property test of the public switchable API against a model (issue 19, item 4): random
// allocate / reallocate (both ways, new alignments) / usable_size / sized and unsized
// deallocate / frees on another thread / blocks of another thread, in every mode -- the
// global heap, the thread heap, a context of each kind (growing ones included), and a
// coroutine's context --
// with sizes from 0 to 4 MiB and alignments up to 1 MiB. After every operation the model
// (tests/support/reference_model.h, whole-block payloads) has checked that the block is
// aligned as asked, that every usable byte is writable and no other live block's, and
// that reallocate kept the contents; at the end everything is freed and every figure
// (thread heaps, global heap, contexts, misuse count) must be back where it started.
//
// CI runs a short sequence (seconds). CTXALLOC_PROPERTY_OPS=N runs N operations (the long
// mode, scripts/property_long.sh: 10^7 by default); CTXALLOC_TEST_SEED replays a seed.
#include <gtest/gtest.h>

#include <bit>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/coroutine.h"
#include "ctxalloc/switchable/switchable.h"
#include "support/reference_model.h"
#include "support/test_scale.h"

namespace ctxalloc {
namespace {

using testing::LiveBlock;
using testing::ReferenceModel;

constexpr std::size_t kMiB = std::size_t{1} << 20;

// Runs functions on one other thread, one at a time, and waits for each: frees of the
// main thread's blocks from there (remote frees), and blocks that thread allocates.
class Helper {
 public:
  Helper() : t_([this] { loop(); }) {}
  ~Helper() {
    run([this] { stop_ = true; });
    t_.join();
  }
  void run(std::function<void()> f) {
    std::unique_lock<std::mutex> l(m_);
    job_ = std::move(f);
    cv_.notify_all();
    cv_.wait(l, [this] { return !job_; });
  }

 private:
  void loop() {
    // Its own heap, so that its blocks are another thread's heap's for the main thread.
    set_mode(Mode::thread);
    std::unique_lock<std::mutex> l(m_);
    while (!stop_) {
      cv_.wait(l, [this] { return static_cast<bool>(job_); });
      job_();
      job_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool stop_ = false;
  std::thread t_;
};

// Where a step runs: the first six set a mode on the main thread, the last resumes the
// coroutine, which runs the step in its own context.
enum class Where { global, thread, bump, bitset, tree, growing, coroutine };
constexpr Where kWheres[] = {Where::global, Where::thread,  Where::bump,     Where::bitset,
                             Where::tree,   Where::growing, Where::coroutine};
constexpr unsigned kMainWheres = 6;      // kWheres without the coroutine
constexpr std::size_t kGrowingSlot = 6;  // contexts_[6] and [7]: growing contexts

struct Owner {
  Context* context = nullptr;  // the context a block lives and dies with, or none
  bool helper = false;         // allocated on the helper thread (its heap)
};

class PropertyRun;
ContextTask<void> coroutine_steps(Context& c, PropertyRun* run);

class PropertyRun {
 public:
  explicit PropertyRun(std::uint64_t seed) : rng_(seed), seed_(seed) {}

  bool run(std::uint64_t ops) {
    misuses_at_start_ = misuse_count();
    global_at_start_ = current_global_heap().stats();
    heap_ = current_thread_heap();
    if (heap_ == nullptr) return fail("no thread heap");
    heap_at_start_ = heap_->live_bytes();
    for (Lifetime l : {Lifetime::short_lived, Lifetime::medium, Lifetime::long_lived})
      for (int i = 0; i < 2; ++i)
        if (!new_context(l, i)) return false;
    for (int i = 0; i < 2; ++i)
      if (!new_growing(i)) return false;
    coroutine_context_ = Context::create(Lifetime::long_lived, 256 << 10);
    if (coroutine_context_ == nullptr) return fail("no coroutine context");
    {
      ModeScope global(Mode::global);  // the frame lives in the global heap
      task_ = std::make_unique<ContextTask<void>>(coroutine_steps(*coroutine_context_, this));
    }
    for (std::uint64_t i = 0; i < ops && ok_; ++i) {
      const Where w = kWheres[rng_() % (kMainWheres + 1)];
      if (w == Where::coroutine) {
        task_->resume();  // one step() in the coroutine's context
      } else {
        in_mode(w, [&] { step(w); });
      }
      if ((i + 1) % 8192 == 0 && ok_) check_all("periodic");
    }
    if (ok_) finish();
    return ok_;
  }

  // One operation in whatever is current now.
  void step(Where w) {
    if (!ok_) return;
    const unsigned roll = static_cast<unsigned>(rng_() % 100);
    const bool want_more = model_.count() + sentinels_.size() < 200;
    if (model_.empty() && sentinels_.empty()) return allocate_one(w);
    if (roll < (want_more ? 40u : 25u)) return allocate_one(w);
    if (roll < 45) return free_one(false);
    if (roll < 55) return free_one(true);  // on the helper thread
    if (roll < 75) return reallocate_one(w);
    if (roll < 85) return check_usable();
    if (roll < 90) return helper_allocate();
    if (roll < 93) return release_a_context();
    return free_one(false);
  }

  bool ok() const { return ok_; }

 private:
  // -------------------------------------------------------------------- layouts
  std::size_t random_size() {
    const unsigned r = static_cast<unsigned>(rng_() % 100);
    if (r < 5) return 0;
    if (r < 65) return log_uniform(1, 1024);
    if (r < 90) return log_uniform(1025, 64 << 10);
    if (r < 98) return log_uniform((64 << 10) + 1, kMiB);
    return log_uniform(kMiB + 1, 4 * kMiB);
  }
  std::size_t log_uniform(std::size_t lo, std::size_t hi) {
    const unsigned a = std::bit_width(lo) - 1, b = std::bit_width(hi) - 1;
    const unsigned e = a + static_cast<unsigned>(rng_() % (b - a + 1));
    std::size_t from = std::max(lo, std::size_t{1} << e);
    std::size_t to = std::min(hi, (std::size_t{2} << e) - 1);
    return from + static_cast<std::size_t>(rng_() % (to - from + 1));
  }
  std::size_t random_align() {
    const unsigned r = static_cast<unsigned>(rng_() % 100);
    if (r < 70) return std::size_t{1} << (rng_() % 5);   // 1..16
    if (r < 90) return std::size_t{32} << (rng_() % 8);  // 32..4096
    return std::size_t{8192} << (rng_() % 8);            // 8 KiB..1 MiB
  }

  // A context that is out of room spills to its thread heap's spill tree, whose largest
  // block is 1 MiB (TreeConfig's largest class) including the 32-byte spill header
  // rounded up to the alignment and the tree's alignment padding: a larger request made
  // in a context is refused (docs/switchable.md), and must then be counted as a spill
  // failure. Anything smaller, and anything outside a context, must succeed.
  // A growing context's large blocks come from the same spill tree; it counts a refusal
  // in its pool's figures (Refusal::memory).
  struct Counts {
    std::uint64_t spill_failures, growing_refusals;
  };
  Counts counts() {
    return {heap_->stats().context_spill_failures,
            heap_->flow_chunks().figures().refusals[static_cast<unsigned>(Refusal::memory)]};
  }
  bool refusal_allowed(bool in_context, std::size_t size, std::size_t align, Counts before) {
    if (!in_context) return false;
    const std::size_t a = std::max<std::size_t>(align, 32);
    if (size + 2 * a + 64 <= kMiB) return false;  // fits the spill tree: must succeed
    const Counts now = counts();
    if (now.spill_failures == before.spill_failures &&
        now.growing_refusals == before.growing_refusals)
      return fail("a context refused " + std::to_string(size) + " B aligned to " +
                  std::to_string(align) + " without counting a spill failure");
    ++refused_;
    return true;
  }

  std::string where_is(const void* p, const Owner& o) {
    if (o.context != nullptr)
      return std::string("a block of a ") + to_string(o.context->kind()) + " context";
    if (current_global_heap().contains(p)) return "a block of the global heap";
    return o.helper ? "a block of the helper's heap" : "a block of this thread's heap";
  }

  // -------------------------------------------------------------------- operations
  void allocate_one(Where w) {
    const std::size_t size = random_size();
    const std::size_t align = random_align();
    const bool zeroed = rng_() % 8 == 0;
    const Counts spill_failures = counts();
    void* p = zeroed ? allocate_zeroed(size, align) : allocate(size, align);
    if (p == nullptr) {
      if (refusal_allowed(current_context() != nullptr, size, align, spill_failures)) return;
      return (void)fail("allocate(" + std::to_string(size) + ", " + std::to_string(align) +
                        ") failed in " + name(w));
    }
    if (zeroed) {
      for (std::size_t i = 0; i < size; ++i)
        if (static_cast<unsigned char*>(p)[i] != 0) return (void)fail("allocate_zeroed: not zero");
    }
    record(p, size, align, Owner{current_context(), false}, "allocate");
  }

  // Records a block the API returned: the sentinel for size 0 (below 64 KiB alignments),
  // else a real block whose usable size is at least the size asked.
  void record(void* p, std::size_t size, std::size_t align, Owner owner, const char* op) {
    if (reinterpret_cast<std::uintptr_t>(p) % align != 0)
      return (void)fail(std::string(op) + ": block not aligned to " + std::to_string(align));
    if (size == 0 && is_zero_size_sentinel(p)) {
      sentinels_.push_back(p);
      return;
    }
    const std::size_t usable = usable_size(p);
    if (usable < size || usable == 0)
      return (void)fail(std::string(op) + ": usable size " + std::to_string(usable) + " below " +
                        std::to_string(size));
    if (!ok(model_.add(p, size, usable, align), op)) return;
    owners_[p] = owner;
  }

  void free_one(bool on_helper) {
    if (!sentinels_.empty() && rng_() % 8 == 0) {
      void* s = sentinels_.back();
      sentinels_.pop_back();
      deallocate(s);  // a no-op
      return;
    }
    if (model_.empty()) return;
    const LiveBlock lb = model_.nth(rng_() % model_.count());
    const bool sized = rng_() % 2 == 0;
    const std::size_t size = rng_() % 2 == 0 ? lb.requested : lb.size;
    if (!ok(model_.remove(lb.ptr), "free")) return;
    owners_.erase(lb.ptr);
    auto f = [&] { sized ? deallocate(lb.ptr, size) : deallocate(lb.ptr); };
    if (on_helper) {
      helper_.run(f);
    } else {
      f();
    }
  }

  void reallocate_one(Where w) {
    if (model_.empty()) {
      if (sentinels_.empty()) return;
      void* s = sentinels_.back();  // reallocating the sentinel allocates
      sentinels_.pop_back();
      const std::size_t size = 1 + random_size();
      const std::size_t align = random_align();
      void* p = reallocate(s, size, align);
      if (p == nullptr) return (void)fail("reallocate of the sentinel failed");
      record(p, size, align, Owner{current_context(), false}, "reallocate(sentinel)");
      return;
    }
    const LiveBlock lb = model_.nth(rng_() % model_.count());
    if (!ok(model_.verify(lb), "before reallocate")) return;
    const unsigned r = static_cast<unsigned>(rng_() % 100);
    std::size_t size;
    if (r < 40) {
      size =
          1 + static_cast<std::size_t>(rng_() % std::max<std::size_t>(lb.requested, 1));  // shrink
    } else if (r < 80) {
      size = lb.requested + 1 + random_size() / 2;  // grow
    } else {
      size = 1 + random_size();
    }
    size = std::min(size, 4 * kMiB);
    const std::size_t align = rng_() % 3 == 0 ? random_align() : lb.align;
    if (r < 3) {  // reallocate to 0 frees
      if (!ok(model_.remove(lb.ptr), "reallocate to 0")) return;
      owners_.erase(lb.ptr);
      if (reallocate(lb.ptr, 0, align) != nullptr) (void)fail("reallocate(p, 0) returned a block");
      return;
    }
    Owner owner = owners_[lb.ptr];
    // The helper's blocks in its thread heap move into the current allocator; those in the
    // global heap (large alignments) stay there.
    const bool moves_here = owner.helper && !current_global_heap().contains(lb.ptr);
    const Counts spill_failures = counts();
    void* p = reallocate(lb.ptr, size, align);
    if (p == nullptr) {
      // A failed reallocate leaves the block as it was (contents included).
      // A context's block is resized in its context; another thread's block moves into
      // the current allocator.
      const bool in_context =
          owner.context != nullptr || (moves_here && current_context() != nullptr);
      if (refusal_allowed(in_context, size, align, spill_failures)) {
        if (!ok(model_.verify(lb), "after a refused reallocate")) return;
        return;
      }
      return (void)fail("reallocate(" + std::to_string(lb.requested) + " -> " +
                        std::to_string(size) + ", align " + std::to_string(lb.align) + " -> " +
                        std::to_string(align) + ") failed in " + name(w) + " (" +
                        where_is(lb.ptr, owner) + ")");
    }
    if (reinterpret_cast<std::uintptr_t>(p) % align != 0)
      return (void)fail("reallocate(" + std::to_string(lb.requested) + " -> " +
                        std::to_string(size) + ", align " + std::to_string(align) +
                        ") returned a misaligned block in " + name(w));
    const std::size_t usable = usable_size(p);
    if (usable < size) return (void)fail("reallocate: usable size below the size asked");
    if (owner.helper) owner = Owner{moves_here ? current_context() : nullptr, false};
    owners_.erase(lb.ptr);
    if (!ok(model_.resize(lb.ptr, p, size, usable, align), "reallocate")) return;
    owners_[p] = owner;
  }

  // usable_size of a live block is what was recorded. A bump context knows only its most
  // recent block's size: any other answers 0 (docs/switchable.md).
  void check_usable() {
    if (model_.empty()) return;
    const LiveBlock lb = model_.nth(rng_() % model_.count());
    const std::size_t u = usable_size(lb.ptr);
    const Owner& o = owners_[lb.ptr];
    const bool bump = o.context != nullptr && o.context->kind() == ContextKind::bump;
    if (u != lb.size && !(bump && u == 0))
      (void)fail("usable_size " + std::to_string(u) + " of a block recorded with " +
                 std::to_string(lb.size));
  }

  // A block of the helper thread's heap, which the main thread then frees or moves.
  void helper_allocate() {
    const std::size_t size = 1 + random_size() % (256 << 10);
    const std::size_t align = random_align();
    void* p = nullptr;
    helper_.run([&] { p = allocate(size, align); });
    if (p == nullptr) return (void)fail("the helper's allocate failed");
    record(p, size, align, Owner{nullptr, true}, "helper allocate");
  }

  // Releases one of the eight contexts with whatever it holds, and makes a new one.
  void release_a_context() {
    const std::size_t i = rng_() % contexts_.size();
    Context* c = contexts_[i];
    if (c == current_context()) return;  // installed by the step's own scope
    drain_remote();
    std::vector<void*> dead;
    for (const auto& [p, o] : owners_)
      if (o.context == c) dead.push_back(p);
    for (void* p : dead) {
      if (!ok(model_.remove(p), "blocks of a released context")) return;
      owners_.erase(p);
    }
    const bool growing = c->growing();  // the context is dead once released
    const Lifetime l = growing ? Lifetime::short_lived : c->lifetime();
    c->release_all();
    if (growing) {
      new_growing(static_cast<int>(i - kGrowingSlot));
    } else {
      new_context(l, static_cast<int>(i));
    }
  }

  // A growing context with the thread's default pool options.
  bool new_growing(int i) {
    Context* c = Context::create_growing();
    if (c == nullptr) return fail("Context::create_growing failed");
    const std::size_t slot = kGrowingSlot + static_cast<std::size_t>(i % 2);
    if (contexts_.size() <= slot) contexts_.resize(slot + 1, nullptr);
    contexts_[slot] = c;
    return true;
  }

  bool new_context(Lifetime l, int i) {
    // 16 KiB to 1 MiB: small ones spill often, large ones hold MiB blocks themselves.
    const std::size_t bytes = std::size_t{16} << 10 << (rng_() % 7);
    Context* c = Context::create(l, bytes);
    if (c == nullptr) return fail("Context::create failed");
    const std::size_t slot = static_cast<std::size_t>(l) * 2 + static_cast<std::size_t>(i % 2);
    if (contexts_.size() <= slot) contexts_.resize(slot + 1, nullptr);
    contexts_[slot] = c;
    return true;
  }

  // -------------------------------------------------------------------- modes
  template <class F>
  void in_mode(Where w, F&& f) {
    switch (w) {
      case Where::global: {
        ModeScope s(Mode::global);
        return f();
      }
      case Where::thread: {
        ModeScope s(Mode::thread);
        return f();
      }
      case Where::bump:
      case Where::bitset:
      case Where::tree: {
        const std::size_t k = static_cast<std::size_t>(w) - static_cast<std::size_t>(Where::bump);
        ContextScope s(*contexts_[k * 2 + rng_() % 2]);
        return f();
      }
      case Where::growing: {
        ContextScope s(*contexts_[kGrowingSlot + rng_() % 2]);
        return f();
      }
      case Where::coroutine:
        return f();
    }
  }
  static std::string name(Where w) {
    static const char* const names[] = {"global mode",       "thread mode",    "a bump context",
                                        "a bit-set context", "a tree context", "a growing context",
                                        "a coroutine"};
    return names[static_cast<int>(w)];
  }

  // -------------------------------------------------------------------- checks
  // Both threads push their pending remote frees and apply the ones they received: the
  // main thread first (its frees of the helper's blocks), then the helper, then the main
  // thread again (the helper's frees of its blocks).
  void drain_remote() {
    flush();
    helper_.run([] { flush(); });
    flush();
  }

  void check_all(const char* when) {
    if (!ok(model_.verify_all(), when)) return;
    if (CheckResult r = heap_->check_invariants(); !r)
      (void)fail(std::string(when) + ": " + r.error());
    if (CheckResult r = current_global_heap().check_invariants(); !r)
      (void)fail(std::string(when) + ": " + r.error());
    for (Context* c : contexts_)
      if (CheckResult r = c->check_invariants(); !r)
        (void)fail(std::string(when) + ": " + r.error());
  }

  // Frees everything (on both threads, sized and unsized), then every figure must be back.
  void finish() {
    task_.reset();  // the frame goes back to the global heap
    while (ok_ && (!model_.empty() || !sentinels_.empty()))
      in_mode(kWheres[rng_() % kMainWheres], [&] { free_one(rng_() % 4 == 0); });
    if (!ok_) return;
    drain_remote();
    check_all("after freeing everything");
    auto empty_context = [&](Context* c) {
      const ContextStats s = c->stats();
      if (s.local.bytes_in_use != 0 || s.local.live_blocks() != 0 || s.spilled_live != 0 ||
          s.spilled_bytes != 0) {
        (void)fail(std::string("a ") + to_string(c->kind()) + " context of " +
                   std::to_string(c->bytes()) + " B not empty: " + to_string(s.local) +
                   " spilled_live=" + std::to_string(s.spilled_live));
      }
      c->release();  // expected empty: live blocks would be misuse
    };
    for (Context* c : contexts_)
      empty_context(c);
    empty_context(coroutine_context_);
    if (heap_->live_bytes() != heap_at_start_)
      (void)fail("thread heap: " + std::to_string(heap_->live_bytes()) + " live bytes, " +
                 std::to_string(heap_at_start_) + " at the start");
    const Stats g = current_global_heap().stats();
    if (g.bytes_in_use != global_at_start_.bytes_in_use ||
        g.live_blocks() != global_at_start_.live_blocks())
      (void)fail("global heap: " + to_string(g) + ", at the start " + to_string(global_at_start_));
    std::size_t helper_live = 0;
    helper_.run([&] { helper_live = current_thread_heap()->live_bytes(); });
    if (helper_live != 0) (void)fail("helper heap: " + std::to_string(helper_live) + " live bytes");
    if (misuse_count() != misuses_at_start_)
      (void)fail(std::to_string(misuse_count() - misuses_at_start_) + " misuses reported");
  }

  bool ok(const std::string& e, const char* op) {
    if (e.empty()) return true;
    return fail(std::string(op) + ": " + e);
  }
  bool fail(const std::string& what) {
    if (ok_) ADD_FAILURE() << what << " (seed " << seed_ << ")";
    ok_ = false;
    return false;
  }

  std::mt19937_64 rng_;
  std::uint64_t seed_;
  bool ok_ = true;
  ReferenceModel model_{true};
  std::map<void*, Owner> owners_;
  std::vector<void*> sentinels_;
  std::vector<Context*> contexts_;
  Context* coroutine_context_ = nullptr;
  std::unique_ptr<ContextTask<void>> task_;
  Helper helper_;
  ThreadHeap* heap_ = nullptr;
  std::size_t heap_at_start_ = 0;
  Stats global_at_start_;
  std::uint64_t misuses_at_start_ = 0;

 public:
  std::uint64_t refused_ = 0;  // context requests above the spill limit, refused as documented
};

ContextTask<void> coroutine_steps(Context& c, PropertyRun* run) {
  (void)c;  // the promise installs it around every resume
  for (;;) {
    run->step(Where::coroutine);
    co_await std::suspend_always{};
  }
}

std::uint64_t property_ops() {
  if (const char* s = std::getenv("CTXALLOC_PROPERTY_OPS"); s != nullptr && *s != '\0')
    return std::strtoull(s, nullptr, 0);
  return testing::scaled(30'000, 2'000);
}

TEST(ApiProperty, EveryModeAgainstTheModel) {
  const std::uint64_t seed = testing::test_seed(0x19);
  const std::uint64_t ops = property_ops();
  PropertyRun run(seed);
  EXPECT_TRUE(run.run(ops));
  std::printf("%llu operations, seed %llu, %llu context requests above the spill limit refused\n",
              static_cast<unsigned long long>(ops), static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(run.refused_));
}

}  // namespace
}  // namespace ctxalloc
