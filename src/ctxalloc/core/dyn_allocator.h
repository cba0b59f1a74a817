// A runtime-polymorphic allocator, for choices made at run time (config files pick the
// allocator kind). One virtual call per operation; the concrete allocators stay
// non-virtual for callers that know their type.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "ctxalloc/core/allocator.h"

namespace ctxalloc {

class DynAllocator {
 public:
  virtual ~DynAllocator() = default;

  virtual Block allocate(Layout layout) noexcept = 0;
  virtual Block allocate_zeroed(Layout layout) noexcept = 0;
  virtual void deallocate(Block block, std::size_t align) noexcept = 0;
  virtual Block grow(Block block, Layout new_layout, Move move) noexcept = 0;
  virtual Block shrink(Block block, Layout new_layout, Move move) noexcept = 0;
  virtual bool contains(const void* p) const noexcept = 0;
  virtual CheckResult check_invariants() const = 0;
  virtual Stats stats() const noexcept = 0;
  /// A short name of the concrete allocator ("bump", "bitset", ...), for logs.
  virtual const char* name() const noexcept = 0;
};

static_assert(Allocator<DynAllocator>);

/// DynAllocator over a concrete allocator it owns. `Interface` is DynAllocator or an
/// interface derived from it that adds virtual functions of its own (the C API's
/// ctxalloc_allocator); a class deriving from DynAllocatorOf<A, Interface> implements those
/// and reaches the allocator through get().
template <Allocator A, class Interface = DynAllocator>
requires std::is_base_of_v<DynAllocator, Interface>
class DynAllocatorOf : public Interface {
 public:
  template <class... Args>
  explicit DynAllocatorOf(const char* name,
                          Args&&... args) noexcept(std::is_nothrow_constructible_v<A, Args&&...>)
      : name_(name), a_(std::forward<Args>(args)...) {}

  Block allocate(Layout layout) noexcept override { return a_.allocate(layout); }
  Block allocate_zeroed(Layout layout) noexcept override { return a_.allocate_zeroed(layout); }
  void deallocate(Block block, std::size_t align) noexcept override { a_.deallocate(block, align); }
  Block grow(Block block, Layout new_layout, Move move) noexcept override {
    return a_.grow(block, new_layout, move);
  }
  Block shrink(Block block, Layout new_layout, Move move) noexcept override {
    return a_.shrink(block, new_layout, move);
  }
  bool contains(const void* p) const noexcept override { return a_.contains(p); }
  CheckResult check_invariants() const override { return a_.check_invariants(); }
  Stats stats() const noexcept override { return a_.stats(); }
  const char* name() const noexcept override { return name_; }

  A& get() noexcept { return a_; }
  const A& get() const noexcept { return a_; }

 private:
  const char* name_;
  A a_;
};

/// Builds a DynAllocatorOf<A> on the heap.
template <Allocator A, class... Args>
std::unique_ptr<DynAllocator> make_dyn_allocator(const char* name, Args&&... args) {
  return std::make_unique<DynAllocatorOf<A>>(name, std::forward<Args>(args)...);
}

}  // namespace ctxalloc
