#include "ctxalloc/replace/detail/bootstrap.h"

namespace ctxalloc::replace::detail {
namespace {

constexpr std::size_t align_up(std::size_t v, std::size_t a) noexcept {
  return (v + a - 1) & ~(a - 1);
}

// constinit: no constructor runs, so the arena works before any initialiser has.
constinit BootstrapArena g_arena;

}  // namespace

BootstrapArena& bootstrap_arena() noexcept {
  return g_arena;
}

void* BootstrapArena::allocate(std::size_t size, std::size_t align) noexcept {
  if (align < 16) align = 16;
  if (align > kMaxAlign || size > kBytes) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  std::size_t from = top_.load(std::memory_order_relaxed);
  for (;;) {
    const std::size_t start = align_up(from + sizeof(Header), align);
    const std::size_t end = align_up(start + (size == 0 ? 1 : size), 16);
    if (end > kBytes) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    if (top_.compare_exchange_weak(from, end, std::memory_order_acq_rel,
                                   std::memory_order_relaxed)) {
      auto* h = reinterpret_cast<Header*>(storage_ + start - sizeof(Header));
      *h = Header{size, static_cast<std::uint32_t>(from), static_cast<std::uint32_t>(end)};
      allocations_.fetch_add(1, std::memory_order_relaxed);
      bytes_.fetch_add(size, std::memory_order_relaxed);
      return storage_ + start;
    }
  }
}

void BootstrapArena::deallocate(void* p) noexcept {
  const auto* h = reinterpret_cast<const Header*>(static_cast<unsigned char*>(p) - sizeof(Header));
  frees_.fetch_add(1, std::memory_order_relaxed);
  std::size_t expected = h->end;
  if (top_.compare_exchange_strong(expected, h->from, std::memory_order_acq_rel,
                                   std::memory_order_relaxed)) {
    reclaimed_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::size_t BootstrapArena::size_of(const void* p) const noexcept {
  return reinterpret_cast<const Header*>(static_cast<const unsigned char*>(p) - sizeof(Header))
      ->size;
}

BootstrapArena::Counts BootstrapArena::counts() const noexcept {
  return Counts{
      allocations_.load(std::memory_order_relaxed), bytes_.load(std::memory_order_relaxed),
      frees_.load(std::memory_order_relaxed),       reclaimed_.load(std::memory_order_relaxed),
      refused_.load(std::memory_order_relaxed),     top_.load(std::memory_order_relaxed)};
}

}  // namespace ctxalloc::replace::detail
