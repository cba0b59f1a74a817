#include "ctxalloc/sources/mmap_source.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "support/kernel_probe.h"
#include "support/misuse_test_helpers.h"
#include "support/test_scale.h"

namespace ctxalloc {

template <>
struct TestPeer<MemoryMapSource> {
  static detail::MappingNode* node(MemoryMapSource& s, const void* start) {
    return s.index_.node_of(start);
  }
};

namespace {

using testing::is_mapped;
using testing::resident_pages;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;
constexpr std::size_t kGiB = 1024 * kMiB;

bool all_zero(const std::byte* p, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 512)
    if (p[i] != std::byte{0}) return false;
  return p[n - 1] == std::byte{0};
}

void fill(std::byte* p, std::size_t n, unsigned seed) {
  for (std::size_t i = 0; i < n; ++i)
    p[i] = static_cast<std::byte>((i * 131 + seed) & 0xFF);
}

bool same_fill(const std::byte* p, std::size_t n, unsigned seed) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != static_cast<std::byte>((i * 131 + seed) & 0xFF)) return false;
  return true;
}

// Pages of 2 MiB that no request can get: more than the pool and its overcommit allow.
std::uint64_t more_2m_pages_than_exist() {
  const HugePageCounts c = hugepage_counts(2 * kMiB);
  return c.total + c.surplus + testing::read_proc_number("/proc/sys/vm/nr_overcommit_hugepages") +
         1;
}

// Makes sure something is mapped right behind b (so it cannot grow in place): maps a
// page there, unless the kernel already placed another mapping there. Returns the page
// to unmap afterwards, or nullptr.
void* block_behind(const Block& b) {
  void* p =
      ::mmap(b.end(), 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) {
    EXPECT_EQ(errno, EEXIST);
    EXPECT_TRUE(is_mapped(b.end(), 4096));
    return nullptr;
  }
  EXPECT_EQ(p, b.end());
  return p;
}

void unblock(void* p) {
  if (p != nullptr) ::munmap(p, 4096);
}

