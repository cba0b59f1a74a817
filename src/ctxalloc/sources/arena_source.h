// ArenaSource: blocks of one fixed size, carved from slabs taken from a parent source
// (an mmap source, a region, a shared source). Free blocks sit on an intrusive LIFO list
// (the link lives in the free block itself), so obtain and release are a few
// instructions: pop or push, or advance a carving pointer through the current slab.
// Slabs are taken lazily (their pages are touched only when carved) and given back to
// the parent when the arena is destroyed.
//
// Alignment: a power-of-two block size is also the blocks' alignment, so the block
// holding any pointer is p & ~(size - 1) (block_start). Other sizes are rounded up to a
// multiple of 16 and 16-aligned.
//
// The initializer (optional) runs on every obtain, not once when a block is first
// carved: a free block's first 16 bytes hold the list link and a check word, so whatever
// a carve-time initializer wrote there would be gone when the block comes back. Running
// it on obtain costs the initializer's own time per obtain, and gives every caller a
// block in the same state.
//
// Misuse detection, all O(1): a foreign pointer is caught before its memory is read
// (slab membership is one mask and one hash lookup in the slab table); a double release
// by the check word (the link xor the block address xor a per-arena secret: a live block
// carries it by chance with probability 2^-64); a write into a free block by the same
// word when the block is popped. One owner thread (wrap it in a SharedSource to share).
#pragma once

#include <sys/auxv.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/core/check.h"
#include "ctxalloc/core/memory_source.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/poison.h"
#include "ctxalloc/core/stats.h"
#include "ctxalloc/sources/detail/slab_table.h"
#include "ctxalloc/sources/kernel_info.h"

namespace ctxalloc {

/// Runs on each block an ArenaSource hands out: (block, block size, context).
using ArenaInit = void (*)(void* block, std::size_t size, void* context) noexcept;

struct ArenaOptions {
  std::size_t block_size = 0;    ///< bytes per block (rounded up: see the header comment)
  std::size_t slab_bytes = 0;    ///< bytes asked of the parent at a time (rounded up to a
                                 ///< power of two >= the block); 0: 64 KiB or 4 blocks
  ArenaInit init = nullptr;      ///< run on every obtain, if set
  void* init_context = nullptr;  ///< its third argument
};

/// P is the parent: a MemorySource type held by value (a SharedSource handle) or a
/// reference to one (ArenaSource<MemoryMapSource&>), which must outlive the arena.
template <class P>
class ArenaSource {
 public:
  using Parent = std::remove_reference_t<P>;
  static_assert(MemorySource<Parent>);

  /// An arena of options.block_size blocks over parent. Bad options (block size 0 or
  /// absurd) make every obtain fail; config_error() says why.
  ArenaSource(P parent, const ArenaOptions& options) noexcept;
  /// Gives every slab back to the parent. Blocks still out are misuse (live on release):
  /// reported, and then the slabs are kept (leaked) rather than pulled from under them.
  ~ArenaSource();
  ArenaSource(const ArenaSource&) = delete;
  ArenaSource& operator=(const ArenaSource&) = delete;

  /// One block (block_size() bytes). O(1) but for a new slab from the parent.
  Block obtain() noexcept;
  /// One block if size <= block_size(); size 0 or more fails (bad_size / too_large).
  Block obtain(std::size_t size) noexcept;
  /// Puts a block back on the free list. O(1).
  void release(Block block) noexcept;

  /// The block holding p, if p lies in one of the arena's slabs; else nullptr. O(1).
  std::byte* block_start(const void* p) const noexcept;
  /// Whether p lies in one of the arena's slabs. O(1).
  bool contains(const void* p) const noexcept { return slabs_.holds(p); }

  /// Bytes per block as handed out (the requested size rounded up).
  std::size_t block_size() const noexcept { return stride_; }
  /// Alignment of every block.
  std::size_t block_align() const noexcept { return align_; }
  std::size_t slab_bytes() const noexcept { return slabs_.chunk_bytes(); }
  Parent& parent() noexcept { return parent_; }

  const SourceError& config_error() const noexcept { return config_error_; }
  const SourceError& last_error() const noexcept { return last_error_; }
  SourceStats stats() const noexcept;
  /// Blocks on the free list now.
  std::size_t free_blocks() const noexcept { return free_count_; }

  /// Walks the free list (each link's check word, inside a slab, on a block boundary,
  /// carved, no cycle) and the slab table; counts against the counters.
  CheckResult check_invariants() const;

 private:
  template <class>
  friend struct TestPeer;

  // The first 16 bytes of a free block.
  struct Link {
    Link* next;
    std::uintptr_t check;
  };
  static constexpr std::size_t kLinkBytes = sizeof(Link);

