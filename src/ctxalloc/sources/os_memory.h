// The system calls that give and take address space and memory: mmap, munmap, madvise,
// populate, with the errno returned instead of left in a global, and an errno told as a
// SourceError. Every mapping of the library, the plugin and the apps is made here; the
// three exceptions say why where they are (core/segment_map.cc: core sits below this
// layer; shared_source.h: installed and header-only; apps/demo: a program's own region).
// mbind is numa_policy.h's apply_numa_policy, its one caller. Nothing here allocates: it
// may run inside malloc.
#pragma once

#include <cstddef>

#include "ctxalloc/core/source_error.h"

namespace ctxalloc {

/// Private anonymous memory: mmap(hint, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags).
/// `flags` adds MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_HUGETLB (with its size), MAP_NORESERVE,
/// MAP_POPULATE. nullptr on failure, with the errno in *err (err may be null).
void* os_map(void* hint, std::size_t bytes, int prot, int flags, int* err) noexcept;

/// Read-write private anonymous memory of `bytes`, zeroed by the kernel: what metadata
/// tables and mapped objects use. nullptr on failure (errno in *err when err is given).
void* os_map_rw(std::size_t bytes, int* err = nullptr) noexcept;

/// Read-write memory of `bytes` aligned to `align` (a power of two), with `flags` as for
/// os_map. The kernel aligns mappings to `natural` by itself (the page, or the hugetlb
/// page size): up to that, one mmap. Above it, address space of bytes + align is reserved
/// (PROT_NONE, MAP_NORESERVE: nothing committed), the aligned part mapped over it with
/// MAP_FIXED and the head and tail unmapped: three system calls, for rare, large requests.
void* os_map_aligned(std::size_t bytes, std::size_t align, int flags, std::size_t natural,
                     int* err) noexcept;

/// Address space reserved at an alignment (see os_reserve_aligned).
struct AlignedReservation {
  std::byte* base = nullptr;  ///< the whole reservation
  std::size_t span = 0;
  std::byte* at = nullptr;  ///< the aligned start inside it
};

/// Reserves bytes + align of address space (PROT_NONE, MAP_NORESERVE) and finds its first
/// `align` boundary; the caller maps or moves memory onto [at, at + bytes), then
/// os_trim_reservation. False with the errno in *err on failure (ENOMEM on overflow).
bool os_reserve_aligned(std::size_t bytes, std::size_t align, AlignedReservation* r,
                        int* err) noexcept;

/// Unmaps what is left of the reservation around [at, at + bytes).
void os_trim_reservation(const AlignedReservation& r, std::size_t bytes) noexcept;

/// munmap; 0 or the errno.
int os_unmap(void* p, std::size_t bytes) noexcept;

/// madvise; 0 or the errno.
int os_advise(void* p, std::size_t bytes, int advice) noexcept;

/// Faults every page of [p, p + bytes) in for writing: MADV_POPULATE_WRITE (Linux 5.14),
/// which reports a failure (a bound node out of memory) as an errno instead of SIGBUS; on
/// older kernels (EINVAL) one write per page. 0 or the errno.
int os_populate(void* p, std::size_t bytes) noexcept;

/// A failed call as a SourceError: out_of_memory for ENOMEM, system_error otherwise, with
/// "<who>: <what> of <bytes> bytes failed: errno <err>".
SourceError os_error(const char* who, const char* what, std::size_t bytes, int err) noexcept;

}  // namespace ctxalloc