TEST(MemoryMapSource, ObtainsPageRoundedZeroedWritableBlocksAndReleasesThem) {
  MemoryMapSource s;
  ASSERT_TRUE(s.config_error().ok()) << s.config_error().message();
  const Block b = s.obtain(10'000);
  ASSERT_TRUE(b) << s.last_error().message();
  EXPECT_EQ(b.size, 12'288u) << "rounded up to whole pages";
  EXPECT_TRUE(is_aligned(b.ptr, page_size()));
  EXPECT_TRUE(all_zero(b.ptr, b.size));
  std::memset(b.ptr, 0xA5, b.size);
  EXPECT_EQ(s.last_outcome(), MapOutcome::base_pages);
  EXPECT_TRUE(s.holds(b.ptr + 5000));
  EXPECT_EQ(s.block_of(b.ptr + b.size - 1), b);
  EXPECT_FALSE(s.holds(b.ptr + b.size));
  SourceStats st = s.stats();
  EXPECT_EQ(st.obtains, 1u);
  EXPECT_EQ(st.bytes_held, b.size);
  EXPECT_EQ(st.live_blocks(), 1u);
  EXPECT_GT(st.upstream_bytes, b.size) << "the index's pages count too";
  EXPECT_TRUE(s.check_invariants());
  s.release(b);
  EXPECT_FALSE(is_mapped(b.ptr, b.size));
  st = s.stats();
  EXPECT_EQ(st.releases, 1u);
  EXPECT_EQ(st.bytes_held, 0u);
  EXPECT_EQ(st.peak_bytes, b.size);
  EXPECT_TRUE(s.check_invariants());
}

TEST(MemoryMapSource, ObtainAlignedHonoursLargePowerOfTwoAlignments) {
  MemoryMapSource s;
  for (std::size_t align : {page_size(), 64 * kKiB, 2 * kMiB, 4 * kMiB, 64 * kMiB, kGiB}) {
    const Block b = s.obtain_aligned(3 * kMiB, align);
    ASSERT_TRUE(b) << align << ": " << s.last_error().message();
    EXPECT_TRUE(is_aligned(b.ptr, align)) << align;
    EXPECT_EQ(b.size, 3 * kMiB);
    // Only the block stays mapped: the over-mapped head and tail were given back.
    EXPECT_TRUE(is_mapped(b.ptr, b.size));
    if (align > page_size()) {
      EXPECT_FALSE(s.holds(b.ptr - 1));
      EXPECT_EQ(testing::resident_pages(b.ptr, b.size), 0u) << "nothing faulted in";
    }
    s.release(b);
  }
  EXPECT_EQ(s.stats().bytes_held, 0u);
  EXPECT_TRUE(s.check_invariants());
}

TEST(MemoryMapSource, RefusesBadSizesAndAlignmentsWithClearErrors) {
  MemoryMapSource s;
  EXPECT_FALSE(s.obtain(0));
  EXPECT_EQ(s.last_error().code(), SourceErrc::bad_size);
  for (std::size_t size : {SIZE_MAX, SIZE_MAX - 1}) {
    EXPECT_FALSE(s.obtain(size)) << size;
    EXPECT_EQ(s.last_error().code(), SourceErrc::bad_size) << s.last_error().message();
  }
  // Whole pages, but far beyond memory: the kernel says no.
  for (std::size_t size : {SIZE_MAX - 4095, SIZE_MAX / 2 + 1}) {
    EXPECT_FALSE(s.obtain(size));
    EXPECT_EQ(s.last_error().code(), SourceErrc::out_of_memory) << s.last_error().message();
    EXPECT_EQ(s.last_error().sys_errno(), ENOMEM);
  }
  EXPECT_FALSE(s.obtain_aligned(SIZE_MAX - 4095, 1 << 20)) << "size + alignment overflows";
  EXPECT_EQ(s.last_error().code(), SourceErrc::out_of_memory) << s.last_error().message();
  EXPECT_FALSE(s.obtain_aligned(4096, 3 * 4096));
  EXPECT_EQ(s.last_error().code(), SourceErrc::bad_alignment);
  EXPECT_FALSE(s.obtain_aligned(4096, 2 * kGiB));
  EXPECT_EQ(s.last_error().code(), SourceErrc::bad_alignment);
  EXPECT_NE(std::string(s.last_error().message()).find("power of two"), std::string::npos);
  EXPECT_EQ(s.stats().failures, 8u);
  EXPECT_EQ(s.stats().live_blocks(), 0u);
  EXPECT_TRUE(s.check_invariants());
}

TEST(MemoryMapSource, PopulateFaultsEveryPageInAndWithoutItNoneIs) {
  MapOptions o;
  o.populate = true;
  MemoryMapSource s(o);
  const Block b = s.obtain(1 * kMiB);
  ASSERT_TRUE(b) << s.last_error().message();
  EXPECT_EQ(resident_pages(b.ptr, b.size), b.size / page_size());
  EXPECT_GE(s.report(b.ptr).rss, b.size);
  MemoryMapSource lazy;
  const Block l = lazy.obtain(1 * kMiB);
  ASSERT_TRUE(l);
  EXPECT_EQ(resident_pages(l.ptr, l.size), 0u);
}

TEST(MemoryMapSource, LockDontdumpAndNoReserveShowInTheKernelsOwnFlags) {
  MapOptions o;
  o.lock = true;
  o.dontdump = true;
  o.no_reserve = true;
  MemoryMapSource s(o);
  const Block b = s.obtain(256 * kKiB);
  ASSERT_TRUE(b) << s.last_error().message();
  const MappingReport r = s.report(b.ptr);
  ASSERT_TRUE(r.found);
  EXPECT_LE(r.vma_begin, reinterpret_cast<std::uintptr_t>(b.ptr));
  EXPECT_GE(r.vma_end, reinterpret_cast<std::uintptr_t>(b.end()));
  EXPECT_TRUE(r.locked_flag);
  EXPECT_GE(r.locked_bytes, b.size);
  EXPECT_TRUE(r.dontdump_flag);
  EXPECT_TRUE(r.noreserve_flag);
  EXPECT_EQ(resident_pages(b.ptr, b.size), b.size / page_size()) << "mlock faults pages in";
  MemoryMapSource plain;
  const Block p = plain.obtain(256 * kKiB);
  const MappingReport pr = plain.report(p.ptr);
  EXPECT_FALSE(pr.locked_flag || pr.dontdump_flag || pr.noreserve_flag || pr.thp_advised);
  EXPECT_EQ(pr.backing(), PageKind::base);
}

TEST(MemoryMapSource, TransparentHugepagesAreAdvisedAlignedAndUsedByTheKernel) {
  if (thp_mode() == ThpMode::never || thp_mode() == ThpMode::unsupported)
    GTEST_SKIP() << "transparent hugepages are '" << to_string(thp_mode()) << "' on this kernel";
  MapOptions o;
  o.huge = HugePages::transparent;
  MemoryMapSource s(o);
  const std::uint64_t fallbacks = testing::vmstat("thp_fault_fallback");
  const Block b = s.obtain(4 * kMiB);
  ASSERT_TRUE(b) << s.last_error().message();
  EXPECT_TRUE(is_aligned(b.ptr, 2 * kMiB)) << "2 MiB and larger blocks are 2 MiB-aligned";
  EXPECT_EQ(s.last_outcome(), MapOutcome::transparent);
  EXPECT_EQ(s.map_stats().transparent, 1u);
  std::memset(b.ptr, 1, b.size);
  const MappingReport r = s.report(b.ptr);
  ASSERT_TRUE(r.found);
  EXPECT_TRUE(r.thp_advised);
  EXPECT_EQ(r.kernel_page_size, page_size());
  if (r.anon_huge_bytes == 0 && testing::vmstat("thp_fault_fallback") > fallbacks)
    GTEST_SKIP() << "the kernel tried and failed to find free 2 MiB pages (memory fragmented)";
  EXPECT_GE(r.anon_huge_bytes, 2 * kMiB);
  EXPECT_EQ(r.backing(), PageKind::transparent);
  // Small blocks are not over-aligned: nothing to gain below 2 MiB.
  const Block small = s.obtain(64 * kKiB);
  ASSERT_TRUE(small);
  EXPECT_EQ(small.size, 64 * kKiB);
}

TEST(MemoryMapSource, HugetlbPagesOfTwoMiBWhenReserved) {
  const HugePageCounts c = hugepage_counts(2 * kMiB);
  if (c.available() < 3)
    GTEST_SKIP() << "needs 3 free 2 MiB hugepages; " << c.free << " of " << c.total
                 << " are free and " << c.reserved
                 << " reserved (echo 64 > /proc/sys/vm/nr_hugepages)";
  MapOptions o;
  o.huge = HugePages::size_2m;
  o.fallback = HugeFallback::fail;
  o.populate = true;
  MemoryMapSource s(o);
  EXPECT_EQ(s.granularity(), 2 * kMiB);
  const Block b = s.obtain(3 * kMiB);
  if (!b && s.last_error().code() == SourceErrc::hugepages_unavailable)
    GTEST_SKIP() << "another process took the hugepages meanwhile: " << s.last_error().message();
  ASSERT_TRUE(b) << s.last_error().message();
  EXPECT_EQ(b.size, 4 * kMiB) << "rounded up to whole hugepages";
  EXPECT_TRUE(is_aligned(b.ptr, 2 * kMiB));
  EXPECT_EQ(s.last_outcome(), MapOutcome::hugetlb);
  EXPECT_EQ(s.map_stats().hugetlb, 1u);
  const MappingReport r = s.report(b.ptr);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.kernel_page_size, 2 * kMiB) << "the kernel's own page size for the mapping";
  EXPECT_TRUE(r.hugetlb_flag);
  EXPECT_GE(r.hugetlb_bytes, b.size) << "populated: every hugepage faulted in";
  EXPECT_EQ(r.backing(), PageKind::hugetlb);
  fill(b.ptr, b.size, 7);
  EXPECT_TRUE(same_fill(b.ptr, b.size, 7));
  s.release(b);
  EXPECT_TRUE(s.check_invariants());
}

TEST(MemoryMapSource, FallsBackToTransparentHugepagesWhenTooFewAreFreeAndSaysSo) {
  MapOptions o;
  o.huge = HugePages::size_2m;  // fallback: transparent (the default)
  MemoryMapSource s(o);
  const std::size_t size = more_2m_pages_than_exist() * 2 * kMiB;
  const Block b = s.obtain(size);
  ASSERT_TRUE(b) << s.last_error().message();
  EXPECT_EQ(b.size, size);
  EXPECT_TRUE(is_aligned(b.ptr, 2 * kMiB)) << "aligned for the kernel's 2 MiB THP";
  EXPECT_EQ(s.last_outcome(), MapOutcome::fell_back_to_transparent);
  EXPECT_EQ(s.outcome_of(b.ptr + size / 2), MapOutcome::fell_back_to_transparent);
  EXPECT_EQ(s.map_stats().fallbacks_to_transparent, 1u);
  EXPECT_EQ(s.map_stats().hugetlb, 0u);
  const MappingReport r = s.report(b.ptr);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.kernel_page_size, page_size()) << "not hugetlb, as the kernel says";
  EXPECT_FALSE(r.hugetlb_flag);
  EXPECT_TRUE(r.thp_advised);
  s.release(b);
}

