// The C API from C++, for what needs more than the C program (ctxalloc_c_test.c) checks:
// randomized runs of every allocator kind through the C functions against the reference
// model; the error contract on every failure (NULL + errno + a message); the thread-local
// last error; a source shared by threads; no malloc on any path; no exception crossing
// the boundary, even when the check's message cannot be built.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "ctxalloc/adaptors/ctxalloc.h"
#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/sanitizers.h"
#include "support/counting_malloc.h"
#include "support/random_driver.h"

// Every function of the header is declared noexcept in C++: an exception cannot cross.
static_assert(noexcept(ctxalloc_allocate(nullptr, 0, 0, nullptr)));
static_assert(noexcept(ctxalloc_reallocate(nullptr, nullptr, 0, 0, 0, 0, nullptr)));
static_assert(noexcept(ctxalloc_check_invariants(nullptr, nullptr, 0)));
static_assert(noexcept(ctxalloc_source_check_invariants(nullptr, nullptr, 0)));
static_assert(noexcept(ctxalloc_source_create_mmap(nullptr)));
static_assert(noexcept(ctxalloc_context_allocator_create(nullptr, 0, 0, nullptr)));

#if defined(CTXALLOC_COUNT_MALLOC)
// And an operator new that can be made to fail.
namespace {
std::atomic<bool> g_new_fails{false};
}  // namespace

extern "C" void __libc_free(void*);

