// The C semantics of every function libctxalloc_preload.so interposes, checked in a
// process that runs with it preloaded (meson sets LD_PRELOAD for this binary only): the
// first test proves that each symbol really resolves to the library, the others check
// what C, POSIX and glibc promise (src/ctxalloc/replace/malloc_api.cc lists them).
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "report.h"

namespace {

using ctxalloc::testing::Report;

// Keeps the compiler from pairing up or removing allocations.
template <class T>
T* keep(T* p) {
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

// Sizes the compiler cannot see, so it neither warns about them nor folds the calls.
std::size_t opaque(std::size_t v) {
  volatile std::size_t x = v;
  return x;
}

// Calls the compiler cannot reason about (it would warn about, or fold, a use after a
// failed realloc, a double free, a free of static storage).
void* (*volatile opaque_realloc)(void*, std::size_t) = &realloc;
void (*volatile opaque_free)(void*) = &free;

bool aligned_to(const void* p, std::size_t a) {
  return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
}

std::string library_of(const void* fn) {
  Dl_info info{};
  if (dladdr(fn, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

void fill(void* p, std::size_t n, unsigned char seed) {
  auto* b = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    b[i] = static_cast<unsigned char>(seed + i * 7);
}

bool check(const void* p, std::size_t n, unsigned char seed) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != static_cast<unsigned char>(seed + i * 7)) return false;
  }
  return true;
}

TEST(PreloadCApi, EveryInterposedSymbolResolvesToThePreloadLibrary) {
  const std::pair<const char*, const void*> fns[] = {
      {"malloc", reinterpret_cast<const void*>(&malloc)},
      {"free", reinterpret_cast<const void*>(&free)},
      {"calloc", reinterpret_cast<const void*>(&calloc)},
      {"realloc", reinterpret_cast<const void*>(&realloc)},
      {"reallocarray", reinterpret_cast<const void*>(&reallocarray)},
      {"posix_memalign", reinterpret_cast<const void*>(&posix_memalign)},
      {"aligned_alloc", reinterpret_cast<const void*>(&aligned_alloc)},
      {"memalign", reinterpret_cast<const void*>(&memalign)},
      {"valloc", reinterpret_cast<const void*>(&valloc)},
      {"pvalloc", reinterpret_cast<const void*>(&pvalloc)},
      {"malloc_usable_size", reinterpret_cast<const void*>(&malloc_usable_size)},
      {"operator new", dlsym(RTLD_DEFAULT, "_Znwm")},
      {"operator delete", dlsym(RTLD_DEFAULT, "_ZdlPv")},
      {"aligned operator new[]", dlsym(RTLD_DEFAULT, "_ZnamSt11align_val_t")},
      {"sized operator delete", dlsym(RTLD_DEFAULT, "_ZdlPvm")},
  };
  for (const auto& [name, fn] : fns) {
    EXPECT_NE(library_of(fn).find("libctxalloc_preload.so"), std::string::npos)
        << name << " comes from " << library_of(fn) << ": the test must run with LD_PRELOAD";
  }
  const Report r = Report::of_this_process();
  ASSERT_TRUE(r.found());
  EXPECT_EQ(r.mode(), "thread");
  EXPECT_GT(r.get("total", "allocations"), 0u);
}

TEST(PreloadCApi, ZeroSizeRequestsGiveUniqueFreeablePointers) {
  std::set<void*> seen;
  for (int i = 0; i < 100; ++i) {
    void* p = keep(malloc(opaque(0)));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second) << "malloc(0) returned a pointer twice";
  }
  void* c = keep(calloc(opaque(0), 8));
  void* a = keep(aligned_alloc(64, opaque(0)));
  void* m = keep(memalign(128, opaque(0)));
  void* pm = nullptr;
  EXPECT_EQ(posix_memalign(&pm, 32, opaque(0)), 0);
  for (void* p : {c, a, m, pm}) {
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second);
  }
  EXPECT_TRUE(aligned_to(a, 64) && aligned_to(m, 128) && aligned_to(pm, 32));
  for (void* p : seen)
    free(p);
}

TEST(PreloadCApi, MallocAlignsToSixteenAndGivesAtLeastTheSize) {
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t n = 1; n < 5000; n += 37)
    blocks.emplace_back(keep(malloc(n)), n);
  for (std::size_t n : {std::size_t{100} << 10, std::size_t{1} << 20, std::size_t{3} << 20})
    blocks.emplace_back(keep(malloc(n)), n);
  for (auto [p, n] : blocks) {
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(aligned_to(p, 16)) << n;
    const std::size_t usable = malloc_usable_size(p);
    EXPECT_GE(usable, n);
    std::memset(p, 0x5A, usable);  // the whole usable size is the caller's
  }
  for (auto [p, n] : blocks)
    free(p);
}

