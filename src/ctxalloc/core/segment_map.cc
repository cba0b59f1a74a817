#include "ctxalloc/core/segment_map.h"

#include <sys/mman.h>

#include <mutex>

namespace ctxalloc {

std::atomic<std::uintptr_t> SegmentMap::limit_{0};
std::atomic<const OwnerTag*>* SegmentMap::table_ = nullptr;

namespace {
// Registration is rare (a new segment); one lock keeps it simple. Lookups take no lock.
std::mutex& registry_lock() {
  static std::mutex m;
  return m;
}
std::atomic<std::size_t> g_registered{0};
}  // namespace

bool SegmentMap::ensure_table() noexcept {
  if (limit_.load(std::memory_order_acquire) != 0) return true;
  // A raw mmap, not sources/os_memory.h: core sits below the sources layer.
  void* t = mmap(nullptr, kEntries * sizeof(table_[0]), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (t == MAP_FAILED) return false;
  table_ = static_cast<std::atomic<const OwnerTag*>*>(t);
  limit_.store(kEntries, std::memory_order_release);  // publishes table_
  return true;
}

bool SegmentMap::register_range(const void* base, std::size_t size, const OwnerTag* tag) noexcept {
  const auto b = reinterpret_cast<std::uintptr_t>(base);
  if (tag == nullptr || size == 0 || (b & (kSegmentSize - 1)) != 0 ||
      (size & (kSegmentSize - 1)) != 0) {
    return false;
  }
  const std::uintptr_t first = b >> kShift;
  const std::uintptr_t count = size >> kShift;
  if (first >= kEntries || count > kEntries - first) return false;
  std::lock_guard<std::mutex> lock(registry_lock());
  if (!ensure_table()) return false;
  for (std::uintptr_t i = first; i < first + count; ++i) {
    if (table_[i].load(std::memory_order_relaxed) != nullptr) return false;
  }
  for (std::uintptr_t i = first; i < first + count; ++i) {
    table_[i].store(tag, std::memory_order_relaxed);
  }
  g_registered.fetch_add(count, std::memory_order_relaxed);
  return true;
}

void SegmentMap::unregister_range(const void* base, std::size_t size,
                                  const OwnerTag* tag) noexcept {
  const auto b = reinterpret_cast<std::uintptr_t>(base);
  if (limit_.load(std::memory_order_acquire) == 0) return;
  const std::uintptr_t first = b >> kShift;
  const std::uintptr_t count = (size + kSegmentSize - 1) >> kShift;
  if (first >= kEntries) return;
  std::lock_guard<std::mutex> lock(registry_lock());
  for (std::uintptr_t i = first; i < first + count && i < kEntries; ++i) {
    if (table_[i].load(std::memory_order_relaxed) == tag) {
      table_[i].store(nullptr, std::memory_order_relaxed);
      g_registered.fetch_sub(1, std::memory_order_relaxed);
    }
  }
}

std::size_t SegmentMap::registered_slots() noexcept {
  return g_registered.load(std::memory_order_relaxed);
}

}  // namespace ctxalloc