TEST(MemoryMapSource, FailsWithHugepagesUnavailableWhenTheFallbackIsOff) {
  MapOptions o;
  o.huge = HugePages::size_2m;
  o.fallback = HugeFallback::fail;
  MemoryMapSource s(o);
  EXPECT_FALSE(s.obtain(more_2m_pages_than_exist() * 2 * kMiB));
  const SourceError& e = s.last_error();
  EXPECT_EQ(e.code(), SourceErrc::hugepages_unavailable) << e.message();
  EXPECT_EQ(e.sys_errno(), ENOMEM);
  EXPECT_NE(std::string(e.message()).find("2 MiB hugepages"), std::string::npos) << e.message();
  EXPECT_NE(std::string(e.message()).find("nr_hugepages"), std::string::npos) << e.message();
  EXPECT_EQ(s.stats().failures, 1u);
  EXPECT_EQ(s.stats().live_blocks(), 0u);
  EXPECT_TRUE(s.check_invariants());
}

TEST(MemoryMapSource, OneGiBHugetlbPagesWhenReserved) {
  const HugePageCounts c = hugepage_counts(kGiB);
  if (!c.supported) GTEST_SKIP() << "the kernel has no 1 GiB hugepages";
  if (c.available() == 0)
    GTEST_SKIP() << "no free 1 GiB hugepages (" << c.total
                 << " reserved): this machine cannot reserve them (writing nr_hugepages of "
                    "hugepages-1048576kB gets ENOMEM)";
  MapOptions o;
  o.huge = HugePages::size_1g;
  o.fallback = HugeFallback::fail;
  MemoryMapSource s(o);
  const Block b = s.obtain(1);
  if (!b && s.last_error().code() == SourceErrc::hugepages_unavailable)
    GTEST_SKIP() << "another process took the page meanwhile";
  ASSERT_TRUE(b) << s.last_error().message();
  EXPECT_EQ(b.size, kGiB);
  EXPECT_TRUE(is_aligned(b.ptr, kGiB));
  std::memset(b.ptr, 1, 4096);
  EXPECT_EQ(s.report(b.ptr).kernel_page_size, kGiB);
}