TEST(PreloadCApi, ImpossibleSizesFailWithEnomem) {
  for (std::size_t n : {SIZE_MAX, SIZE_MAX / 2 + 1, std::size_t{1} << 48}) {
    errno = 0;
    EXPECT_EQ(keep(malloc(opaque(n))), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
    errno = 0;
    EXPECT_EQ(keep(aligned_alloc(64, opaque(n))), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
  }
}

TEST(PreloadCApi, SuccessfulCallsLeaveErrnoAlone) {
  errno = EDOM;
  void* p = keep(malloc(100));
  void* c = keep(calloc(10, 10));
  p = keep(realloc(p, 5000));
  void* a = nullptr;
  EXPECT_EQ(posix_memalign(&a, 256, 100), 0);
  void* big = keep(malloc(opaque(std::size_t{5} << 20)));
  free(p);
  free(c);
  free(a);
  free(big);
  free(nullptr);
  EXPECT_EQ(errno, EDOM);
}

TEST(PreloadCApi, CallocZeroesReusedMemoryAndRefusesOverflow) {
  for (std::size_t n :
       {std::size_t{48}, std::size_t{700}, std::size_t{9000}, std::size_t{3} << 20}) {
    void* dirty = keep(malloc(n));
    std::memset(dirty, 0xAB, n);
    keep(dirty);  // else the compiler may drop the writes to a block that is freed next
    free(dirty);
    auto* c = static_cast<unsigned char*>(keep(calloc(1, n)));  // likely the same block
    ASSERT_NE(c, nullptr);
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_EQ(c[i], 0) << "byte " << i << " of calloc(" << n << ")";
    free(c);
  }
  errno = 0;
  EXPECT_EQ(keep(calloc(opaque(SIZE_MAX / 2 + 1), 2)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(keep(calloc(opaque(std::size_t{1} << 32), std::size_t{1} << 32)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

bool all_zero(const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

// Large blocks (above the heaps' 1 MiB class) come from the global heap's cache of freed
// mappings: the next large request reuses one, calloc still sees zeros, and so does a
// forked child that inherits the cache.
TEST(PreloadCApi, FreedLargeBlocksAreReusedAndCallocStillZeroes) {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  void* p = keep(malloc(6 * kMiB));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0xCD, 6 * kMiB);
  keep(p);  // the writes happen before the free (no dead-store elimination)
  free(p);
  void* q = keep(malloc(6 * kMiB));
  EXPECT_EQ(q, p) << "the freed mapping, not a new one";
  std::memset(q, 0xCE, 6 * kMiB);
  keep(q);
  free(q);
  auto* grown = static_cast<unsigned char*>(keep(calloc(1, 10 * kMiB)));  // 6 MiB grown
  ASSERT_NE(grown, nullptr);
  ASSERT_TRUE(all_zero(grown, 10 * kMiB));
  std::memset(grown, 0xCF, 10 * kMiB);
  keep(grown);
  free(grown);
  auto* part = static_cast<unsigned char*>(keep(calloc(1, 3 * kMiB)));  // from the 10 MiB
  ASSERT_NE(part, nullptr);
  ASSERT_TRUE(all_zero(part, 3 * kMiB));
  std::memset(part, 0xD0, 3 * kMiB);
  keep(part);
  free(part);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child's copy of the cache: reuse, write, calloc again.
    void* c = malloc(3 * kMiB);
    if (c == nullptr) _exit(2);
    std::memset(c, 0xD1, 3 * kMiB);
    keep(c);
    free(c);
    void* z = calloc(1, 3 * kMiB);
    _exit(z != nullptr && all_zero(z, 3 * kMiB) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto* after = static_cast<unsigned char*>(keep(calloc(1, 3 * kMiB)));
  ASSERT_NE(after, nullptr);
  EXPECT_TRUE(all_zero(after, 3 * kMiB));
  free(after);
}

TEST(PreloadCApi, ReallocKeepsContentsAcrossEverySizeRange) {
  std::size_t have = 10;
  void* p = keep(malloc(have));
  fill(p, have, 3);
  for (std::size_t n : {std::size_t{100}, std::size_t{1000}, std::size_t{10000},
                        std::size_t{300000}, std::size_t{3} << 20, std::size_t{8} << 20,
                        std::size_t{5000}, std::size_t{64}, std::size_t{8}}) {
    void* q = keep(realloc(p, n));
    ASSERT_NE(q, nullptr) << n;
    ASSERT_TRUE(check(q, std::min(have, n), 3)) << have << " -> " << n;
    fill(q, n, 3);
    EXPECT_GE(malloc_usable_size(q), n);
    p = q;
    have = n;
  }
  free(p);
}

TEST(PreloadCApi, ReallocOfNullAllocatesAndToZeroFrees) {
  void* p = keep(realloc(nullptr, 40));
  ASSERT_NE(p, nullptr);
  EXPECT_GE(malloc_usable_size(p), 40u);
  EXPECT_EQ(keep(opaque_realloc(p, opaque(0))), nullptr);  // glibc: frees p, returns null
  EXPECT_EQ(malloc_usable_size(p), 0u) << "realloc(p, 0) did not free p";
  void* z = keep(realloc(nullptr, opaque(0)));  // malloc(0): a unique pointer
  EXPECT_NE(z, nullptr);
  free(z);
}

TEST(PreloadCApi, ReallocFailureLeavesTheBlockIntact) {
  for (std::size_t start : {std::size_t{100}, std::size_t{20000}, std::size_t{2} << 20}) {
    void* p = keep(malloc(start));
    fill(p, start, 9);
    for (std::size_t n : {SIZE_MAX, SIZE_MAX / 2 + 1, std::size_t{1} << 48}) {
      errno = 0;
      EXPECT_EQ(keep(opaque_realloc(p, opaque(n))), nullptr);
      EXPECT_EQ(errno, ENOMEM);
      EXPECT_TRUE(check(p, start, 9));
      EXPECT_GE(malloc_usable_size(p), start);
    }
    free(p);
  }
}

TEST(PreloadCApi, ReallocarrayChecksTheProductAndResizes) {
  void* p = keep(reallocarray(nullptr, 10, 10));
  ASSERT_NE(p, nullptr);
  fill(p, 100, 1);
  errno = 0;
  EXPECT_EQ(keep(reallocarray(p, opaque(SIZE_MAX / 4), 8)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(check(p, 100, 1));
  void* q = keep(reallocarray(p, 1000, 10));
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(check(q, 100, 1));
  free(q);
}

TEST(PreloadCApi, PosixMemalignValidatesReturnsAndAligns) {
  void* const untouched = reinterpret_cast<void*>(0x1234);
  for (std::size_t bad : {std::size_t{0}, std::size_t{3}, std::size_t{4}, std::size_t{24},
                          std::size_t{48}, (std::size_t{1} << 20) + 8}) {
    void* out = untouched;
    errno = EDOM;
    EXPECT_EQ(posix_memalign(&out, bad, 64), EINVAL) << bad;
    EXPECT_EQ(out, untouched) << "posix_memalign wrote *memptr on failure";
    EXPECT_EQ(errno, EDOM) << "posix_memalign must not set errno";
  }
  for (std::size_t a = sizeof(void*); a <= (std::size_t{4} << 20); a <<= 1) {
    for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{70000}}) {
      void* out = nullptr;
      ASSERT_EQ(posix_memalign(&out, a, n), 0) << a << " " << n;
      EXPECT_TRUE(aligned_to(out, a)) << a;
      EXPECT_GE(malloc_usable_size(out), n);
      std::memset(out, 1, n);
      free(out);
    }
  }
  void* out = untouched;
  errno = EDOM;
  EXPECT_EQ(posix_memalign(&out, 64, opaque(SIZE_MAX / 2 + 1)), ENOMEM);
  EXPECT_EQ(out, untouched);
  EXPECT_EQ(errno, EDOM);
  // An alignment ctxalloc cannot give (above 1 GiB) is memory it does not have.
  EXPECT_EQ(posix_memalign(&out, std::size_t{1} << 40, 64), ENOMEM);
}

TEST(PreloadCApi, AlignedAllocMemalignVallocPvalloc) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  errno = 0;
  EXPECT_EQ(keep(aligned_alloc(opaque(3), 64)), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(keep(aligned_alloc(opaque(0), 64)), nullptr);
  EXPECT_EQ(errno, EINVAL);
  for (std::size_t a :
       {std::size_t{1}, std::size_t{8}, std::size_t{64}, std::size_t{4096}, std::size_t{1} << 21}) {
    void* p = keep(aligned_alloc(a, 100));  // C17: any size, not only multiples
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned_to(p, a));
    free(p);
  }
  // memalign rounds a non-power-of-two alignment up, as glibc does.
  void* m = keep(memalign(opaque(24), 10));
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(aligned_to(m, 32));
  free(m);
  errno = 0;
  EXPECT_EQ(keep(memalign(opaque((std::size_t{1} << 63) + 1), 10)), nullptr);
  EXPECT_EQ(errno, EINVAL);
  void* v = keep(valloc(10));
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(aligned_to(v, page));
  free(v);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, page + 1}) {
    void* pv = keep(pvalloc(opaque(n)));
    ASSERT_NE(pv, nullptr);
    EXPECT_TRUE(aligned_to(pv, page));
    EXPECT_GE(malloc_usable_size(pv), n == 0 ? page : (n + page - 1) / page * page);
    free(pv);
  }
  errno = 0;
  EXPECT_EQ(keep(pvalloc(opaque(SIZE_MAX - 10))), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(PreloadCApi, UsableSizeOfNullAndForeignPointersIsZero) {
  EXPECT_EQ(malloc_usable_size(nullptr), 0u);
  int on_stack = 0;
  EXPECT_EQ(malloc_usable_size(&on_stack), 0u);
  static int in_data = 0;
  EXPECT_EQ(malloc_usable_size(&in_data), 0u);
  free(nullptr);  // and free(NULL) does nothing
}

TEST(PreloadCApi, BlocksMoveBetweenThreadsWithTheirContents) {
  constexpr int kBlocks = 20000;
  std::vector<void*> blocks(kBlocks);
  std::atomic<int> stage{0};  // 1: produced, 2: consumed (the producer stays alive till then)
  std::thread producer([&] {
    for (int i = 0; i < kBlocks; ++i) {
      const std::size_t n = 16 + static_cast<std::size_t>(i % 97) * 24;
      blocks[i] = malloc(n);
      fill(blocks[i], n, static_cast<unsigned char>(i));
    }
    stage.store(1);
    while (stage.load() != 2)
      std::this_thread::yield();
  });
  std::thread consumer([&] {
    while (stage.load() != 1)
      std::this_thread::yield();
    for (int i = 0; i < kBlocks; ++i) {
      const std::size_t n = 16 + static_cast<std::size_t>(i % 97) * 24;
      ASSERT_TRUE(check(blocks[i], n, static_cast<unsigned char>(i))) << i;
      if (i % 3 == 0) {  // realloc of another thread's block moves it here
        blocks[i] = realloc(blocks[i], n * 3);
        ASSERT_TRUE(check(blocks[i], n, static_cast<unsigned char>(i))) << i;
      }
      free(blocks[i]);
    }
    stage.store(2);
  });
  consumer.join();
  producer.join();  // its exit drains what the consumer handed back
  const Report r = Report::of_this_process();
  EXPECT_GE(r.get("thread-heaps", "remote_frees"), static_cast<std::uint64_t>(kBlocks / 2));
}

// Misuse: a pointer ctxalloc does not own, and a block freed twice. Reported and the
// process stops under CTXALLOC_MISUSE=abort; counted otherwise (meson runs this binary
// with CTXALLOC_MISUSE=count).
class EnvOverride {
 public:
  EnvOverride(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    setenv(name, value, 1);
  }
  ~EnvOverride() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

void free_foreign() {
  static char not_from_malloc[64];
  opaque_free(keep(not_from_malloc + 16));
}

void free_twice() {
  void* p = keep(malloc(64));
  opaque_free(p);
  opaque_free(p);
}

TEST(PreloadCApi, ForeignAndDoubleFreesAreReported) {
  {
    EnvOverride abort_policy("CTXALLOC_MISUSE", "abort");  // the death test's child reads it
    EXPECT_DEATH(free_foreign(), "foreign pointer");
    EXPECT_DEATH(free_twice(), "double free");
  }
  const std::uint64_t before = Report::of_this_process().get("total", "misuses");
  free_foreign();
  free_twice();
  EXPECT_EQ(Report::of_this_process().get("total", "misuses"), before + 2);
}

TEST(PreloadCApi, OperatorNewAndDeleteAreInterposedToo) {
  struct alignas(256) Wide {
    char bytes[300];
  };
  auto* w = new Wide[3];
  EXPECT_TRUE(aligned_to(w, 256));
  EXPECT_GE(malloc_usable_size(w), 3 * sizeof(Wide));  // ctxalloc owns it
  delete[] w;
  auto* i = new int(7);
  EXPECT_GT(malloc_usable_size(i), 0u);
  delete i;
  EXPECT_EQ(::operator new(opaque(SIZE_MAX / 2), std::nothrow), nullptr);
  EXPECT_THROW((void)::operator new(opaque(SIZE_MAX / 2)), std::bad_alloc);
}

TEST(PreloadCApi, NothingWasServedAsideInThisProcess) {
  // Allocations from inside the allocator (its lazy init calling a library that
  // allocates) would go to the bootstrap arena: none may happen in a healthy process.
  const Report r = Report::of_this_process();
  ASSERT_TRUE(r.found());
  EXPECT_EQ(r.get("front", "nested_calls"), 0u);
  EXPECT_EQ(r.get("front", "early_allocations"), 0u);
  EXPECT_EQ(r.get("front", "dropped_frees"), 0u);
}

}  // namespace