  std::uintptr_t check_word(const Link* block, const Link* next) const noexcept {
    return reinterpret_cast<std::uintptr_t>(block) ^ reinterpret_cast<std::uintptr_t>(next) ^
           secret_;
  }
  bool is_block_start(const void* p) const noexcept;
  bool carved(const void* p) const noexcept;
  std::byte* pop() noexcept;
  Block hand_out(std::byte* b) noexcept;
  std::byte* carve() noexcept;
  bool new_slab() noexcept;
  Block take_from_parent(std::size_t bytes) noexcept;
  // Failure paths, out of line so that obtain and release stay small.
  [[gnu::cold, gnu::noinline]] Block fail(const SourceError& e) noexcept;
  [[gnu::cold, gnu::noinline]] void refuse(Misuse what, const void* p) noexcept;
  [[gnu::cold, gnu::noinline]] std::byte* drop_corrupt_list(Link* head) noexcept;
  [[gnu::cold, gnu::noinline]] Block obtain_slow() noexcept;
  static std::uintptr_t make_secret(const void* self) noexcept;
  static bool options_in_range(const ArenaOptions& o) noexcept {
    return o.block_size != 0 && o.block_size <= kMaxBytes && o.slab_bytes <= kMaxBytes;
  }
  static std::size_t stride_for(const ArenaOptions& o) noexcept;
  static std::size_t chunk_for(const ArenaOptions& o) noexcept;
  static constexpr std::size_t kMaxBytes = std::size_t{1} << 40;