TEST(MemoryMapSource, OneGiBPagesUnavailableIsAClearErrorOrACountedFallback) {
  const HugePageCounts c = hugepage_counts(kGiB);
  if (c.available() > 0)
    GTEST_SKIP() << c.available() << " free 1 GiB hugepages here: the unavailable path is "
                 << "tested where there are none";
  MapOptions o;
  o.huge = HugePages::size_1g;
  o.fallback = HugeFallback::fail;
  MemoryMapSource strict(o);
  EXPECT_FALSE(strict.obtain(1));
  const SourceErrc want =
      c.supported ? SourceErrc::hugepages_unavailable : SourceErrc::huge_size_unsupported;
  EXPECT_EQ(strict.last_error().code(), want) << strict.last_error().message();
  EXPECT_NE(std::string(strict.last_error().message()).find("1 GiB"), std::string::npos);
  o.fallback = HugeFallback::transparent;
  MemoryMapSource lenient(o);
  const Block b = lenient.obtain(1);
  ASSERT_TRUE(b) << lenient.last_error().message();
  EXPECT_EQ(b.size, kGiB) << "still rounded to the granularity asked for";
  EXPECT_TRUE(is_aligned(b.ptr, kGiB));
  EXPECT_EQ(lenient.last_outcome(), MapOutcome::fell_back_to_transparent);
  EXPECT_EQ(lenient.map_stats().fallbacks_to_transparent, 1u);
  EXPECT_EQ(lenient.report(b.ptr).kernel_page_size, page_size());
}

