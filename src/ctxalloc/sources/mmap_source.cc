#include "ctxalloc/sources/mmap_source.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/sources/os_memory.h"

namespace ctxalloc {
namespace {

constexpr std::size_t kTwoMiB = std::size_t{2} << 20;
constexpr std::size_t kOneGiB = std::size_t{1} << 30;
constexpr int kProt = PROT_READ | PROT_WRITE;

std::size_t huge_bytes(HugePages h) noexcept {
  switch (h) {
    case HugePages::size_2m:
      return kTwoMiB;
    case HugePages::size_1g:
      return kOneGiB;
    default:
      return 0;
  }
}

const char* size_name(std::size_t bytes) noexcept {
  return bytes == kOneGiB ? "1 GiB" : bytes == kTwoMiB ? "2 MiB" : "4 KiB";
}

// mlock as a raw system call: AddressSanitizer replaces mlock() with a no-op (it would
// otherwise be asked to lock its shadow memory by mlockall), which would make `lock` a
// silent lie in sanitizer builds. Locking our own range is harmless to it.
int lock_pages(void* p, std::size_t len) noexcept {
  return static_cast<int>(::syscall(SYS_mlock, p, len));
}

bool advise_thp(void* p, std::size_t len) noexcept {
  return os_advise(p, len, MADV_HUGEPAGE) == 0;
}

bool is_hugetlb(const detail::Mapping& m) noexcept {
  return m.outcome == static_cast<std::uint8_t>(MapOutcome::hugetlb);
}

// Flags of a hugetlb mapping of page size `huge`: the size's log2 in MAP_HUGE_SHIFT.
int hugetlb_flags(std::size_t huge) noexcept {
  return MAP_HUGETLB | static_cast<int>(log2_floor(huge) << MAP_HUGE_SHIFT);
}

SourceError hugepage_error(std::size_t huge, int err, std::size_t rounded) noexcept {
  const HugePageCounts c = hugepage_counts(huge);
  const auto kb = static_cast<unsigned long long>(huge / 1024);
  if (!c.supported || err == EINVAL)
    return SourceError::make(SourceErrc::huge_size_unsupported, err,
                             "mmap_source: the kernel has no %s hugepages "
                             "(/sys/kernel/mm/hugepages/hugepages-%llukB missing or mmap EINVAL)",
                             size_name(huge), kb);
  return SourceError::make(
      SourceErrc::hugepages_unavailable, err,
      "mmap_source: %zu bytes need %zu free %s hugepages; %llu of %llu are free, %llu of them "
      "reserved (raise /sys/kernel/mm/hugepages/hugepages-%llukB/nr_hugepages)",
      rounded, rounded / huge, size_name(huge), static_cast<unsigned long long>(c.free),
      static_cast<unsigned long long>(c.total), static_cast<unsigned long long>(c.reserved), kb);
}

SourceError mmap_error(const char* what, std::size_t bytes, int err) noexcept {
  return os_error("mmap_source", what, bytes, err);
}

}  // namespace

const char* to_string(HugePages h) noexcept {
  switch (h) {
    case HugePages::none:
      return "none";
    case HugePages::transparent:
      return "transparent";
    case HugePages::size_2m:
      return "2M";
    case HugePages::size_1g:
      return "1G";
  }
  return "?";
}

const char* to_string(MapOutcome o) noexcept {
  switch (o) {
    case MapOutcome::base_pages:
      return "base pages";
    case MapOutcome::transparent:
      return "transparent hugepages advised";
    case MapOutcome::hugetlb:
      return "hugetlb pages";
    case MapOutcome::fell_back_to_transparent:
      return "fell back to transparent hugepages";
    case MapOutcome::fell_back_to_base:
      return "fell back to base pages";
  }
  return "?";
}

MemoryMapSource::MemoryMapSource(const MapOptions& options) noexcept
    : options_(options),
      unit_(huge_bytes(options.huge) != 0 ? huge_bytes(options.huge) : page_size()),
      config_error_(validate(options)) {}

MemoryMapSource::~MemoryMapSource() {
  for (const detail::Mapping* m = index_.first(); m != nullptr; m = index_.next(m))
    os_unmap(m->start, m->size);
}

SourceError MemoryMapSource::validate(const MapOptions& o) noexcept {
  if (o.no_reserve && huge_bytes(o.huge) != 0)
    return SourceError::make(SourceErrc::bad_option, 0,
                             "mmap_source: no_reserve with hugetlb pages would turn a hugepage "
                             "shortage into SIGBUS at first touch; drop one of them");
  if (o.huge > HugePages::size_1g || o.fallback > HugeFallback::fail)
    return SourceError::make(SourceErrc::bad_option, 0, "mmap_source: unknown hugepage option");
  return ctxalloc::validate(o.numa);
}

std::size_t MemoryMapSource::natural_align(std::size_t rounded) const noexcept {
  const std::size_t huge = huge_bytes(options_.huge);
  if (huge != 0) return huge;  // also after a fallback: the caller asked for this granularity
  if (options_.huge == HugePages::transparent && rounded >= kTwoMiB) return kTwoMiB;
  return page_size();
}

SourceError MemoryMapSource::map_new(std::size_t size, std::size_t align,
                                     detail::Mapping* out) noexcept {
  std::size_t rounded = 0;
  if (!align_up_checked(size, unit_, &rounded))
    return SourceError::make(SourceErrc::bad_size, 0,
                             "mmap_source: %zu bytes overflow when rounded up to %zu", size, unit_);
  const std::size_t want = align > natural_align(rounded) ? align : natural_align(rounded);
  const std::size_t huge = huge_bytes(options_.huge);
  const int base_flags = options_.no_reserve ? MAP_NORESERVE : 0;
  detail::Mapping m{nullptr, rounded, unit_, page_size(), 0};
  MapOutcome outcome = MapOutcome::base_pages;
  int err = 0;
  void* p = nullptr;
  if (huge != 0) {
    p = os_map_aligned(rounded, want, hugetlb_flags(huge), huge, &err);
    if (p != nullptr) {
      outcome = MapOutcome::hugetlb;
      m.page = huge;
    } else if (err != ENOMEM && err != EINVAL) {
      return mmap_error("hugetlb mmap", rounded, err);
    } else if (options_.fallback == HugeFallback::fail) {
      return hugepage_error(huge, err, rounded);
    }
  }
  if (p == nullptr) {
    p = os_map_aligned(rounded, want, base_flags, page_size(), &err);
    if (p == nullptr) return mmap_error("mmap", rounded, err);
    if (huge != 0) {
      outcome = advise_thp(p, rounded) ? MapOutcome::fell_back_to_transparent
                                       : MapOutcome::fell_back_to_base;
    } else if (options_.huge == HugePages::transparent) {
      outcome = advise_thp(p, rounded) ? MapOutcome::transparent : MapOutcome::fell_back_to_base;
    }
  }
  m.start = static_cast<std::byte*>(p);
  m.outcome = static_cast<std::uint8_t>(outcome);
  if (SourceError e = prepare(m, 0); !e.ok()) {
    os_unmap(m.start, m.size);
    return e;
  }
  *out = m;
  return SourceError{};
}

// The order matters: the policy before any page exists (so populate faults pages on the
// right nodes and strict/move have nothing to check), locking last (it faults in too).
SourceError MemoryMapSource::prepare(const detail::Mapping& m, std::size_t offset) noexcept {
  std::byte* p = m.start + offset;
  const std::size_t len = m.size - offset;
  if (options_.numa.mode != NumaMode::default_policy) {
    if (SourceError e = apply_numa_policy(p, len, options_.numa); !e.ok()) return e;
  }
  if (options_.dontdump) {
    if (const int err = os_advise(p, len, MADV_DONTDUMP); err != 0)
      return SourceError::make(SourceErrc::system_error, err,
                               "mmap_source: madvise(MADV_DONTDUMP) failed: errno %d", err);
  }
  if (options_.populate) {
    if (SourceError e = populate(p, len); !e.ok()) return e;
  }
  if (options_.lock && lock_pages(p, len) != 0) {
    const int err = errno;
    return SourceError::make(SourceErrc::lock_failed, err,
                             "mmap_source: mlock of %zu bytes failed: errno %d (RLIMIT_MEMLOCK "
                             "too low, or no CAP_IPC_LOCK)",
                             len, err);
  }
  return SourceError{};
}

// MADV_POPULATE_WRITE (Linux 5.14) faults every page in and reports failure (a bound
// node out of memory) as an error instead of SIGBUS; older kernels get one write per page.
SourceError MemoryMapSource::populate(std::byte* p, std::size_t len) noexcept {
  const int err = os_populate(p, len);
  if (err == 0) return SourceError{};
  return SourceError::make(SourceErrc::populate_failed, err,
                           "mmap_source: populating %zu bytes failed: errno %d%s", len, err,
                           err == ENOMEM ? " (no free memory on the policy's nodes)" : "");
}

void MemoryMapSource::count_outcome(MapOutcome o) noexcept {
  switch (o) {
    case MapOutcome::base_pages:
      break;
    case MapOutcome::transparent:
      transparent_.add(1);
      break;
    case MapOutcome::hugetlb:
      hugetlb_.add(1);
      break;
    case MapOutcome::fell_back_to_transparent:
      fallback_thp_.add(1);
      break;
    case MapOutcome::fell_back_to_base:
      fallback_base_.add(1);
      break;
  }
}

Block MemoryMapSource::fail(const SourceError& e) noexcept {
  last_error_ = e;
  failures_.add(1);
  return Block{};
}

Block MemoryMapSource::obtain_aligned(std::size_t size, std::size_t align) noexcept {
  if (!config_error_.ok()) return fail(config_error_);
  if (!is_pow2(align) || align > kMaxAlign)
    return fail(SourceError::make(SourceErrc::bad_alignment, 0,
                                  "mmap_source: alignment %zu is not a power of two up to 1 GiB",
                                  align));
  if (size == 0) return fail(SourceError::make(SourceErrc::bad_size, 0, "mmap_source: size 0"));
  if (!index_.reserve())
    return fail(mmap_error("index pool mmap", sizeof(detail::MappingNode), errno));
  detail::Mapping m;
  if (SourceError e = map_new(size, align, &m); !e.ok()) return fail(e);
  index_.insert(m);
  last_outcome_ = static_cast<MapOutcome>(m.outcome);
  count_outcome(last_outcome_);
  obtains_.add(1);
  held_.add(m.size);
  peak_.raise_to(held_.get());
  return Block{m.start, m.size};
}

void MemoryMapSource::refuse_release(Misuse what, const void* p, const char* op) noexcept {
  misuses_.add(1);
  last_error_ = SourceError::make(SourceErrc::misuse, 0, "mmap_source: %s of %p refused: %s", op, p,
                                  to_string(what));
  report_misuse(what, "mmap_source", op, p);
}

void MemoryMapSource::remember_released(const void* p) noexcept {
  recent_[recent_next_++ % kRecent] = p;
}

bool MemoryMapSource::recently_released(const void* p) const noexcept {
  for (const void* r : recent_)
    if (r == p) return true;
  return false;
}

void MemoryMapSource::release(Block block) noexcept {
  if (block.ptr == nullptr) return;
  const detail::Mapping* m = index_.find(block.ptr);
  if (m == nullptr) {
    refuse_release(misuse_kind(block.ptr), block.ptr, "release");
    return;
  }
  std::size_t rounded = 0;
  if (!align_up_checked(block.size, m->unit, &rounded) || rounded != m->size) {
    refuse_release(Misuse::wrong_size, block.ptr, "release");
    return;
  }
  const std::size_t size = m->size;
  os_unmap(m->start, size);
  index_.erase(block.ptr);
  remember_released(block.ptr);
  releases_.add(1);
  held_.sub(size);
}

bool MemoryMapSource::grow_in_place(detail::Mapping* m, std::size_t rounded) noexcept {
  const std::size_t old = m->size;
  if (is_hugetlb(*m)) {
    // mremap cannot grow hugetlb mappings (the kernel's reservations cannot be split):
    // map the extra hugepages right behind the block if that range is free. The block is
    // then two kernel mappings, still one block to us (munmap takes the whole range).
    void* want = m->end();
    void* p =
        os_map(want, rounded - old, kProt, MAP_FIXED_NOREPLACE | hugetlb_flags(m->page), nullptr);
    if (p == nullptr) return false;
    if (p != want) {  // a kernel before 4.17 treats MAP_FIXED_NOREPLACE as a hint
      os_unmap(p, rounded - old);
      return false;
    }
    m->size = rounded;
    if (SourceError e = prepare(*m, old); !e.ok()) {
      os_unmap(want, rounded - old);
      m->size = old;
      last_error_ = e;
      return false;
    }
    return true;
  }
  // Policy, THP advice, dontdump and lock belong to the kernel's mapping and extend with
  // it (mremap faults the new part of a locked mapping in); populate is ours to redo.
  if (::mremap(m->start, old, rounded, 0) == MAP_FAILED) {
    if (errno == EAGAIN)
      last_error_ = SourceError::make(SourceErrc::lock_failed, EAGAIN,
                                      "mmap_source: growing a locked block past RLIMIT_MEMLOCK");
    return false;
  }
  m->size = rounded;
  if (options_.populate) {
    if (SourceError e = populate(m->start + old, rounded - old); !e.ok()) {
      os_unmap(m->start + old, rounded - old);
      m->size = old;
      last_error_ = e;
      return false;
    }
  }
  return true;
}

SourceError MemoryMapSource::move(detail::Mapping* m, std::size_t rounded,
                                  std::size_t align) noexcept {
  const std::size_t old = m->size;
  if (is_hugetlb(*m)) {
    // No page-table move for hugetlb: a fresh block (which may itself fall back to THP),
    // the bytes copied, the old block unmapped.
    detail::Mapping fresh;
    if (SourceError e = map_new(rounded, align, &fresh); !e.ok()) return e;
    std::memcpy(fresh.start, m->start, old < rounded ? old : rounded);  // grow or shrink
    os_unmap(m->start, old);
    *m = fresh;
    count_outcome(static_cast<MapOutcome>(fresh.outcome));
    moved_by_copy_.add(1);
    return SourceError{};
  }
  const std::size_t want = align > natural_align(rounded) ? align : natural_align(rounded);
  void* p = nullptr;
  if (want <= page_size()) {
    p = ::mremap(m->start, old, rounded, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return mmap_error("mremap", rounded, errno);
  } else {
    // Reserve an aligned target (as map_aligned does) and move the pages onto it.
    AlignedReservation r;
    int err = 0;
    if (!os_reserve_aligned(rounded, want, &r, &err))
      return mmap_error("mremap target reservation", rounded + want, err);
    p = ::mremap(m->start, old, rounded, MREMAP_MAYMOVE | MREMAP_FIXED, r.at);
    if (p == MAP_FAILED) {
      err = errno;
      os_unmap(r.base, r.span);
      return mmap_error("mremap", rounded, err);
    }
    os_trim_reservation(r, rounded);
  }
  m->start = static_cast<std::byte*>(p);
  m->size = rounded;
  moved_by_remap_.add(1);
  if (options_.populate) {
    // The block has moved and holds the caller's bytes: a failure to fault the new tail
    // in is not worth undoing the move for; the tail faults on first touch instead.
    (void)populate(m->start + old, rounded - old);
  }
  return SourceError{};
}

Block MemoryMapSource::resize(Block block, std::size_t new_size, std::size_t align,
                              Move move_ok) noexcept {
  const detail::Mapping* found = index_.find(block.ptr);
  if (found == nullptr) {
    refuse_release(misuse_kind(block.ptr), block.ptr, "resize");
    return fail(last_error_);
  }
  if (!is_pow2(align) || align > kMaxAlign)
    return fail(SourceError::make(SourceErrc::bad_alignment, 0,
                                  "mmap_source: alignment %zu is not a power of two up to 1 GiB",
                                  align));
  detail::Mapping m = *found;
  std::size_t rounded = 0;
  if (new_size == 0 || !align_up_checked(new_size, m.unit, &rounded))
    return fail(SourceError::make(SourceErrc::bad_size, 0,
                                  "mmap_source: cannot resize to %zu bytes", new_size));
  const bool aligned = is_aligned(m.start, align);
  if (rounded == m.size && aligned) return Block{m.start, m.size};
  const std::size_t old = m.size;
  if (rounded < old && aligned) {
    // Shrinking in place keeps the start; a larger alignment than it has moves below.
    if (const int err = os_unmap(m.start + rounded, old - rounded); err != 0)
      return fail(mmap_error("munmap", old, err));
    m.size = rounded;
    resized_in_place_.add(1);
  } else if (aligned && grow_in_place(&m, rounded)) {
    resized_in_place_.add(1);
  } else if (move_ok == Move::forbidden) {
    return fail(SourceError::make(SourceErrc::would_move, 0,
                                  "mmap_source: %zu bytes at %p cannot become %zu in place", old,
                                  static_cast<void*>(m.start), rounded));
  } else if (SourceError e = move(&m, rounded, align); !e.ok()) {
    return fail(e);
  }
  index_.update(block.ptr, m);
  held_.add(m.size);
  held_.sub(old);
  peak_.raise_to(held_.get());
  return Block{m.start, m.size};
}

Misuse MemoryMapSource::misuse_kind(const void* p) const noexcept {
  if (index_.find_containing(p) == nullptr && recently_released(p)) return Misuse::double_free;
  return Misuse::foreign_pointer;
}

Block MemoryMapSource::block_of(const void* p) const noexcept {
  const detail::Mapping* m = index_.find_containing(p);
  return m == nullptr ? Block{} : Block{m->start, m->size};
}

MapOutcome MemoryMapSource::outcome_of(const void* p) const noexcept {
  const detail::Mapping* m = index_.find_containing(p);
  return m == nullptr ? MapOutcome::base_pages : static_cast<MapOutcome>(m->outcome);
}

SourceStats MemoryMapSource::stats() const noexcept {
  SourceStats s;
  s.obtains = obtains_.get();
  s.releases = releases_.get();
  s.failures = failures_.get();
  s.misuses = misuses_.get();
  s.bytes_held = held_.get();
  s.peak_bytes = peak_.get();
  s.capacity = 0;
  s.upstream_bytes = held_.get() + index_.metadata_bytes();
  return s;
}

MapStats MemoryMapSource::map_stats() const noexcept {
  MapStats s;
  s.hugetlb = hugetlb_.get();
  s.transparent = transparent_.get();
  s.fallbacks_to_transparent = fallback_thp_.get();
  s.fallbacks_to_base = fallback_base_.get();
  s.resized_in_place = resized_in_place_.get();
  s.moved_by_remap = moved_by_remap_.get();
  s.moved_by_copy = moved_by_copy_.get();
  return s;
}

CheckResult MemoryMapSource::check_invariants() const {
  if (CheckResult r = index_.check("mmap_source"); !r) return r;
  CTXALLOC_INVARIANT(index_.count() == obtains_.get() - releases_.get(),
                     "mmap_source: index holds ", index_.count(), " blocks, counters say ",
                     obtains_.get() - releases_.get());
  CTXALLOC_INVARIANT(index_.bytes() == held_.get(), "mmap_source: index holds ", index_.bytes(),
                     " bytes, counters say ", held_.get());
  for (const detail::Mapping* m = index_.first(); m != nullptr; m = index_.next(m)) {
    CTXALLOC_INVARIANT(m->unit == unit_, "mmap_source: block ", m->start, " has unit ", m->unit,
                       ", the source ", unit_);
    // msync on anonymous memory writes nothing back; it fails with ENOMEM when part of
    // the range is not mapped, which is what we ask.
    CTXALLOC_INVARIANT(::msync(m->start, m->size, MS_ASYNC) == 0, "mmap_source: block ", m->start,
                       " (", m->size, " bytes) is no longer mapped in the kernel");
  }
  return CheckResult::ok();
}

}  // namespace ctxalloc
