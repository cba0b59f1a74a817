// libctxalloc_new: operator new/delete in every form through the switchable allocator,
// [new.delete] semantics (the new_handler loop, bad_alloc, nothrow), and the front's own
// paths (bootstrap arena, late calls, fork) in a program that links the library.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ctxalloc/replace/detail/bootstrap.h"
#include "ctxalloc/replace/detail/front.h"
#include "ctxalloc/replace/process_stats.h"
#include "ctxalloc/switchable/owner.h"
#include "ctxalloc/switchable/switchable.h"
#include "report.h"

namespace ctxalloc {
namespace {

using replace::detail::bootstrap_arena;
using replace::detail::BootstrapArena;
using replace::detail::t_front;

template <class T>
T* keep(T* p) {
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

std::size_t opaque(std::size_t v) {
  volatile std::size_t x = v;
  return x;
}

OwnerKind kind_of(const void* p) {
  const OwnerTag* t = SegmentMap::lookup(p);
  return t == nullptr ? owner_kind::region : t->kind;
}

struct alignas(64) Line64 {
  char b[64];
};
struct alignas(4096) Page {
  char b[100];
};
struct alignas(2097152) Huge {
  char b[10];
};

TEST(NewDelete, EveryFormIsServedByCtxalloc) {
  std::vector<std::pair<void*, std::size_t>> got;  // pointer, alignment
  auto* i = keep(new int(5));
  auto* arr = keep(new int[100]);
  auto* nt = keep(new (std::nothrow) double(1.5));
  auto* nta = keep(new (std::nothrow) char[3000]);
  auto* l = keep(new Line64);
  auto* la = keep(new Line64[7]);
  auto* p = keep(new Page);
  auto* pa = keep(new (std::nothrow) Page[2]);
  auto* h = keep(new Huge);
  auto* ha = keep(new (std::nothrow) Huge[2]);
  got = {{i, 16},
         {arr, 16},
         {nt, 16},
         {nta, 16},
         {l, 64},
         {la, 64},
         {p, 4096},
         {pa, 4096},
         {h, std::size_t{1} << 21},
         {ha, std::size_t{1} << 21}};
  for (auto [ptr, align] : got) {
    ASSERT_NE(ptr, nullptr);
    EXPECT_TRUE(owns(ptr)) << "not from ctxalloc: " << ptr;
    EXPECT_TRUE(is_aligned(ptr, align)) << ptr << " " << align;
  }
  delete i;  // sized delete: -fsized-deallocation is on in C++14 and later
  delete[] arr;
  delete nt;
  delete[] nta;
  delete l;
  delete[] la;
  delete p;
  delete[] pa;
  delete h;
  delete[] ha;
  // The forms a new-expression does not call directly; each block must be free after.
  std::vector<std::uintptr_t> freed;
  auto note = [&](void* x) { freed.push_back(reinterpret_cast<std::uintptr_t>(x)); };
  void* a = ::operator new (100, std::align_val_t{256});
  note(a);
  ::operator delete (a, 100, std::align_val_t{256});
  void* b = ::operator new[](300, std::align_val_t{128}, std::nothrow);
  note(b);
  ::operator delete[](b, std::align_val_t{128}, std::nothrow);
  void* c = ::operator new(50);
  note(c);
  ::operator delete(c, std::nothrow);
  void* d = ::operator new[](70);
  note(d);
  ::operator delete[](d, 70);
  void* e = ::operator new (40, std::align_val_t{32});
  note(e);
  ::operator delete (e, std::align_val_t{32});
  void* f = ::operator new[](40, std::align_val_t{32});
  note(f);
  ::operator delete[](f, 40, std::align_val_t{32});
  for (std::uintptr_t x : freed) {
    EXPECT_NE(x, 0u);
    EXPECT_EQ(usable_size(reinterpret_cast<void*>(x)), 0u) << "not freed";
  }
}

TEST(NewDelete, ZeroSizeNewGivesDistinctPointers) {
  std::set<void*> seen;
  for (int k = 0; k < 50; ++k) {
    void* p = ::operator new(opaque(0));
    EXPECT_TRUE(seen.insert(p).second);
    EXPECT_TRUE(owns(p));
  }
  for (void* p : seen)
    ::operator delete(p);
}

TEST(NewDelete, ExhaustionThrowsBadAllocWithoutAHandlerAndNothrowGivesNull) {
  ASSERT_EQ(std::get_new_handler(), nullptr);
  EXPECT_THROW((void)::operator new(opaque(SIZE_MAX / 2)), std::bad_alloc);
  EXPECT_THROW((void)::operator new[](opaque(SIZE_MAX / 2)), std::bad_alloc);
  EXPECT_THROW((void)::operator new (16, std::align_val_t{opaque(3)}), std::bad_alloc);
  EXPECT_THROW((void)::operator new (16, std::align_val_t{std::size_t{1} << 40}), std::bad_alloc);
  EXPECT_EQ(::operator new(opaque(SIZE_MAX / 2), std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](opaque(SIZE_MAX / 2), std::align_val_t{64}, std::nothrow), nullptr);
  EXPECT_EQ(::operator new (16, std::align_val_t{opaque(24)}, std::nothrow), nullptr);
}

std::atomic<int> g_handler_calls{0};

TEST(NewDelete, TheNewHandlerRunsUntilItRemovesItself) {
  g_handler_calls = 0;
  const std::uint64_t before = process_stats().new_handler_calls;
  std::set_new_handler([] {
    if (++g_handler_calls == 3) std::set_new_handler(nullptr);
  });
  EXPECT_THROW((void)::operator new(opaque(SIZE_MAX / 2)), std::bad_alloc);
  EXPECT_EQ(g_handler_calls.load(), 3);
  EXPECT_EQ(process_stats().new_handler_calls, before + 3);
  // The nothrow form runs the same loop and returns null at its end.
  g_handler_calls = 0;
  std::set_new_handler([] {
    if (++g_handler_calls == 2) std::set_new_handler(nullptr);
  });
  EXPECT_EQ(::operator new(opaque(SIZE_MAX / 2), std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls.load(), 2);
  EXPECT_EQ(std::get_new_handler(), nullptr);
}

TEST(NewDelete, NothrowNewReturnsNullWhateverTheHandlerThrows) {
  std::set_new_handler([] { throw std::bad_alloc(); });
  EXPECT_EQ(::operator new(opaque(SIZE_MAX / 2), std::nothrow), nullptr);
  std::set_new_handler([] { throw 42; });
  EXPECT_EQ(::operator new[](opaque(SIZE_MAX / 2), std::align_val_t{64}, std::nothrow), nullptr);
  // The throwing form lets the handler's exception through.
  EXPECT_THROW((void)::operator new(opaque(SIZE_MAX / 2)), int);
  std::set_new_handler(nullptr);
}

// Real exhaustion: the address space is capped just above what the process uses, a
// reserve is taken, and the handler frees it; the request that failed then succeeds.
void* g_reserve = nullptr;

std::size_t address_space_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0;
  statm >> pages;
  return pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

int run_exhaustion_child() {
  constexpr std::size_t kReserve = std::size_t{48} << 20;
  constexpr std::size_t kAsk = std::size_t{40} << 20;
  const rlimit cap{address_space_bytes() + (std::size_t{64} << 20), RLIM_INFINITY};
  if (setrlimit(RLIMIT_AS, &cap) != 0) return 10;
  g_reserve = ::operator new(kReserve);
  std::memset(g_reserve, 1, kReserve);
  static int calls = 0;
  std::set_new_handler([] {
    ++calls;
    ::operator delete(g_reserve);  // a large block: unmapped at once
    g_reserve = nullptr;
    std::set_new_handler(nullptr);
  });
  void* p = nullptr;
  try {
    p = ::operator new(kAsk);
  } catch (const std::bad_alloc&) {
    return 11;
  }
  std::memset(p, 2, kAsk);
  return calls == 1 && g_reserve == nullptr ? 0 : 12;
}

TEST(NewDelete, AHandlerThatFreesMemoryLetsTheFailedRequestSucceed) {
  EXPECT_EXIT(std::exit(run_exhaustion_child()), ::testing::ExitedWithCode(0), "");
}

TEST(NewDelete, NewFollowsTheThreadsMode) {
  {
    ModeScope scope(Mode::global);
    auto* g = keep(new int[10]);
    EXPECT_EQ(kind_of(g), owner_kind::global_heap);
    delete[] g;
  }
  {
    ModeScope scope(Mode::thread);
    auto* t = keep(new int[10]);
    EXPECT_EQ(kind_of(t), owner_kind::size_class);
    EXPECT_EQ(ThreadHeap::of_tag(SegmentMap::lookup(t)), current_thread_heap());
    delete[] t;
  }
  // Threads start in thread mode: the library configures it before the first new.
  std::thread([] { EXPECT_EQ(current_mode(), Mode::thread); }).join();
}

TEST(NewDelete, DeletesFromAnotherThreadGoBackToTheOwner) {
  constexpr int kBlocks = 5000;
  std::vector<std::string*> strings(kBlocks);
  std::atomic<int> stage{0};
  std::thread owner([&] {
    for (int k = 0; k < kBlocks; ++k)
      strings[k] = new std::string(static_cast<std::size_t>(40 + k % 200), 'a' + k % 26);
    stage = 1;
    while (stage.load() != 2)
      std::this_thread::yield();
  });
  const std::uint64_t before = process_stats().remote_frees;
  std::thread other([&] {
    while (stage.load() != 1)
      std::this_thread::yield();
    for (int k = 0; k < kBlocks; ++k) {
      ASSERT_EQ(strings[k]->size(), static_cast<std::size_t>(40 + k % 200));
      ASSERT_EQ((*strings[k])[0], 'a' + k % 26);
      delete strings[k];
    }
    stage = 2;
  });
  other.join();
  owner.join();
  EXPECT_GE(process_stats().remote_frees - before, static_cast<std::uint64_t>(kBlocks));
}

TEST(NewDelete, TheReportCountsTheseAllocations) {
  const ProcessStats before = process_stats();
  std::vector<std::unique_ptr<int>> v;
  for (int k = 0; k < 1000; ++k)
    v.push_back(std::make_unique<int>(k));
  v.clear();
  const ProcessStats after = process_stats();
  EXPECT_GE(after.allocations() - before.allocations(), 1000u);
  EXPECT_GE(after.frees() - before.frees(), 1000u);
  EXPECT_EQ(after.default_mode, Mode::thread);
  const auto r = testing::Report::of_this_process([](int fd) { ctxalloc_write_stats(fd); });
  ASSERT_TRUE(r.found());
  EXPECT_GE(r.get("total", "allocations"), after.allocations());
  EXPECT_EQ(r.mode(), "thread");
}

// ------------------------------------------------------------------ the front's paths

TEST(Front, ACallFromInsideTheAllocatorIsServedByTheBootstrapArena) {
  std::thread([] {
    delete keep(new int(1));  // registers the thread
    const auto before = bootstrap_arena().counts();
    // What a library function called from inside the allocator would see.
    t_front.word.store(replace::detail::kBusy);
    void* p = ::operator new(100);
    void* q = ::operator new (64, std::align_val_t{256});
    t_front.word.store(replace::detail::kIdle);
    EXPECT_TRUE(bootstrap_arena().contains(p));
    EXPECT_TRUE(bootstrap_arena().contains(q));
    EXPECT_TRUE(is_aligned(q, 256));
    EXPECT_EQ(replace::detail::usable_size(p), 100u);
    std::memset(p, 7, 100);
    ::operator delete(q);  // the last block: the arena takes its bytes back
    ::operator delete(p);
    const auto after = bootstrap_arena().counts();
    EXPECT_EQ(after.allocations - before.allocations, 2u);
    EXPECT_EQ(after.frees - before.frees, 2u);
    EXPECT_EQ(after.in_use, before.in_use);
  }).join();
}

TEST(Front, CallsAfterTheThreadsExitHandlerStillWork) {
  const std::uint64_t before = process_stats().late_operations;
  std::thread([] {
    delete keep(new int(1));
    t_front.word.store(replace::detail::kExited);  // as after the thread's exit handler
    auto* p = keep(new std::string(500, 'x'));
    EXPECT_TRUE(owns(p));
    delete p;
  }).join();
  EXPECT_GE(process_stats().late_operations - before, 2u);
}

TEST(Front, TheForkChildAbandonsTheHeapsOfThreadsItDoesNotHave) {
  // A thread keeps its heap and some blocks; the child frees them and must find the
  // heap abandoned (frees go straight into it) and reusable by a new thread.
  std::vector<int*> blocks(2000);
  std::atomic<int> stage{0};
  std::thread holder([&] {
    for (auto& b : blocks)
      b = new int[20];
    stage = 1;
    while (stage.load() != 2)
      std::this_thread::yield();
    for (auto* b : blocks)
      delete[] b;
  });
  while (stage.load() != 1)
    std::this_thread::yield();
  const HeapCensus parent = heap_census();
  const pid_t pid = fork();
  if (pid == 0) {
    int rc = 0;
    const HeapCensus child = heap_census();
    if (child.abandoned < parent.abandoned + 1) rc |= 1;  // the holder's heap at least
    for (auto* b : blocks)
      delete[] b;
    std::thread([&] {
      // Adopts an abandoned heap and works normally.
      for (int k = 0; k < 10000; ++k)
        delete[] keep(new int[k % 50 + 1]);
      if (current_thread_heap() == nullptr) rc |= 2;
    }).join();
    if (process_stats().misuses != 0) rc |= 4;
    _exit(rc);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  stage = 2;
  holder.join();
}

// ------------------------------------------------------------------ the bootstrap arena

TEST(BootstrapArena, AlignsRollsTheLastBlockBackAndRefusesWhenFull) {
  auto arena = std::make_unique<BootstrapArena>();
  void* a = arena->allocate(10, 1);
  void* b = arena->allocate(100, 512);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(is_aligned(a, 16));
  EXPECT_TRUE(is_aligned(b, 512));
  EXPECT_TRUE(arena->contains(a) && arena->contains(b));
  int local = 0;
  EXPECT_FALSE(arena->contains(&local));
  EXPECT_EQ(arena->size_of(a), 10u);
  EXPECT_EQ(arena->size_of(b), 100u);
  const std::size_t used = arena->counts().in_use;
  arena->deallocate(a);  // not the last block: its bytes stay used
  EXPECT_EQ(arena->counts().in_use, used);
  arena->deallocate(b);  // the last: rolled back to where it began
  EXPECT_LT(arena->counts().in_use, used);
  EXPECT_EQ(arena->counts().reclaimed, 1u);
  EXPECT_EQ(arena->allocate(BootstrapArena::kBytes, 16), nullptr);
  EXPECT_EQ(arena->allocate(16, BootstrapArena::kMaxAlign * 2), nullptr);
  std::size_t n = 0;
  while (arena->allocate(1000, 16) != nullptr)
    ++n;
  EXPECT_GT(n, 200u);
  EXPECT_EQ(arena->counts().refused, 3u);
}

TEST(BootstrapArena, ConcurrentCallersGetDisjointBlocks) {
  auto arena = std::make_unique<BootstrapArena>();
  std::vector<unsigned char*> got[2];
  auto run = [&](int t) {
    while (auto* p = static_cast<unsigned char*>(arena->allocate(48, 16))) {
      std::memset(p, t + 1, 48);
      got[t].push_back(p);
    }
  };
  std::thread t0(run, 0), t1(run, 1);
  t0.join();
  t1.join();
  for (int t = 0; t < 2; ++t) {
    for (auto* p : got[t]) {
      for (int k = 0; k < 48; ++k)
        ASSERT_EQ(p[k], t + 1) << "blocks overlap";
    }
  }
  EXPECT_GT(got[0].size() + got[1].size(), 3000u);
}

}  // namespace
}  // namespace ctxalloc