TEST(MemoryMapSource, ContradictoryOptionsAreRefusedAtConfiguration) {
  MapOptions o;
  o.huge = HugePages::size_2m;
  o.no_reserve = true;
  const SourceError e = MemoryMapSource::validate(o);
  EXPECT_EQ(e.code(), SourceErrc::bad_option);
  EXPECT_NE(std::string(e.message()).find("SIGBUS"), std::string::npos) << e.message();
  MemoryMapSource s(o);
  EXPECT_FALSE(s.config_error().ok());
  EXPECT_FALSE(s.obtain(4096));
  EXPECT_EQ(s.last_error().code(), SourceErrc::bad_option);
  EXPECT_EQ(s.stats().failures, 1u);
  o.huge = static_cast<HugePages>(9);
  o.no_reserve = false;
  EXPECT_EQ(MemoryMapSource::validate(o).code(), SourceErrc::bad_option);
  EXPECT_TRUE(MemoryMapSource::validate(MapOptions{}).ok());
}

TEST(MemoryMapSource, ResizeShrinksInPlaceGrowsInPlaceAndMovesWithoutCopying) {
  MemoryMapSource s;
  Block b = s.obtain(1 * kMiB);
  ASSERT_TRUE(b);
  fill(b.ptr, 4096, 1);
  std::byte* const at = b.ptr;
  b = s.resize(b, 100, 1, Move::forbidden);
  ASSERT_EQ(b.ptr, at);
  EXPECT_EQ(b.size, 4096u);
  EXPECT_FALSE(is_mapped(at + 4096, 4096)) << "the tail went back to the kernel";
  // The range behind it is free again (we just gave it back): growing stays in place.
  b = s.resize(b, 1 * kMiB, 1, Move::forbidden);
  ASSERT_EQ(b.ptr, at) << s.last_error().message();
  EXPECT_EQ(b.size, 1 * kMiB);
  EXPECT_TRUE(same_fill(b.ptr, 4096, 1));
  EXPECT_TRUE(all_zero(b.ptr + 4096, b.size - 4096));
  // Something mapped right behind it: in place is impossible.
  void* blocker = block_behind(b);
  EXPECT_FALSE(s.resize(b, 2 * kMiB, 1, Move::forbidden));
  EXPECT_EQ(s.last_error().code(), SourceErrc::would_move);
  EXPECT_TRUE(same_fill(b.ptr, 4096, 1)) << "a failed resize leaves the block as it was";
  const Block moved = s.resize(b, 2 * kMiB, 1, Move::allowed);
  ASSERT_TRUE(moved) << s.last_error().message();
  EXPECT_NE(moved.ptr, at);
  EXPECT_TRUE(same_fill(moved.ptr, 4096, 1));
  EXPECT_FALSE(s.holds(at));
  EXPECT_EQ(s.map_stats().moved_by_remap, 1u);
  EXPECT_EQ(s.map_stats().resized_in_place, 2u);
  EXPECT_EQ(s.stats().bytes_held, 2 * kMiB);
  EXPECT_TRUE(s.check_invariants());
  unblock(blocker);
}

TEST(MemoryMapSource, AMovedBlockKeepsItsLargeAlignment) {
  MemoryMapSource s;
  Block b = s.obtain_aligned(4 * kMiB, 4 * kMiB);
  ASSERT_TRUE(b);
  fill(b.ptr, 8192, 3);
  void* blocker = block_behind(b);
  const Block g = s.resize(b, 12 * kMiB, 4 * kMiB, Move::allowed);
  ASSERT_TRUE(g) << s.last_error().message();
  EXPECT_TRUE(is_aligned(g.ptr, 4 * kMiB));
  EXPECT_TRUE(same_fill(g.ptr, 8192, 3));
  EXPECT_EQ(s.block_of(g.ptr + 11 * kMiB), g);
  EXPECT_TRUE(s.check_invariants());
  unblock(blocker);
}