  P parent_;
  std::size_t stride_;
  std::size_t align_;
  ArenaInit init_;
  void* init_context_;
  std::uintptr_t secret_;
  Link* free_ = nullptr;
  std::size_t free_count_ = 0;
  std::byte* carve_ = nullptr;       // next block to carve in the current chunk
  std::byte* carve_end_ = nullptr;   // end of the last whole block of the current chunk
  std::byte* chunk_next_ = nullptr;  // the next chunk of the current slab
  std::byte* slab_end_ = nullptr;    // end of the current slab's chunks
  detail::SlabTable slabs_;
  SourceError config_error_;
  SourceError last_error_;
  Counter obtains_, releases_, failures_, misuses_, peak_, upstream_;
};

// ---------------------------------------------------------------- implementation

template <class P>
std::size_t ArenaSource<P>::stride_for(const ArenaOptions& o) noexcept {
  if (!options_in_range(o)) return kLinkBytes;
  const std::size_t want = o.block_size < kLinkBytes ? kLinkBytes : o.block_size;
  return is_pow2(want) ? want : align_up(want, 16);
}

template <class P>
std::size_t ArenaSource<P>::chunk_for(const ArenaOptions& o) noexcept {
  const std::size_t stride = stride_for(o);
  std::size_t slab = options_in_range(o) ? o.slab_bytes : 0;
  if (slab == 0) slab = 4 * stride > 64 * 1024 ? 4 * stride : 64 * 1024;
  return std::bit_ceil(slab < stride ? stride : slab);
}

template <class P>
ArenaSource<P>::ArenaSource(P parent, const ArenaOptions& o) noexcept
    : parent_(std::forward<P>(parent)),
      stride_(stride_for(o)),
      align_(is_pow2(stride_) ? stride_ : 16),
      init_(o.init),
      init_context_(o.init_context),
      secret_(make_secret(this)),
      slabs_(chunk_for(o)) {
  if (!options_in_range(o))
    config_error_ = SourceError::make(SourceErrc::bad_option, 0,
                                      "arena: block size %zu / slab %zu out of range [1, 2^40]",
                                      o.block_size, o.slab_bytes);
}

template <class P>
ArenaSource<P>::~ArenaSource() {
  if (obtains_.get() != releases_.get()) {
    misuses_.add(1);
    report_misuse(Misuse::live_on_release, "arena", "~ArenaSource", nullptr);
    return;  // the slabs stay mapped: live blocks keep their memory
  }
  for (std::size_t i = 0; i < slabs_.entries(); ++i) {
    const Block b = slabs_.entry(i).parent;
    detail::unpoison(b.ptr, b.size);
    parent_.release(b);
  }
}

template <class P>
std::uintptr_t ArenaSource<P>::make_secret(const void* self) noexcept {
  // AT_RANDOM: 16 bytes the kernel gives every process; no system call, no heap.
  std::uintptr_t r = 0x9E3779B97F4A7C15ULL;
  if (const auto at = ::getauxval(AT_RANDOM); at != 0)
    std::memcpy(&r, reinterpret_cast<const void*>(at), sizeof r);
  return (r ^ reinterpret_cast<std::uintptr_t>(self)) * 0xBF58476D1CE4E5B9ULL | 1;
}

template <class P>
Block ArenaSource<P>::fail(const SourceError& e) noexcept {
  last_error_ = e;
  failures_.add(1);
  return Block{};
}

template <class P>
Block ArenaSource<P>::obtain(std::size_t size) noexcept {
  if (size == 0) return fail(SourceError::make(SourceErrc::bad_size, 0, "arena: size 0"));
  if (size > stride_)
    return fail(SourceError::make(SourceErrc::too_large, 0,
                                  "arena: %zu bytes asked of an arena of %zu-byte blocks", size,
                                  stride_));
  return obtain();
}

// The fast path: pop the free list. Carving, new slabs and bad options are out of line.
template <class P>
Block ArenaSource<P>::obtain() noexcept {
  std::byte* b = pop();
  if (b == nullptr) [[unlikely]]
    return obtain_slow();
  return hand_out(b);
}

template <class P>
Block ArenaSource<P>::obtain_slow() noexcept {
  if (!config_error_.ok()) return fail(config_error_);
  std::byte* b = carve();
  if (b == nullptr) {
    if (!new_slab()) return Block{};  // new_slab counted the failure
    b = carve();
  }
  return hand_out(b);
}

template <class P>
Block ArenaSource<P>::hand_out(std::byte* b) noexcept {
  detail::unpoison(b, stride_);
  std::memset(b, 0, kLinkBytes);  // no stale link or check word in a live block
  if (init_ != nullptr) init_(b, stride_, init_context_);
  obtains_.add(1);
  peak_.raise_to((obtains_.get() - releases_.get()) * stride_);
  return Block{b, stride_};
}

template <class P>
std::byte* ArenaSource<P>::pop() noexcept {
  Link* head = free_;
  if (head == nullptr) return nullptr;
  detail::unpoison(head, kLinkBytes);
  Link* next = head->next;
  if (head->check != check_word(head, next)) [[unlikely]]
    return drop_corrupt_list(head);
  free_ = next;
  --free_count_;
  return reinterpret_cast<std::byte*>(head);
}

// The head was written to after it was released (a use after free, or an overrun from
// the block below). Its link cannot be trusted: the rest of the list is dropped (leaked,
// never reused).
template <class P>
std::byte* ArenaSource<P>::drop_corrupt_list(Link* head) noexcept {
  misuses_.add(1);
  report_misuse(Misuse::overflow, "arena", "obtain", head);
  free_ = nullptr;
  free_count_ = 0;
  return nullptr;
}

template <class P>
std::byte* ArenaSource<P>::carve() noexcept {
  if (carve_ == carve_end_) {
    if (chunk_next_ == slab_end_) return nullptr;
    // The next chunk of the current slab: blocks never straddle chunks, so the chunk of
    // any block is found by masking.
    carve_ = chunk_next_;
    carve_end_ = carve_ + slabs_.chunk_bytes() / stride_ * stride_;
    chunk_next_ += slabs_.chunk_bytes();
  }
  std::byte* b = carve_;
  carve_ += stride_;
  return b;
}

template <class P>
Block ArenaSource<P>::take_from_parent(std::size_t bytes) noexcept {
  if constexpr (AlignedMemorySource<Parent>) {
    return parent_.obtain_aligned(bytes, bytes);
  } else if (bytes <= page_size()) {
    return parent_.obtain(bytes);  // page-aligned by the MemorySource contract
  } else {
    // No aligned obtain: twice the bytes always hold one aligned chunk (half is wasted).
    return bytes > SIZE_MAX / 2 ? Block{} : parent_.obtain(2 * bytes);
  }
}

template <class P>
bool ArenaSource<P>::new_slab() noexcept {
  const std::size_t chunk = slabs_.chunk_bytes();
  const Block got = take_from_parent(chunk);
  if (got.ptr == nullptr) {
    if constexpr (ReportingMemorySource<Parent>) {
      fail(SourceError::make(SourceErrc::exhausted, parent_.last_error().sys_errno(),
                             "arena: the parent refused a %zu-byte slab: %s", chunk,
                             parent_.last_error().message()));
    } else {
      fail(SourceError::make(SourceErrc::exhausted, 0, "arena: the parent refused a %zu-byte slab",
                             chunk));
    }
    return false;
  }
  std::byte* first = got.ptr + padding_for(reinterpret_cast<std::uintptr_t>(got.ptr), chunk);
  const std::size_t chunks =
      first < got.end() ? static_cast<std::size_t>(got.end() - first) / chunk : 0;
  if (chunks == 0 || !slabs_.reserve(chunks)) {
    parent_.release(got);
    fail(SourceError::make(
        chunks == 0 ? SourceErrc::bad_alignment : SourceErrc::out_of_memory, 0, "arena: %s",
        chunks == 0 ? "the parent's slab holds no aligned chunk" : "the slab table cannot grow"));
    return false;
  }
  slabs_.add(detail::SlabTable::Entry{got, first, chunks});
  upstream_.add(got.size);
  detail::poison(got.ptr, got.size);
  carve_ = carve_end_ = nullptr;
  chunk_next_ = first;
  slab_end_ = first + chunks * chunk;
  return true;
}

template <class P>
bool ArenaSource<P>::is_block_start(const void* p) const noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if (align_ == stride_) return (a & (stride_ - 1)) == 0;  // power of two: chunks hold whole blocks
  const std::size_t offset = a & (slabs_.chunk_bytes() - 1);
  return offset % stride_ == 0 && offset / stride_ < slabs_.chunk_bytes() / stride_;
}

