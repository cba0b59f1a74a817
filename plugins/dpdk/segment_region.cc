// SegmentRegion (see detail/segment_region.h).
#include "detail/segment_region.h"

#include <rte_errno.h>
#include <rte_memzone.h>

#include <cerrno>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/sources/kernel_info.h"
#include "ctxalloc/sources/numa_policy.h"
#include "ctxalloc/sources/os_memory.h"

namespace ctxalloc::dpdk::detail {
namespace {

// The memzone flag of a hugepage size (0 for sizes DPDK has no flag for).
unsigned memzone_page_flag(std::size_t size) noexcept {
  switch (size) {
    case std::size_t{256} << 10:
      return RTE_MEMZONE_256KB;
    case std::size_t{2} << 20:
      return RTE_MEMZONE_2MB;
    case std::size_t{16} << 20:
      return RTE_MEMZONE_16MB;
    case std::size_t{256} << 20:
      return RTE_MEMZONE_256MB;
    case std::size_t{512} << 20:
      return RTE_MEMZONE_512MB;
    case std::size_t{1} << 30:
      return RTE_MEMZONE_1GB;
    case std::size_t{4} << 30:
      return RTE_MEMZONE_4GB;
    case std::size_t{16} << 30:
      return RTE_MEMZONE_16GB;
    default:
      return 0;
  }
}

}  // namespace

const char* to_string(PageKind k) noexcept {
  switch (k) {
    case PageKind::none:
      return "none";
    case PageKind::hugepages:
      return "hugepages";
    case PageKind::normal_pages:
      return "normal_pages";
  }
  return "?";
}

int SegmentRegion::reserve(const RegionRequest& r, const char** why) noexcept {
  if (reserved()) {
    *why = "the region is reserved already";
    return -EINVAL;
  }
  if (r.bytes == 0 || r.bytes % kSegment != 0 || r.bytes / kSegment > kMaxSegments) {
    *why = "a region must be 1 to 4096 whole 4 MiB segments";
    return -EINVAL;
  }
  const int rc = r.kind == PageKind::hugepages ? reserve_memzone(r, why) : reserve_pages(r, why);
  if (rc != 0) return rc;
  segments_ = r.bytes / kSegment;
  out_ = 0;
  socket_ = r.socket;
  kind_ = r.kind;
  for (auto& w : bits_)
    w = 0;
  return 0;
}

int SegmentRegion::reserve_memzone(const RegionRequest& r, const char** why) noexcept {
  unsigned flags = memzone_page_flag(r.hugepage_size);
  if (flags != 0 && r.other_page_size_ok) flags |= RTE_MEMZONE_SIZE_HINT_ONLY;
  const rte_memzone* mz = rte_memzone_reserve_aligned(r.name, r.bytes, static_cast<int>(r.socket),
                                                      flags, static_cast<unsigned>(kSegment));
  // DPDK 22.11, growing its heap on demand, refuses a size that is a multiple of the 4 MiB
  // alignment on a socket whose heap has a partly used page (the main lcore's, after EAL
  // init) although pages are free; one page more is granted, still 4 MiB-aligned. Seen in
  // the two-node guest and here on socket 0; that page is the price, paid only then.
  const std::size_t extra = r.hugepage_size != 0 ? r.hugepage_size : std::size_t{2} << 20;
  if (mz == nullptr && rte_errno == ENOMEM && extra < kSegment)
    mz = rte_memzone_reserve_aligned(r.name, r.bytes + extra, static_cast<int>(r.socket), flags,
                                     static_cast<unsigned>(kSegment));
  if (mz == nullptr) {
    *why = "rte_memzone_reserve_aligned refused (not enough hugepage memory on the socket?)";
    return -ENOMEM;
  }
  if (mz->socket_id != static_cast<std::int32_t>(r.socket)) {
    rte_memzone_free(mz);
    *why = "DPDK gave a memzone on another socket";
    return -EFAULT;
  }
  memzone_ = mz;
  base_ = static_cast<std::byte*>(mz->addr);
  page_size_ = mz->hugepage_sz;
  numa_bound_ = true;  // DPDK's memory of a socket is that node's
  return 0;
}

int SegmentRegion::reserve_pages(const RegionRequest& r, const char** why) noexcept {
  // Aligned to the 4 MiB segment (the segment map's granule).
  const std::size_t base_page = ctxalloc::page_size();  // the kernel's; the member is ours
  int err = 0;
  auto* start = static_cast<std::byte*>(os_map_aligned(r.bytes, kSegment, 0, base_page, &err));
  if (start == nullptr) {
    *why = "mmap refused";
    return -ENOMEM;
  }
  numa_bound_ = false;
  if (numa_supported() && static_cast<int>(r.socket) <= numa_highest_node()) {
    numa_bound_ = apply_numa_policy(start, r.bytes, NumaPolicy::bind_to(r.socket)).ok();
  }
  // Every page faulted in (after mbind, so the pages land on the node), so that the first
  // flows find their memory ready; a failure (the node short of memory) leaves the rest to
  // fault on first touch.
  (void)os_populate(start, r.bytes);
  base_ = start;
  page_size_ = base_page;
  return 0;
}

void SegmentRegion::free() noexcept {
  if (!reserved()) return;
  if (memzone_ != nullptr) {
    rte_memzone_free(memzone_);
  } else {
    os_unmap(base_, bytes());
  }
  memzone_ = nullptr;
  base_ = nullptr;
  segments_ = out_ = 0;
  kind_ = PageKind::none;
}

void SegmentRegion::set(std::size_t first, std::size_t n, bool on) noexcept {
  for (std::size_t i = first; i < first + n; ++i) {
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    bits_[i / 64] = on ? (bits_[i / 64] | bit) : (bits_[i / 64] & ~bit);
  }
}

Block SegmentRegion::obtain(std::size_t bytes) noexcept {
  if (!reserved() || bytes == 0 || bytes % kSegment != 0) return Block{};
  const std::size_t want = bytes / kSegment;
  if (want > segments_ - out_) return Block{};
  std::size_t run = 0;
  for (std::size_t i = 0; i < segments_; ++i) {
    // Skip a whole word of taken segments at once.
    if (i % 64 == 0 && bits_[i / 64] == ~std::uint64_t{0} && i + 64 <= segments_) {
      run = 0;
      i += 63;
      continue;
    }
    run = test(i) ? 0 : run + 1;
    if (run == want) {
      const std::size_t first = i + 1 - want;
      set(first, want, true);
      out_ += want;
      return Block{base_ + first * kSegment, bytes};
    }
  }
  return Block{};
}

void SegmentRegion::release(Block b) noexcept {
  if (b.ptr == nullptr) return;
  const bool inside = contains(b.ptr) && b.size % kSegment == 0 && b.size != 0 &&
                      (b.ptr - base_) % kSegment == 0 && b.ptr + b.size <= base_ + bytes();
  if (!inside) {
    report_misuse(Misuse::foreign_pointer, "dpdk_region", "release", b.ptr);
    return;
  }
  const auto first = static_cast<std::size_t>(b.ptr - base_) / kSegment;
  const std::size_t n = b.size / kSegment;
  for (std::size_t i = first; i < first + n; ++i) {
    if (!test(i)) {
      report_misuse(Misuse::double_free, "dpdk_region", "release", base_ + i * kSegment);
      return;
    }
  }
  set(first, n, false);
  out_ -= n;
}

CheckResult SegmentRegion::check_invariants() const {
  CTXALLOC_INVARIANT(segments_ <= kMaxSegments, "region: ", segments_, " segments");
  CTXALLOC_INVARIANT(base_ == nullptr || is_aligned(base_, kSegment), "region: base ", base_,
                     " not aligned to 4 MiB");
  CTXALLOC_INVARIANT(reserved() || (segments_ == 0 && out_ == 0), "region: unreserved, ", segments_,
                     " segments");
  std::size_t marked = 0;
  for (std::size_t i = 0; i < kMaxSegments; ++i) {
    if (!test(i)) continue;
    CTXALLOC_INVARIANT(i < segments_, "region: segment ", i, " marked out past the end (",
                       segments_, ")");
    ++marked;
  }
  CTXALLOC_INVARIANT(marked == out_, "region: ", marked, " segments marked out, ", out_,
                     " counted");
  return CheckResult::ok();
}

SegmentBackend SegmentRegion::backend() noexcept {
  return SegmentBackend{
      this,
      [](void* self, std::size_t bytes) noexcept {
        return static_cast<SegmentRegion*>(self)->obtain(bytes);
      },
      [](void* self, Block b) noexcept { static_cast<SegmentRegion*>(self)->release(b); }};
}

}  // namespace ctxalloc::dpdk::detail
