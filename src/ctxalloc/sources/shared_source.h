// SharedSource<S>: a reference-counted handle to one source S, so that several
// allocators (on several threads) can take memory from it: copy the handle into each.
// The last handle to go destroys S (which gives back what it holds).
//
// Every call to S runs under one mutex. That is cheap enough because sources are called
// rarely (a slab, a segment, a chunk at a time, never per object): an uncontended
// std::mutex is two atomic operations, next to an mmap of microseconds behind it. A
// mutex rather than a spin lock because S may sit in mmap/mlock/populate for
// milliseconds; waiters then sleep instead of burning the other core. The control block
// (counter, mutex, S) lives in its own mmap'd pages: no malloc, so the handle can be
// made inside malloc.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/core/memory_source.h"
#include "ctxalloc/sources/kernel_info.h"

namespace ctxalloc {

template <class S>
class SharedSource {
  static_assert(MemorySource<S>);

 public:
  /// An empty handle: obtain fails, release is a no-op.
  SharedSource() noexcept = default;

  /// S built from args in a new control block; an empty handle when its mmap fails.
  template <class... Args>
  static SharedSource make(Args&&... args) noexcept {
    static_assert(std::is_nothrow_constructible_v<S, Args...>);
    // A raw mmap: this header is installed and header-only, os_memory.h is neither.
    void* p = ::mmap(nullptr, control_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    SharedSource h;
    if (p != MAP_FAILED) h.c_ = new (p) Control(std::forward<Args>(args)...);
    return h;
  }

  SharedSource(const SharedSource& o) noexcept : c_(o.c_) {
    if (c_ != nullptr) c_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  SharedSource(SharedSource&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  SharedSource& operator=(SharedSource o) noexcept {
    std::swap(c_, o.c_);
    return *this;
  }
  ~SharedSource() { drop(); }

  explicit operator bool() const noexcept { return c_ != nullptr; }
  /// Handles sharing this source (0 for an empty handle).
  long use_count() const noexcept {
    return c_ == nullptr ? 0 : c_->refs.load(std::memory_order_relaxed);
  }

  /// S::obtain under the lock.
  Block obtain(std::size_t size) noexcept {
    if (c_ == nullptr) return Block{};
    std::lock_guard<std::mutex> g(c_->lock);
    return c_->source.obtain(size);
  }

  /// S::obtain_aligned under the lock (when S has it).
  Block obtain_aligned(std::size_t size,
                       std::size_t align) noexcept requires AlignedMemorySource<S> {
    if (c_ == nullptr) return Block{};
    std::lock_guard<std::mutex> g(c_->lock);
    return c_->source.obtain_aligned(size, align);
  }

  /// S::release under the lock. Blocks may be released through any handle, on any thread.
  void release(Block block) noexcept {
    if (c_ == nullptr) return;
    std::lock_guard<std::mutex> g(c_->lock);
    c_->source.release(block);
  }

  /// S's counters, read under the lock.
  SourceStats stats() const noexcept requires ReportingMemorySource<S> {
    if (c_ == nullptr) return SourceStats{};
    std::lock_guard<std::mutex> g(c_->lock);
    return c_->source.stats();
  }

  /// A copy of S's last error. Shared by every thread: another thread's failure may have
  /// replaced it by the time a caller looks (take it inside with_locked() to be sure).
  SourceError last_error() const noexcept requires ReportingMemorySource<S> {
    if (c_ == nullptr)
      return SourceError::make(SourceErrc::bad_option, 0, "shared_source: empty handle");
    std::lock_guard<std::mutex> g(c_->lock);
    return c_->source.last_error();
  }

  /// Runs f(S&) under the lock and returns what it returns: for calls the handle does not
  /// forward (check_invariants, reports, an obtain and its error together). The handle
  /// must not be empty.
  template <class F>
  decltype(auto) with_locked(F&& f) const {
    std::lock_guard<std::mutex> g(c_->lock);
    return std::forward<F>(f)(c_->source);
  }

 private:
  struct Control {
    template <class... Args>
    explicit Control(Args&&... args) noexcept : source(std::forward<Args>(args)...) {}
    std::atomic<long> refs{1};
    mutable std::mutex lock;
    S source;
  };

  static std::size_t control_bytes() noexcept { return align_up(sizeof(Control), page_size()); }

  void drop() noexcept {
    if (c_ == nullptr) return;
    // acq_rel: the last owner sees every other owner's writes to S before destroying it.
    if (c_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      c_->~Control();
      ::munmap(c_, control_bytes());
    }
    c_ = nullptr;
  }

  Control* c_ = nullptr;
};

}  // namespace ctxalloc