// Everything in the slabs was carved but the rest of the current slab.
template <class P>
bool ArenaSource<P>::carved(const void* p) const noexcept {
  const auto* b = static_cast<const std::byte*>(p);
  return !(b >= carve_ && b < carve_end_) && !(b >= chunk_next_ && b < slab_end_);
}

template <class P>
std::byte* ArenaSource<P>::block_start(const void* p) const noexcept {
  if (!slabs_.holds(p)) return nullptr;
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t chunk = a & ~(slabs_.chunk_bytes() - 1);
  const std::size_t index = (a - chunk) / stride_;
  if (index >= slabs_.chunk_bytes() / stride_) return nullptr;  // the tail no block covers
  return reinterpret_cast<std::byte*>(chunk + index * stride_);
}

template <class P>
void ArenaSource<P>::refuse(Misuse what, const void* p) noexcept {
  misuses_.add(1);
  last_error_ = SourceError::make(SourceErrc::misuse, 0, "arena: release of %p refused: %s", p,
                                  to_string(what));
  report_misuse(what, "arena", "release", p);
}

template <class P>
void ArenaSource<P>::release(Block block) noexcept {
  if (block.ptr == nullptr) return;
  if (!slabs_.holds(block.ptr) || !is_block_start(block.ptr) || !carved(block.ptr))
    return refuse(Misuse::foreign_pointer, block.ptr);
  if (block.size > stride_) return refuse(Misuse::wrong_size, block.ptr);
  auto* link = reinterpret_cast<Link*>(block.ptr);
  detail::unpoison(link, kLinkBytes);
  if (link->check == check_word(link, link->next)) {
    detail::poison(link, kLinkBytes);
    return refuse(Misuse::double_free, block.ptr);
  }
  link->next = free_;
  link->check = check_word(link, free_);
  free_ = link;
  ++free_count_;
  detail::poison(block.ptr, stride_);
  releases_.add(1);
}

template <class P>
SourceStats ArenaSource<P>::stats() const noexcept {
  SourceStats s;
  s.obtains = obtains_.get();
  s.releases = releases_.get();
  s.failures = failures_.get();
  s.misuses = misuses_.get();
  s.bytes_held = (s.obtains - s.releases) * stride_;
  s.peak_bytes = peak_.get();
  s.capacity = 0;
  s.upstream_bytes = upstream_.get() + slabs_.metadata_bytes();
  return s;
}

template <class P>
CheckResult ArenaSource<P>::check_invariants() const {
  if (CheckResult r = slabs_.check("arena"); !r) return r;
  std::size_t n = 0;
  for (const Link* l = free_; l != nullptr;) {
    CTXALLOC_INVARIANT(n < free_count_, "arena: the free list is longer than its count ",
                       free_count_, " (a cycle?)");
    CTXALLOC_INVARIANT(slabs_.holds(l) && is_block_start(l) && carved(l), "arena: free block ",
                       static_cast<const void*>(l), " is not a carved block of this arena");
    detail::unpoison(l, kLinkBytes);
    const Link* next = l->next;
    const bool ok = l->check == check_word(l, next);
    detail::poison(l, kLinkBytes);
    CTXALLOC_INVARIANT(ok, "arena: free block ", static_cast<const void*>(l),
                       " was written to after its release (check word broken)");
    l = next;
    ++n;
  }
  CTXALLOC_INVARIANT(n == free_count_, "arena: ", n, " blocks on the free list, count says ",
                     free_count_);
  CTXALLOC_INVARIANT(releases_.get() <= obtains_.get(), "arena: more releases than obtains");
  const std::size_t per_chunk = slabs_.chunk_bytes() / stride_;
  CTXALLOC_INVARIANT(slabs_.chunks() * per_chunk >= obtains_.get() - releases_.get() + free_count_,
                     "arena: ", obtains_.get() - releases_.get(), " live + ", free_count_,
                     " free blocks exceed the slabs' ", slabs_.chunks() * per_chunk);
  return CheckResult::ok();
}

}  // namespace ctxalloc