// operator new counts as a malloc, too.
void* operator new(std::size_t n) {
  if (g_new_fails.load(std::memory_order_relaxed)) throw std::bad_alloc();
  note();
  if (void* p = __libc_malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  __libc_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  __libc_free(p);
}
#endif

namespace ctxalloc {
namespace {

using testing::DriverOptions;
using testing::RandomDriver;
using testing::ReferenceModel;

constexpr std::size_t kKiB = 1024;

// ---------------------------------------------------------------- an Allocator over C

// The C API as an Allocator, so the randomized driver can run through it. Every call
// also checks the C error contract: a NULL result comes with errno and a message.
class CAllocator {
 public:
  CAllocator(ctxalloc_allocator* a, bool unsized_frees) : a_(a), unsized_(unsized_frees) {}

  Block allocate(Layout l) noexcept { return checked(ctxalloc_allocate, l); }
  Block allocate_zeroed(Layout l) noexcept { return checked(ctxalloc_allocate_zeroed, l); }

  void deallocate(Block b, std::size_t align) noexcept {
    // Every other free without the size, where the allocator can recover it.
    flip_ = !flip_;
    const int rc = unsized_ && flip_ ? ctxalloc_free(a_, b.ptr)
                                     : ctxalloc_free_sized(a_, b.ptr, b.size, align);
    if (rc != 0) ADD_FAILURE() << "free returned " << rc << ": " << ctxalloc_last_error();
  }

  Block grow(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }
  Block shrink(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }

  bool contains(const void* p) const noexcept { return ctxalloc_contains(a_, p) == 1; }

  CheckResult check_invariants() const {
    char message[512];
    const int rc = ctxalloc_check_invariants(a_, message, sizeof message);
    if (rc == 0) return CheckResult::ok();
    return check_fail("C API (", rc, "): ", message);
  }

  Stats stats() const noexcept {
    ctxalloc_stats c{};
    ctxalloc_get_stats(a_, &c);
    Stats s;
    s.allocations = c.allocations;
    s.deallocations = c.deallocations;
    s.grows = c.grows;
    s.shrinks = c.shrinks;
    s.failures = c.failures;
    s.misuses = c.misuses;
    s.bytes_in_use = c.bytes_in_use;
    s.peak_bytes = c.peak_bytes;
    s.capacity = c.capacity;
    return s;
  }

  void reset() noexcept { EXPECT_EQ(ctxalloc_reset(a_), 0) << ctxalloc_last_error(); }

 private:
  template <class F>
  Block checked(F f, Layout l) noexcept {
    std::size_t usable = 0;
    errno = 0;
    void* p = f(a_, l.size, l.align, &usable);
    if (p == nullptr) expect_error(ENOMEM);
    return Block{static_cast<std::byte*>(p), p == nullptr ? 0 : usable};
  }

  Block resize(Block b, Layout l, Move m) noexcept {
    std::size_t usable = 0;
    errno = 0;
    const unsigned flags = m == Move::forbidden ? CTXALLOC_REALLOC_NO_MOVE : 0u;
    void* p = ctxalloc_reallocate(a_, b.ptr, b.size, l.size, l.align, flags, &usable);
    if (p == nullptr) expect_error(ENOMEM);
    return Block{static_cast<std::byte*>(p), p == nullptr ? 0 : usable};
  }

  static void expect_error(int code) {
    if (errno != code) ADD_FAILURE() << "errno " << errno << " instead of " << code;
    if (ctxalloc_last_error()[0] == '\0') ADD_FAILURE() << "a failure without a message";
  }

  ctxalloc_allocator* a_;
  bool unsized_;
  bool flip_ = false;
};

static_assert(Allocator<CAllocator>);

struct PermissiveHooks : testing::DefaultHooks<CAllocator> {
  // The size classes serve up to 1 KiB at the alignments their classes have.
  bool failure_allowed(const CAllocator&, const ReferenceModel&, Layout l) const {
    return SizeClassAllocator::class_size_for(l.size, l.align) == 0;
  }
};

struct BumpHooks : testing::DefaultHooks<CAllocator> {
  static constexpr bool kResetWhenExhausted = true;
  bool failure_allowed(const CAllocator& a, const ReferenceModel&, Layout l) const {
    const Stats s = a.stats();
    return s.bytes_in_use + l.size + l.align > s.capacity;
  }
  void reset(CAllocator& a) { a.reset(); }
};

template <class Hooks = testing::DefaultHooks<CAllocator>>
void drive(ctxalloc_allocator* a, bool unsized_frees, DriverOptions opt) {
  ASSERT_NE(a, nullptr) << ctxalloc_last_error();
  SCOPED_TRACE(ctxalloc_allocator_name(a));
  CAllocator c(a, unsized_frees);
  RandomDriver<CAllocator, Hooks> driver(c, opt);
  ASSERT_TRUE(driver.run());
  EXPECT_GT(driver.report().allocations, testing::scaled(opt.ops) / 4);
  ASSERT_TRUE(driver.free_all());
  EXPECT_EQ(c.stats().live_blocks(), 0u);
}

class CApiRandomized : public ::testing::Test {
 protected:
  void SetUp() override {
    ctxalloc_set_misuse_policy(CTXALLOC_MISUSE_ABORT);  // any misuse is a bug here
    source_ = ctxalloc_source_create_mmap(nullptr);
    ASSERT_NE(source_, nullptr);
  }
  void TearDown() override { EXPECT_EQ(ctxalloc_source_destroy(source_), 0); }

  static DriverOptions options(std::uint64_t seed) {
    DriverOptions opt;
    opt.ops = 200'000;  // the allocators' own tests run 1,000,000; this checks the edge
    opt.seed = testing::test_seed(seed);
    // At most 64 live blocks (of up to 8 KiB, ~4 KiB on average after grows) in the
    // 1 MiB regions: DefaultHooks allow a failure only past half the capacity, which
    // leaves the bit set room for fragmentation (runs of 4 KiB aligned to 4 KiB).
    opt.target_live = 48;
    opt.max_live = 64;
    return opt;
  }

  ctxalloc_source* source_ = nullptr;
};

TEST_F(CApiRandomized, Bump) {
  DriverOptions opt = options(0xCA1);
  opt.exact_bytes = false;
  ctxalloc_allocator* a = ctxalloc_bump_create(source_, 256 * kKiB);
  drive<BumpHooks>(a, true, opt);
  ctxalloc_allocator_destroy(a);
}

TEST_F(CApiRandomized, BitSet) {
  ctxalloc_allocator* a = ctxalloc_bitset_create(source_, 1024 * kKiB, 32);
  drive(a, true, options(0xCA2));
  ctxalloc_allocator_destroy(a);
}

TEST_F(CApiRandomized, Tree) {
  ctxalloc_allocator* a = ctxalloc_tree_create(source_, 1024 * kKiB, 0, 64 * kKiB);
  drive(a, true, options(0xCA3));
  ctxalloc_allocator_destroy(a);
}

TEST_F(CApiRandomized, SizeClasses) {
  DriverOptions opt = options(0xCA4);
  opt.max_size = 1024;
  opt.max_align = 64;
  ctxalloc_allocator* a = ctxalloc_size_class_create(source_, 0);
  drive<PermissiveHooks>(a, true, opt);
  ctxalloc_allocator_destroy(a);
}

TEST_F(CApiRandomized, MemoryMaps) {
  DriverOptions opt = options(0xCA5);
  opt.ops = 20'000;  // a system call or two per operation
  opt.max_size = 64 * kKiB;
  opt.max_align = 64 * kKiB;
  opt.target_live = 64;
  opt.exact_bytes = false;  // whole pages are counted
  ctxalloc_allocator* a = ctxalloc_mmap_allocator_create(nullptr);
  drive(a, true, opt);
  ctxalloc_allocator_destroy(a);
}

TEST_F(CApiRandomized, ContextAllocatorsOfEveryLifetime) {
  {
    DriverOptions opt = options(0xCA6);
    opt.exact_bytes = false;
    ctxalloc_allocator* a =
        ctxalloc_context_allocator_create(source_, CTXALLOC_LIFETIME_SHORT, 256 * kKiB, nullptr);
    drive<BumpHooks>(a, true, opt);
    ctxalloc_allocator_destroy(a);
  }
  for (int life : {CTXALLOC_LIFETIME_MEDIUM, CTXALLOC_LIFETIME_LONG}) {
    ctxalloc_allocator* a = ctxalloc_context_allocator_create(source_, life, 1024 * kKiB, nullptr);
    drive(a, true, options(0xCA7 + life));
    ctxalloc_allocator_destroy(a);
  }
}

// ---------------------------------------------------------------- errors and threads

TEST(CApi, TheLastErrorIsPerThread) {
  ctxalloc_source* s = ctxalloc_source_create_mmap(nullptr);
  ctxalloc_allocator* a = ctxalloc_bitset_create(s, 64 * kKiB, 64);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(ctxalloc_allocate(a, 16, 3, nullptr), nullptr);
  const std::string mine = ctxalloc_last_error();
  EXPECT_NE(mine.find("alignment 3"), std::string::npos) << mine;
  std::string theirs;
  std::thread([&] {
    EXPECT_STREQ(ctxalloc_last_error(), "") << "a fresh thread has no error";
    EXPECT_EQ(ctxalloc_allocate(a, SIZE_MAX, 8, nullptr), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    theirs = ctxalloc_last_error();
  }).join();
  EXPECT_NE(theirs.find("do not fit in bitset allocator"), std::string::npos) << theirs;
  EXPECT_EQ(mine, ctxalloc_last_error()) << "another thread's failure left this one's alone";
  EXPECT_EQ(ctxalloc_allocator_destroy(a), 0);
  EXPECT_EQ(ctxalloc_source_destroy(s), 0);
}

// Contexts made and dropped on two threads at once, from one arena over one mmap source
// (the switchable layer's pattern): the sources' locks keep their books straight.
TEST(CApi, ASourceIsSharedByThreads) {
  ctxalloc_source* parent = ctxalloc_source_create_mmap(nullptr);
  ctxalloc_source* arena = ctxalloc_source_create_arena(parent, 64 * kKiB, 1024 * kKiB);
  ASSERT_NE(arena, nullptr);
  std::atomic<int> errors{0};
  auto worker = [&](int seed) {
    const int rounds = static_cast<int>(testing::scaled(2000, 200));
    for (int i = 0; i < rounds; ++i) {
      const int life = (i + seed) % 3;
      ctxalloc_allocator* a = ctxalloc_context_allocator_create(arena, life, 64 * kKiB, nullptr);
      if (a == nullptr) {
        ++errors;
        continue;
      }
      auto* p = static_cast<unsigned char*>(ctxalloc_allocate(a, 1000, 0, nullptr));
      if (p == nullptr) ++errors;
      if (p != nullptr) std::memset(p, seed, 1000);
      if (p != nullptr && (p[0] != seed || p[999] != seed)) ++errors;
      if (ctxalloc_allocator_destroy(a) != 0) ++errors;
    }
  };
  std::thread t1(worker, 1);
  std::thread t2(worker, 2);
  t1.join();
  t2.join();
  EXPECT_EQ(errors.load(), 0);
  ctxalloc_source_stats st{};
  ASSERT_EQ(ctxalloc_source_get_stats(arena, &st), 0);
  EXPECT_EQ(st.obtains, st.releases);
  EXPECT_EQ(st.bytes_held, 0u);
  EXPECT_EQ(ctxalloc_source_check_invariants(arena, nullptr, 0), 0) << ctxalloc_last_error();
  EXPECT_EQ(ctxalloc_source_destroy(arena), 0);
  EXPECT_EQ(ctxalloc_source_destroy(parent), 0);
}

// ---------------------------------------------------------------- no malloc, no throw

// Every path but check_invariants (whose message is a std::string), as it would run
// inside malloc: sources, allocators of every kind, their failures and misuses.
int exercise_c_api() {
  int wrong = 0;
  ctxalloc_source* s = ctxalloc_source_create_mmap(nullptr);
  ctxalloc_source* arena = ctxalloc_source_create_arena(s, 64 * kKiB, 0);
  alignas(4096) static unsigned char buf[256 * kKiB];
  ctxalloc_source* region = ctxalloc_source_create_region(buf, sizeof buf, 0);
  wrong += s == nullptr || arena == nullptr || region == nullptr;
  ctxalloc_allocator* all[] = {
      ctxalloc_bump_create(region, 64 * kKiB),
      ctxalloc_bitset_create(s, 64 * kKiB, 64),
      ctxalloc_tree_create(s, 64 * kKiB, 0, 0),
      ctxalloc_size_class_create(s, 1),
      ctxalloc_mmap_allocator_create(nullptr),
      ctxalloc_context_allocator_create(arena, CTXALLOC_LIFETIME_SHORT, 64 * kKiB, nullptr),
      ctxalloc_context_allocator_create(arena, CTXALLOC_LIFETIME_MEDIUM, 64 * kKiB, nullptr),
      ctxalloc_context_allocator_create(arena, CTXALLOC_LIFETIME_LONG, 64 * kKiB, nullptr),
  };
  int local = 0;
  for (ctxalloc_allocator* a : all) {
    wrong += a == nullptr;
    void* p = ctxalloc_allocate(a, 100, 0, nullptr);
    void* z = ctxalloc_allocate_zeroed(a, 200, 64, nullptr);
    wrong += p == nullptr || z == nullptr;
    p = ctxalloc_reallocate(a, p, 100, 300, 0, 0, nullptr);
    wrong += p == nullptr;
    // Every kind knows z's size but the bump kinds, to which z is no longer the most recent.
    wrong += ctxalloc_usable_size(a, z) == 0 && !std::strstr(ctxalloc_allocator_name(a), "bump");
    wrong += ctxalloc_allocate(a, 16, 3, nullptr) != nullptr;        // bad alignment
    wrong += ctxalloc_allocate(a, SIZE_MAX, 8, nullptr) != nullptr;  // too large
    wrong += ctxalloc_free(a, &local) != -EINVAL;                    // foreign (count policy)
    wrong += ctxalloc_free(a, z) != 0;
    wrong += ctxalloc_free_sized(a, p, 300, 0) != 0;
    ctxalloc_stats st;
    wrong += ctxalloc_get_stats(a, &st) != 0 || st.misuses != 1;
    ctxalloc_reset(a);
  }
  wrong += ctxalloc_context_allocator_create(arena, 9, 64 * kKiB, nullptr) != nullptr;
  wrong += ctxalloc_source_destroy(s) != -EBUSY;
  for (ctxalloc_allocator* a : all)
    wrong += ctxalloc_allocator_destroy(a) != 0;
  ctxalloc_source_stats ss;
  wrong += ctxalloc_source_get_stats(arena, &ss) != 0 || ss.bytes_held != 0;
  wrong += ctxalloc_source_destroy(region) != 0;
  wrong += ctxalloc_source_destroy(arena) != 0;
  wrong += ctxalloc_source_destroy(s) != 0;
  return wrong;
}

TEST(CApi, NoPathCallsMalloc) {
  const int saved = ctxalloc_get_misuse_policy();
  ctxalloc_set_misuse_policy(CTXALLOC_MISUSE_COUNT);
#if defined(CTXALLOC_COUNT_MALLOC)
  (void)ctxalloc_last_error();  // the thread's TLS block exists already; this only reads it
  g_calls = 0;
  g_counting = true;
  void* volatile seen = std::malloc(8);  // the wrapper really is in place: this one counts
  const long wrapper_works = g_calls.load();
  std::free(seen);
  g_calls = 0;
  const int wrong = exercise_c_api();
  g_counting = false;
  ctxalloc_set_misuse_policy(saved);
  EXPECT_EQ(wrapper_works, 1) << "the counting malloc is not the one in use";
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(g_calls.load(), 0) << "a C API path called malloc (or calloc, realloc, ...)";
#else
  EXPECT_EQ(exercise_c_api(), 0);
  ctxalloc_set_misuse_policy(saved);
  GTEST_SKIP() << "the paths ran, but sanitizer builds bring their own malloc, which this "
                  "test cannot count; the release and debug builds count it";
#endif
}

// check_invariants builds its message in a std::string: when that throws, the C caller
// gets -ENOMEM, not an exception through C frames.
TEST(CApi, ACheckThatCannotAllocateReturnsENOMEM) {
#if defined(CTXALLOC_COUNT_MALLOC)
  alignas(4096) static unsigned char buf[64 * kKiB];
  ctxalloc_source* s = ctxalloc_source_create_region(buf, sizeof buf, 0);
  ASSERT_NE(s, nullptr);
  buf[2] ^= 0x10;  // a used bit on a free granule: the check fails and builds a message
  char message[128];
  g_new_fails = true;
  const int rc = ctxalloc_source_check_invariants(s, message, sizeof message);
  g_new_fails = false;
  EXPECT_EQ(rc, -ENOMEM);
  EXPECT_NE(std::string(ctxalloc_last_error()).find("no memory to run the check"),
            std::string::npos);
  EXPECT_EQ(ctxalloc_source_check_invariants(s, message, sizeof message), -EUCLEAN);
  buf[2] ^= 0x10;
  EXPECT_EQ(ctxalloc_source_check_invariants(s, message, sizeof message), 0);
  EXPECT_EQ(ctxalloc_source_destroy(s), 0);
#else
  GTEST_SKIP() << "replacing operator new is left to the non-sanitizer builds";
#endif
}

}  // namespace
}  // namespace ctxalloc
