// What the C API's opaque handles (ctxalloc.h) are in C++: a ctxalloc_source is a memory
// source behind a mutex and a virtual interface (sources are called a region at a time,
// so a virtual call and an uncontended lock are noise next to mmap); a ctxalloc_allocator
// is a DynAllocator with the few extras the C API needs (sizes recovered for free(p) and
// realloc, reset). Internal to the library, not installed.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <type_traits>
#include <utility>

#include "ctxalloc/allocators/memory_map_allocator.h"
#include "ctxalloc/core/dyn_allocator.h"
#include "ctxalloc/core/memory_source.h"
#include "ctxalloc/core/source_error.h"
#include "ctxalloc/sources/arena_source.h"

/// A memory source for the C API. Thread-safe: every call takes the handle's mutex.
struct ctxalloc_source {
  virtual ~ctxalloc_source() = default;

  /// A region of at least size bytes aligned to align (<= 1: the natural alignment); a
  /// null Block with the reason in *why otherwise.
  virtual ctxalloc::Block obtain(std::size_t size, std::size_t align,
                                 ctxalloc::SourceError* why) noexcept = 0;
  /// Gives a region back; false, with the reason in *why, when the source refused it.
  virtual bool release(ctxalloc::Block region, ctxalloc::SourceError* why) noexcept = 0;
  virtual ctxalloc::SourceStats stats() const noexcept = 0;
  virtual ctxalloc::CheckResult check_invariants() const = 0;
  /// "mmap", "region", "arena".
  virtual const char* name() const noexcept = 0;

  /// Allocators and arenas built on this source: it may not be destroyed before them.
  std::atomic<long> users{0};
  /// The arena's parent (whose users count includes this source), else nullptr.
  ctxalloc_source* parent = nullptr;
};

/// An allocator for the C API.
struct ctxalloc_allocator : ctxalloc::DynAllocator {
  /// The size of the live block starting at p, or 0 when the allocator cannot tell.
  virtual std::size_t allocated_size(const void* p) const noexcept = 0;
  /// Frees p without its size (the allocator recovers it where it can).
  virtual void free_unsized(void* p) noexcept = 0;
  /// Forgets every block; false when the allocator cannot.
  virtual bool reset() noexcept = 0;

  /// Where `region` came from and goes back to on destroy (nullptr: no region).
  ctxalloc_source* source = nullptr;
  ctxalloc::Block region;
};

namespace ctxalloc::capi {

/// A ctxalloc_source over a source S of type MemoryMapSource, RegionSource or
/// ArenaSource<ParentRef>.
template <class S>
class SourceHandle final : public ctxalloc_source {
 public:
  template <class... Args>
  explicit SourceHandle(const char* name, Args&&... args) noexcept
      : name_(name), s_(std::forward<Args>(args)...) {}

  Block obtain(std::size_t size, std::size_t align, SourceError* why) noexcept override {
    std::lock_guard<std::mutex> hold(lock_);
    Block b;
    if constexpr (AlignedMemorySource<S>) {
      b = align <= 1 ? s_.obtain(size) : s_.obtain_aligned(size, align);
    } else {
      // An arena's blocks are all alike: aligned to block_align(), no more.
      if (align > s_.block_align()) {
        *why = SourceError::make(SourceErrc::bad_alignment, 0,
                                 "arena: alignment %zu above the blocks' alignment %zu", align,
                                 s_.block_align());
        return Block{};
      }
      b = s_.obtain(size);
    }
    if (b.ptr == nullptr) *why = s_.last_error();
    return b;
  }

  bool release(Block region, SourceError* why) noexcept override {
    std::lock_guard<std::mutex> hold(lock_);
    const std::uint64_t before = s_.stats().misuses;
    s_.release(region);
    if (s_.stats().misuses == before) return true;
    *why = s_.last_error();
    return false;
  }

  SourceStats stats() const noexcept override {
    std::lock_guard<std::mutex> hold(lock_);
    return s_.stats();
  }
  CheckResult check_invariants() const override {
    std::lock_guard<std::mutex> hold(lock_);
    return s_.check_invariants();
  }
  const char* name() const noexcept override { return name_; }

  /// The source itself, for set-up before the handle is shared.
  S& get() noexcept { return s_; }

 private:
  const char* name_;
  mutable std::mutex lock_;
  S s_;
};

/// An arena's parent: another C handle, called through its (locking) interface.
struct ParentRef {
  ctxalloc_source* parent;
  Block obtain(std::size_t size) noexcept {
    SourceError why;
    return parent->obtain(size, 1, &why);
  }
  void release(Block b) noexcept {
    SourceError why;
    parent->release(b, &why);
  }
};

/// A ctxalloc_allocator over an allocator A it owns: DynAllocatorOf's forwarding, plus
/// the C API's extras.
template <class A>
class AllocatorHandle final : public DynAllocatorOf<A, ctxalloc_allocator> {
  using Base = DynAllocatorOf<A, ctxalloc_allocator>;

 public:
  // noexcept: the C API builds handles in mapped memory and has no exception to give.
  template <class... Args>
  explicit AllocatorHandle(const char* name, Args&&... args) noexcept
      : Base(name, std::forward<Args>(args)...) {}
  using Base::get;

  std::size_t allocated_size(const void* p) const noexcept override {
    const A& a = get();
    if constexpr (requires { a.allocated_size(p); }) {
      return a.allocated_size(p);
    } else if constexpr (requires { a.mapping_of(p); }) {
      const Block m = a.mapping_of(p);  // the mmap allocator: a block is a mapping
      return m.ptr == p ? m.size : 0;
    } else {
      return 0;
    }
  }

  void free_unsized(void* p) noexcept override {
    // Size 0 means "not known" to every allocator here but the mmap allocator, to which
    // it names the one-page block of a zero-size request: give that one the real size.
    std::size_t size = 0;
    if constexpr (std::is_same_v<A, MemoryMapAllocator>) size = allocated_size(p);
    // Alignment 1: "not known" (an unsized free cannot know it; checked builds would
    // report any other one the block happens not to have as wrong_alignment).
    get().deallocate(Block{static_cast<std::byte*>(p), size}, 1);
  }

  bool reset() noexcept override {
    A& a = get();
    if constexpr (requires { a.reset(); }) {
      a.reset();
      return true;
    } else {
      return false;
    }
  }
};

}  // namespace ctxalloc::capi
