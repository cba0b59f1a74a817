#include "ctxalloc/sources/region_source.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "support/misuse_test_helpers.h"
#include "support/test_scale.h"

namespace ctxalloc {

template <>
struct TestPeer<RegionSource> {
  static void flip_start(RegionSource& s, std::size_t i) { s.start_[i / 64] ^= 1ULL << (i % 64); }
  static void flip_used(RegionSource& s, std::size_t i) { s.used_[i / 64] ^= 1ULL << (i % 64); }
};

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kMiB = 1024 * 1024;

// A region inside an mmap with an inaccessible guard page on each side: any access
// outside [data(), data() + size) faults.
class GuardedRegion {
 public:
  explicit GuardedRegion(std::size_t size, std::size_t align = kPage) : size_(size) {
    span_ = size + align + 2 * kPage;
    base_ = static_cast<std::byte*>(
        ::mmap(nullptr, span_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    data_ = base_ + kPage + padding_for(reinterpret_cast<std::uintptr_t>(base_ + kPage), align);
    ::mprotect(data_, size_, PROT_READ | PROT_WRITE);
  }
  ~GuardedRegion() { ::munmap(base_, span_); }
  Block block() const { return Block{data_, size_}; }
  std::byte* data() const { return data_; }

 private:
  std::size_t size_, span_;
  std::byte* base_;
  std::byte* data_;
};

TEST(RegionSource, HandsOutPageAlignedPiecesLowestFirstAfterItsBitmaps) {
  GuardedRegion r(1 * kMiB);
  RegionSource s(r.block());
  ASSERT_TRUE(s.config_error().ok()) << s.config_error().message();
  // 256 pages: 64 bytes of bitmaps take the first page, 255 granules remain.
  EXPECT_EQ(s.usable().ptr, r.data() + kPage);
  EXPECT_EQ(s.capacity(), 255 * kPage);
  const Block a = s.obtain(1);
  const Block b = s.obtain(kPage + 1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a.ptr, r.data() + kPage);
  EXPECT_EQ(a.size, kPage);
  EXPECT_EQ(b.ptr, a.ptr + kPage);
  EXPECT_EQ(b.size, 2 * kPage);
  std::memset(a.ptr, 0xAA, a.size);
  std::memset(b.ptr, 0xBB, b.size);
  s.release(a);
  const Block c = s.obtain(kPage);
  EXPECT_EQ(c.ptr, a.ptr) << "first fit from the lowest free granule";
  EXPECT_EQ(static_cast<unsigned char>(b.ptr[0]), 0xBBu);
  const SourceStats st = s.stats();
  EXPECT_EQ(st.obtains, 3u);
  EXPECT_EQ(st.releases, 1u);
  EXPECT_EQ(st.bytes_held, 3 * kPage);
  EXPECT_EQ(st.capacity, 255 * kPage);
  EXPECT_EQ(st.upstream_bytes, 1 * kMiB);
  EXPECT_TRUE(s.contains(b.ptr + 100));
  EXPECT_FALSE(s.contains(r.data()));
  EXPECT_TRUE(s.check_invariants());
}

TEST(RegionSource, FillsItsCapacityExactlyAndCoalescesWhatComesBack) {
  GuardedRegion r(4 * kMiB);
  RegionSource s(r.block());
  const std::size_t n = s.capacity() / kPage;
  std::vector<Block> pieces;
  for (std::size_t i = 0; i < n; ++i) {
    pieces.push_back(s.obtain(kPage));
    ASSERT_TRUE(pieces.back()) << i << ": " << s.last_error().message();
  }
  EXPECT_FALSE(s.obtain(kPage)) << "the n+1th piece does not fit";
  EXPECT_EQ(s.last_error().code(), SourceErrc::exhausted);
  EXPECT_EQ(s.free_bytes(), 0u);
  std::mt19937 rng(7);
  std::shuffle(pieces.begin(), pieces.end(), rng);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    s.release(pieces[i]);
    if (i % 97 == 0) {
      ASSERT_TRUE(s.check_invariants());
    }
  }
  EXPECT_EQ(s.largest_free(), s.capacity()) << "every free granule is one run again";
  const Block whole = s.obtain(s.capacity());
  ASSERT_TRUE(whole) << s.last_error().message();
  EXPECT_EQ(whole.ptr, s.usable().ptr);
  EXPECT_FALSE(s.obtain(1));
  s.release(whole);
  EXPECT_FALSE(s.obtain(s.capacity() + 1));
  EXPECT_EQ(s.last_error().code(), SourceErrc::too_large);
  EXPECT_TRUE(s.check_invariants());
}

TEST(RegionSource, AlignsPiecesToPowersOfTwoAboveTheGranule) {
  GuardedRegion r(16 * kMiB);
  RegionSource s(r.block());
  for (std::size_t align : {8 * kPage, 64 * std::size_t{1024}, 2 * kMiB, 4 * kMiB}) {
    const Block b = s.obtain_aligned(3 * kPage, align);
    ASSERT_TRUE(b) << align << ": " << s.last_error().message();
    EXPECT_TRUE(is_aligned(b.ptr, align)) << align;
    EXPECT_EQ(b.size, 3 * kPage);
  }
  // A region starting on a 32 MiB boundary keeps its bitmaps there: the next 32
  // MiB-aligned address is past its end.
  GuardedRegion r32(16 * kMiB, 32 * kMiB);
  RegionSource s32(r32.block());
  EXPECT_FALSE(s32.obtain_aligned(kPage, 32 * kMiB)) << "no such address among its granules";
  EXPECT_EQ(s32.last_error().code(), SourceErrc::exhausted);
  EXPECT_TRUE(s32.obtain_aligned(kPage, 8 * kMiB));
  EXPECT_FALSE(s.obtain_aligned(kPage, 3 * kPage));
  EXPECT_EQ(s.last_error().code(), SourceErrc::bad_alignment);
  EXPECT_TRUE(s.check_invariants());
}

TEST(RegionSource, NeverTouchesPiecesOrFreeMemory) {
  // Every granule is made inaccessible: a single read or write of one by the source
  // would fault. Only the bitmaps at the head stay accessible.
  GuardedRegion r(8 * kMiB);
  RegionSource s(r.block());
  ASSERT_EQ(::mprotect(s.usable().ptr, s.usable().size, PROT_NONE), 0);
  std::mt19937_64 rng(11);
  std::vector<Block> live;
  for (int i = 0; i < 20'000; ++i) {
    if (live.empty() || rng() % 2 == 0) {
      const Block b =
          s.obtain_aligned(1 + rng() % (64 * kPage), std::size_t{1} << (12 + rng() % 6));
      if (b) live.push_back(b);
    } else {
      const std::size_t k = rng() % live.size();
      s.release(live[k]);
      live[k] = live.back();
      live.pop_back();
    }
  }
  EXPECT_TRUE(s.check_invariants());
  EXPECT_EQ(s.stats().misuses, 0u);
}

TEST(RegionSource, CallerSuppliedMetadataLeavesTheWholeRegionToPieces) {
  // Four 2 MiB granules, as a memzone of 2 MiB hugepages would be.
  GuardedRegion r(8 * kMiB, 2 * kMiB);
  std::vector<std::uint64_t> meta(RegionSource::metadata_bytes(8 * kMiB, 2 * kMiB) / 8);
  RegionSource s(r.block(), Block{reinterpret_cast<std::byte*>(meta.data()), meta.size() * 8},
                 2 * kMiB);
  ASSERT_TRUE(s.config_error().ok()) << s.config_error().message();
  EXPECT_EQ(s.capacity(), 8 * kMiB);
  EXPECT_EQ(s.granularity(), 2 * kMiB);
  const Block b = s.obtain(1);
  EXPECT_EQ(b.ptr, r.data());
  EXPECT_EQ(b.size, 2 * kMiB);
  EXPECT_TRUE(s.check_invariants());
  // Metadata inside the region, or too small, is refused.
  RegionSource inside(r.block(), Block{r.data(), 64}, 2 * kMiB);
  EXPECT_EQ(inside.config_error().code(), SourceErrc::region_too_small);
  RegionSource small(r.block(), Block{reinterpret_cast<std::byte*>(meta.data()), 8}, 2 * kMiB);
  EXPECT_EQ(small.config_error().code(), SourceErrc::region_too_small);
}

TEST(RegionSource, ATooSmallRegionOrABadGranularityFailsClearly) {
  GuardedRegion r(kPage);
  RegionSource tiny(r.block());
  EXPECT_EQ(tiny.config_error().code(), SourceErrc::region_too_small)
      << "one page holds its bitmaps but no granule after them";
  EXPECT_FALSE(tiny.obtain(1));
  EXPECT_EQ(tiny.last_error().code(), SourceErrc::region_too_small);
  EXPECT_TRUE(tiny.check_invariants());
  RegionSource odd(r.block(), 3 * kPage);
  EXPECT_EQ(odd.config_error().code(), SourceErrc::bad_option);
  RegionSource below_page(r.block(), 512);
  EXPECT_EQ(below_page.config_error().code(), SourceErrc::bad_option);
  RegionSource empty(Block{}, kPage);
  EXPECT_FALSE(empty.obtain(1));
}

// An exact oracle: a granule map of owners and the same first-fit rule, written from
// the specification with no code shared with the source.
struct RegionOracle {
  std::vector<int> owner;  // -1: free
  std::byte* base;
  std::size_t g;

