// Objects in their own anonymous mapping: the C API's handles are made and destroyed with
// these instead of new/delete, so that creating one never calls malloc (the C API may be
// used from inside a malloc replacement). A handle costs at least one page; handles are
// few (sources and allocators, not blocks), so the page is cheap next to the allocator's
// own region.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/sources/kernel_info.h"
#include "ctxalloc/sources/os_memory.h"

namespace ctxalloc::detail {

/// The mapping's length lives in its first bytes; the object follows at this offset.
inline constexpr std::size_t kMappedHeader = 64;

/// A T built from args in a fresh mapping, or nullptr when mmap fails.
template <class T, class... Args>
T* mapped_new(Args&&... args) noexcept {
  static_assert(alignof(T) <= kMappedHeader);
  static_assert(std::is_nothrow_constructible_v<T, Args...>);
  const std::size_t bytes = align_up(kMappedHeader + sizeof(T), page_size());
  void* m = os_map_rw(bytes);
  if (m == nullptr) return nullptr;
  *static_cast<std::size_t*>(m) = bytes;
  return new (static_cast<std::byte*>(m) + kMappedHeader) T(std::forward<Args>(args)...);
}

/// Destroys an object mapped_new made (through a pointer to any of its polymorphic
/// bases) and unmaps it. nullptr is a no-op.
template <class Base>
void mapped_delete(Base* p) noexcept {
  if (p == nullptr) return;
  std::byte* object = static_cast<std::byte*>(dynamic_cast<void*>(p));  // the most derived
  p->~Base();
  std::byte* m = object - kMappedHeader;
  os_unmap(m, *reinterpret_cast<std::size_t*>(m));
}

}  // namespace ctxalloc::detail