TEST(MemoryMapSource, HugetlbBlocksGrowByAFixedMappingBehindThemOrByCopying) {
  if (hugepage_counts(2 * kMiB).available() < 6) GTEST_SKIP() << "needs 6 free 2 MiB hugepages";
  MapOptions o;
  o.huge = HugePages::size_2m;
  o.fallback = HugeFallback::fail;
  MemoryMapSource s(o);
  Block b = s.obtain(4 * kMiB);
  if (!b) GTEST_SKIP() << s.last_error().message();
  fill(b.ptr, 2 * kMiB, 5);
  std::byte* const at = b.ptr;
  b = s.resize(b, 2 * kMiB, 1, Move::forbidden);
  ASSERT_EQ(b.ptr, at);
  b = s.resize(b, 4 * kMiB, 1, Move::forbidden);  // mremap cannot: a second mapping behind it
  if (!b && s.last_error().code() != SourceErrc::would_move)
    GTEST_SKIP() << "hugepages taken meanwhile: " << s.last_error().message();
  ASSERT_EQ(b.ptr, at) << s.last_error().message();
  EXPECT_EQ(b.size, 4 * kMiB);
  EXPECT_TRUE(same_fill(b.ptr, 2 * kMiB, 5));
  EXPECT_EQ(s.report(b.ptr + 3 * kMiB).kernel_page_size, 2 * kMiB);
  void* blocker = block_behind(b);
  const Block moved = s.resize(b, 6 * kMiB, 1, Move::allowed);
  if (!moved) GTEST_SKIP() << "hugepages taken meanwhile: " << s.last_error().message();
  EXPECT_NE(moved.ptr, at);
  EXPECT_TRUE(same_fill(moved.ptr, 2 * kMiB, 5));
  EXPECT_EQ(s.map_stats().moved_by_copy, 1u);
  EXPECT_TRUE(s.check_invariants());
  s.release(moved);
  EXPECT_FALSE(is_mapped(moved.ptr, 2 * kMiB));
  unblock(blocker);
}

TEST(MemoryMapSource, DestructionUnmapsEverythingStillHeld) {
  Block a, b;
  {
    MemoryMapSource s;
    a = s.obtain(64 * kKiB);
    b = s.obtain_aligned(2 * kMiB, 2 * kMiB);
    ASSERT_TRUE(a && b);
  }
  EXPECT_FALSE(is_mapped(a.ptr, a.size));
  EXPECT_FALSE(is_mapped(b.ptr, b.size));
}

TEST(MemoryMapSource, ManyBlocksInRandomOrderAgreeWithAModel) {
  MemoryMapSource s;
  std::map<std::uintptr_t, std::size_t> model;  // start -> size
  std::mt19937_64 rng(testing::test_seed(0x5EED));
  const std::uint64_t ops = testing::scaled(40'000);
  for (std::uint64_t i = 0; i < ops; ++i) {
    if (model.size() < 300 && (model.empty() || rng() % 2 == 0)) {
      const std::size_t size = 1 + rng() % (256 * kKiB);
      const std::size_t align = std::size_t{1} << (rng() % 23);
      const Block b = s.obtain_aligned(size, align);
      ASSERT_TRUE(b) << s.last_error().message();
      ASSERT_TRUE(is_aligned(b.ptr, align));
      ASSERT_GE(b.size, size);
      const auto key = reinterpret_cast<std::uintptr_t>(b.ptr);
      auto next = model.lower_bound(key);
      ASSERT_TRUE(next == model.end() || key + b.size <= next->first) << "overlap";
      if (next != model.begin()) {
        ASSERT_LE(std::prev(next)->first + std::prev(next)->second, key);
      }
      model.emplace(key, b.size);
    } else {
      auto it = model.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(rng() % model.size()));
      const auto* p = reinterpret_cast<std::byte*>(it->first);
      const std::size_t inner = rng() % it->second;
      ASSERT_EQ(s.block_of(p + inner), (Block{const_cast<std::byte*>(p), it->second}));
      s.release(Block{const_cast<std::byte*>(p), it->second});
      model.erase(it);
    }
    if (i % 2000 == 0) {
      ASSERT_TRUE(s.check_invariants()) << s.check_invariants().error();
    }
  }
  EXPECT_EQ(s.stats().live_blocks(), model.size());
  EXPECT_EQ(s.stats().misuses, 0u);
  ASSERT_TRUE(s.check_invariants());
}

