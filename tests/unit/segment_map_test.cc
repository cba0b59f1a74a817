#include "ctxalloc/core/segment_map.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>
#include <vector>

namespace ctxalloc {
namespace {

constexpr std::size_t kSeg = SegmentMap::kSegmentSize;

struct Segments {
  explicit Segments(std::size_t n) : size(n * kSeg), base(std::aligned_alloc(kSeg, n * kSeg)) {}
  ~Segments() { std::free(base); }
  std::size_t size;
  void* base;
  std::byte* at(std::size_t off) const { return static_cast<std::byte*>(base) + off; }
};

TEST(SegmentMap, UnregisteredAddressesHaveNoOwner) {
  int on_stack = 0;
  EXPECT_EQ(SegmentMap::lookup(&on_stack), nullptr);
  EXPECT_EQ(SegmentMap::lookup(nullptr), nullptr);
  EXPECT_EQ(SegmentMap::lookup(reinterpret_cast<void*>(~std::uintptr_t{0})), nullptr)
      << "addresses beyond 48 bits are foreign, not an out-of-bounds read";
  EXPECT_EQ(SegmentMap::lookup(reinterpret_cast<void*>(std::uintptr_t{1} << 48)), nullptr);
}

TEST(SegmentMap, EveryByteOfARegisteredRangeFindsItsOwner) {
  Segments s(3);
  OwnerTag tag{OwnerKind{1}, &s};
  ASSERT_TRUE(SegmentMap::register_range(s.base, s.size, &tag));
  for (std::size_t off :
       {std::size_t{0}, std::size_t{1}, kSeg - 1, kSeg, 2 * kSeg + 12345, 3 * kSeg - 1}) {
    EXPECT_EQ(SegmentMap::lookup(s.at(off)), &tag) << off;
  }
  EXPECT_EQ(SegmentMap::lookup(s.at(3 * kSeg)), nullptr);
  EXPECT_EQ(SegmentMap::lookup(s.at(0) - 1), nullptr);
  SegmentMap::unregister_range(s.base, s.size, &tag);
  EXPECT_EQ(SegmentMap::lookup(s.at(kSeg)), nullptr);
}

TEST(SegmentMap, RefusesOverlapsAndMisalignedRangesAtomically) {
  Segments s(2);
  OwnerTag a{OwnerKind{1}, nullptr};
  OwnerTag b{OwnerKind{5}, nullptr};
  const std::size_t before = SegmentMap::registered_slots();
  ASSERT_TRUE(SegmentMap::register_range(s.at(kSeg), kSeg, &a));
  EXPECT_FALSE(SegmentMap::register_range(s.base, 2 * kSeg, &b)) << "overlaps a";
  EXPECT_EQ(SegmentMap::lookup(s.base), nullptr) << "a refused range registers nothing";
  EXPECT_FALSE(SegmentMap::register_range(s.at(4096), kSeg, &b)) << "misaligned base";
  EXPECT_FALSE(SegmentMap::register_range(s.base, kSeg + 1, &b)) << "size not whole segments";
  EXPECT_FALSE(SegmentMap::register_range(s.base, 0, &b));
  EXPECT_FALSE(SegmentMap::register_range(s.base, kSeg, nullptr));
  EXPECT_FALSE(
      SegmentMap::register_range(reinterpret_cast<void*>(std::uintptr_t{1} << 48), kSeg, &b));
  // Unregistering with the wrong tag leaves the owner in place.
  SegmentMap::unregister_range(s.at(kSeg), kSeg, &b);
  EXPECT_EQ(SegmentMap::lookup(s.at(kSeg)), &a);
  SegmentMap::unregister_range(s.at(kSeg), kSeg, &a);
  EXPECT_EQ(SegmentMap::registered_slots(), before);
}

TEST(SegmentMap, LookupsRaceFreelyWithRegistrationsElsewhere) {
  // Runs clean under ThreadSanitizer: lookups take no lock.
  Segments fixed(1);
  OwnerTag tag{OwnerKind{4}, nullptr};
  ASSERT_TRUE(SegmentMap::register_range(fixed.base, kSeg, &tag));
  std::thread churn([] {
    Segments s(1);
    OwnerTag t{OwnerKind{3}, nullptr};
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(SegmentMap::register_range(s.base, kSeg, &t));
      SegmentMap::unregister_range(s.base, kSeg, &t);
    }
  });
  for (int i = 0; i < 200000; ++i)
    ASSERT_EQ(SegmentMap::lookup(fixed.at(i % kSeg)), &tag);
  churn.join();
  SegmentMap::unregister_range(fixed.base, kSeg, &tag);
}

}  // namespace
}  // namespace ctxalloc
