// A std::pmr::memory_resource over the switchable allocator: allocations go to whatever
// is current on the calling thread (its context, its thread heap or the global heap),
// frees to the block's owner. A std::pmr container built on it allocates in the flow's
// context while a ContextScope is alive, with no allocator plumbing in between.
#pragma once

#include <memory_resource>
#include <new>

#include "ctxalloc/switchable/switchable.h"

namespace ctxalloc {

class CurrentResource final : public std::pmr::memory_resource {
 private:
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    void* p = ctxalloc::allocate(bytes, align);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t) override {
    ctxalloc::deallocate(p, bytes);
  }
  // Every CurrentResource is the same resource: memory from one can go back to another.
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return dynamic_cast<const CurrentResource*>(&other) != nullptr;
  }
};

/// The process's CurrentResource.
inline std::pmr::memory_resource* current_resource() noexcept {
  static CurrentResource r;
  return &r;
}

}  // namespace ctxalloc