TEST(MemoryMapSource, CheckInvariantsReportsACorruptedIndex) {
  MemoryMapSource s;
  const Block a = s.obtain(64 * kKiB);
  const Block b = s.obtain(64 * kKiB);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(s.check_invariants());
  const Block low = a.ptr < b.ptr ? a : b;
  const Block high = a.ptr < b.ptr ? b : a;
  detail::MappingNode* n = TestPeer<MemoryMapSource>::node(s, low.ptr);
  ASSERT_NE(n, nullptr);
  n->m.size = static_cast<std::size_t>(high.end() - low.ptr);  // now it covers the other
  CheckResult c = s.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("overlaps"), std::string::npos) << c.error();
  n->m.size = low.size;
  ASSERT_TRUE(s.check_invariants());
  n->red = 1;  // one of two nodes: whichever it is, red is now wrong somewhere
  TestPeer<MemoryMapSource>::node(s, high.ptr)->red = 1;
  c = s.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("red"), std::string::npos) << c.error();
}

TEST(MemoryMapSource, CheckInvariantsNoticesABlockUnmappedBehindItsBack) {
  MemoryMapSource s;
  const Block b = s.obtain(64 * kKiB);
  ASSERT_TRUE(b);
  ASSERT_EQ(::munmap(b.ptr + 4096, 4096), 0);
  const CheckResult c = s.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("no longer mapped"), std::string::npos) << c.error();
}

// Runs in a child: without CAP_IPC_LOCK, RLIMIT_MEMLOCK binds even root. Returns the
// exit code: 0 when the failure was reported as it should be.
int lock_failure_child() {
  if (!testing::drop_ipc_lock_capability()) return 10;
  rlimit lim{};
  lim.rlim_cur = lim.rlim_max = 64 * 1024;
  if (::setrlimit(RLIMIT_MEMLOCK, &lim) != 0) return 11;
  MapOptions o;
  o.lock = true;
  MemoryMapSource s(o);
  if (s.obtain(4 * kMiB)) return 12;
  if (s.last_error().code() != SourceErrc::lock_failed) return 13;
  if (std::string(s.last_error().message()).find("RLIMIT_MEMLOCK") == std::string::npos) return 14;
  if (s.stats().live_blocks() != 0 || s.stats().bytes_held != 0) return 15;
  return s.check_invariants() ? 0 : 16;
}

TEST(MemoryMapSource, LockFailureIsReportedAndLeavesNothingMapped) {
  EXPECT_EXIT(std::_Exit(lock_failure_child()), ::testing::ExitedWithCode(0), "");
}

TEST(MemoryMapSourceMisuse, DoubleReleaseIsReportedAndIgnored) {
  MemoryMapSource s;
  const Block b = s.obtain(8192);
  s.release(b);
  testing::expect_misuse([&] { s.release(b); }, "double free in mmap_source.release");
  EXPECT_EQ(s.stats().releases, 1u);
  EXPECT_EQ(s.stats().misuses, 1u);
  EXPECT_EQ(s.last_error().code(), SourceErrc::misuse);
  EXPECT_TRUE(s.check_invariants());
}

TEST(MemoryMapSourceMisuse, ForeignAndInteriorPointersAreReportedAndNotUnmapped) {
  MemoryMapSource s;
  const Block b = s.obtain(8192);
  void* other = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  testing::expect_misuse(
      [&] {
        s.release(Block{static_cast<std::byte*>(other), 4096});
      },
      "foreign pointer in mmap_source.release");
  EXPECT_TRUE(is_mapped(other, 4096)) << "someone else's mapping is left alone";
  testing::expect_misuse(
      [&] {
        s.release(Block{b.ptr + 4096, 4096});
      },
      "foreign pointer in mmap_source.release");
  EXPECT_TRUE(is_mapped(b.ptr, b.size));
  ::munmap(other, 4096);
}

TEST(MemoryMapSourceMisuse, WrongSizeIsReportedAndNothingIsUnmapped) {
  MemoryMapSource s;
  const Block b = s.obtain(3 * 4096);
  testing::expect_misuse(
      [&] {
        s.release(Block{b.ptr, 4096});
      },
      "wrong size in mmap_source.release");
  testing::expect_misuse(
      [&] {
        s.release(Block{b.ptr, 4 * 4096});
      },
      "wrong size in mmap_source.release");
  EXPECT_TRUE(is_mapped(b.ptr, b.size));
  s.release(Block{b.ptr, 2 * 4096 + 1});  // rounds up to the block: accepted
  EXPECT_EQ(s.stats().live_blocks(), 0u);
}

}  // namespace
}  // namespace ctxalloc
