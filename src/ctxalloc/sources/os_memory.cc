#include "ctxalloc/sources/os_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>

#include "ctxalloc/core/bits.h"
#include "ctxalloc/sources/kernel_info.h"

namespace ctxalloc {

void* os_map(void* hint, std::size_t bytes, int prot, int flags, int* err) noexcept {
  void* p = ::mmap(hint, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  if (p != MAP_FAILED) return p;
  if (err != nullptr) *err = errno;
  return nullptr;
}

void* os_map_rw(std::size_t bytes, int* err) noexcept {
  return os_map(nullptr, bytes, PROT_READ | PROT_WRITE, 0, err);
}

bool os_reserve_aligned(std::size_t bytes, std::size_t align, AlignedReservation* r,
                        int* err) noexcept {
  if (bytes > SIZE_MAX - align) {
    *err = ENOMEM;
    return false;
  }
  const std::size_t span = bytes + align;
  void* base = os_map(nullptr, span, PROT_NONE, MAP_NORESERVE, err);
  if (base == nullptr) return false;
  r->base = static_cast<std::byte*>(base);
  r->span = span;
  r->at = r->base + padding_for(reinterpret_cast<std::uintptr_t>(base), align);
  return true;
}

void os_trim_reservation(const AlignedReservation& r, std::size_t bytes) noexcept {
  if (r.at > r.base) ::munmap(r.base, static_cast<std::size_t>(r.at - r.base));
  std::byte* end = r.at + bytes;
  if (end < r.base + r.span) ::munmap(end, static_cast<std::size_t>(r.base + r.span - end));
}

void* os_map_aligned(std::size_t bytes, std::size_t align, int flags, std::size_t natural,
                     int* err) noexcept {
  constexpr int kProt = PROT_READ | PROT_WRITE;
  if (align <= natural) return os_map(nullptr, bytes, kProt, flags, err);
  AlignedReservation r;
  if (!os_reserve_aligned(bytes, align, &r, err)) return nullptr;
  // MAP_FIXED is safe here: the range is ours.
  if (os_map(r.at, bytes, kProt, MAP_FIXED | flags, err) == nullptr) {
    ::munmap(r.base, r.span);
    return nullptr;
  }
  os_trim_reservation(r, bytes);
  return r.at;
}

int os_unmap(void* p, std::size_t bytes) noexcept {
  return ::munmap(p, bytes) == 0 ? 0 : errno;
}

int os_advise(void* p, std::size_t bytes, int advice) noexcept {
  return ::madvise(p, bytes, advice) == 0 ? 0 : errno;
}

int os_populate(void* p, std::size_t bytes) noexcept {
  const int err = os_advise(p, bytes, MADV_POPULATE_WRITE);
  if (err != EINVAL) return err;
  for (std::size_t off = 0; off < bytes; off += page_size())
    static_cast<volatile std::byte*>(p)[off] = std::byte{0};
  return 0;
}

SourceError os_error(const char* who, const char* what, std::size_t bytes, int err) noexcept {
  return SourceError::make(err == ENOMEM ? SourceErrc::out_of_memory : SourceErrc::system_error,
                           err, "%s: %s of %zu bytes failed: errno %d", who, what, bytes, err);
}

}  // namespace ctxalloc