  // The lowest start j with base + j*g aligned to align and n free granules.
  long first_fit(std::size_t n, std::size_t align) const {
    for (std::size_t j = 0; j + n <= owner.size(); ++j) {
      if (reinterpret_cast<std::uintptr_t>(base + j * g) % align != 0) continue;
      bool ok = true;
      for (std::size_t k = j; k < j + n && ok; ++k)
        ok = owner[k] < 0;
      if (ok) return static_cast<long>(j);
    }
    return -1;
  }
};

TEST(RegionSource, RandomizedAgainstAnExactFirstFitOracle) {
  GuardedRegion r(2 * kMiB);
  RegionSource s(r.block());
  RegionOracle oracle{std::vector<int>(s.capacity() / kPage, -1), s.usable().ptr, kPage};
  struct Live {
    Block b;
    int id;
  };
  std::vector<Live> live;
  std::mt19937_64 rng(testing::test_seed(0x12E6));
  int next_id = 0;
  std::uint64_t obtained = 0, refused = 0;
  const std::uint64_t ops = testing::scaled(1'000'000);
  for (std::uint64_t i = 0; i < ops; ++i) {
    if (live.empty() || rng() % 100 < 52) {
      const std::size_t size = 1 + rng() % (24 * kPage);
      const std::size_t align = rng() % 4 == 0 ? std::size_t{1} << (12 + rng() % 5) : 1;
      const std::size_t n = (size + kPage - 1) / kPage;
      const long want = oracle.first_fit(n, align < kPage ? kPage : align);
      const Block b = s.obtain_aligned(size, align);
      if (want < 0) {
        ASSERT_FALSE(b) << "op " << i << ": obtained where nothing fits";
        ASSERT_EQ(s.last_error().code(), SourceErrc::exhausted);
        ++refused;
        continue;
      }
      ++obtained;
      ASSERT_TRUE(b) << "op " << i << ": " << s.last_error().message();
      ASSERT_EQ(b.ptr, oracle.base + static_cast<std::size_t>(want) * kPage) << "op " << i;
      ASSERT_EQ(b.size, n * kPage);
      for (std::size_t k = 0; k < n; ++k)
        oracle.owner[static_cast<std::size_t>(want) + k] = next_id;
      b.ptr[0] = static_cast<std::byte>(next_id);
      b.ptr[b.size - 1] = static_cast<std::byte>(next_id);
      live.push_back({b, next_id++});
    } else {
      const std::size_t k = rng() % live.size();
      const Live l = live[k];
      ASSERT_EQ(l.b.ptr[0], static_cast<std::byte>(l.id)) << "a piece's bytes changed";
      ASSERT_EQ(l.b.ptr[l.b.size - 1], static_cast<std::byte>(l.id));
      // Release with the size given or the size asked for (anything rounding up to it).
      s.release(Block{l.b.ptr, rng() % 2 == 0 ? l.b.size : l.b.size - kPage + 1});
      for (int& o : oracle.owner)
        if (o == l.id) o = -1;
      live[k] = live.back();
      live.pop_back();
    }
    if (i % 10'000 == 0) {
      ASSERT_TRUE(s.check_invariants()) << s.check_invariants().error();
    }
  }
  EXPECT_EQ(s.stats().misuses, 0u);
  EXPECT_EQ(s.stats().live_blocks(), live.size());
  EXPECT_GT(obtained, ops / 4);
  EXPECT_GT(refused, ops / 1000) << "the region must fill up now and then";
  for (const Live& l : live)
    s.release(l.b);
  EXPECT_TRUE(s.check_invariants());
  EXPECT_TRUE(s.obtain(s.capacity())) << "everything back: the whole capacity in one piece";
}

TEST(RegionSource, CheckInvariantsReportsCorruptedBitmaps) {
  GuardedRegion r(1 * kMiB);
  RegionSource s(r.block());
  const Block a = s.obtain(3 * kPage);
  ASSERT_TRUE(a);
  ASSERT_TRUE(s.check_invariants());
  TestPeer<RegionSource>::flip_start(s, 10);  // a piece "starts" on a free granule
  CheckResult c = s.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("free granule"), std::string::npos) << c.error();
  TestPeer<RegionSource>::flip_start(s, 10);
  ASSERT_TRUE(s.check_invariants());
  TestPeer<RegionSource>::flip_used(s, 1);  // a hole in the middle of the piece
  c = s.check_invariants();
  EXPECT_FALSE(c);
  EXPECT_NE(c.error().find("no piece"), std::string::npos) << c.error();
}

TEST(RegionSourceMisuse, DoubleReleaseIsReportedAndChangesNothing) {
  GuardedRegion r(1 * kMiB);
  RegionSource s(r.block());
  const Block a = s.obtain(kPage);
  s.release(a);
  testing::expect_misuse([&] { s.release(a); }, "double free in region_source.release");
  EXPECT_EQ(s.stats().releases, 1u);
  EXPECT_EQ(s.last_error().code(), SourceErrc::misuse);
  EXPECT_TRUE(s.check_invariants());
}

TEST(RegionSourceMisuse, ForeignInteriorAndMisalignedPointersAreReported) {
  GuardedRegion r(1 * kMiB);
  RegionSource s(r.block());
  const Block a = s.obtain(4 * kPage);
  int on_stack = 0;
  testing::expect_misuse(
      [&] {
        s.release(Block{reinterpret_cast<std::byte*>(&on_stack), 4});
      },
      "foreign pointer in region_source.release");
  testing::expect_misuse(
      [&] {
        s.release(Block{a.ptr + kPage, kPage});
      },
      "foreign pointer in region_source.release");
  testing::expect_misuse(
      [&] {
        s.release(Block{a.ptr + 8, kPage});
      },
      "foreign pointer in region_source.release");
  testing::expect_misuse(
      [&] {
        s.release(Block{r.data(), kPage});
      },
      "foreign pointer in region_source.release");  // its own bitmaps
  EXPECT_EQ(s.stats().bytes_held, 4 * kPage);
  EXPECT_TRUE(s.check_invariants());
}

TEST(RegionSourceMisuse, WrongSizeIsReportedAndChangesNothing) {
  GuardedRegion r(1 * kMiB);
  RegionSource s(r.block());
  const Block a = s.obtain(4 * kPage);
  const Block b = s.obtain(kPage);
  testing::expect_misuse(
      [&] {
        s.release(Block{a.ptr, 2 * kPage});
      },
      "wrong size in region_source.release");
  testing::expect_misuse(
      [&] {
        s.release(Block{a.ptr, 5 * kPage});
      },
      "wrong size in region_source.release");  // would swallow b
  testing::expect_misuse(
      [&] {
        s.release(Block{a.ptr, 0});
      },
      "wrong size in region_source.release");
  EXPECT_EQ(s.stats().bytes_held, 5 * kPage);
  s.release(a);
  s.release(b);
  EXPECT_EQ(s.stats().bytes_held, 0u);
  EXPECT_TRUE(s.check_invariants());
}

}  // namespace
}  // namespace ctxalloc
