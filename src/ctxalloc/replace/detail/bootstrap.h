// BootstrapArena: where the process allocator serves a call that arrives while the same
// thread is already inside it -- a malloc from a library function the allocator called
// (pthread_setspecific allocates a second-level key array for keys above 31), or from a
// fork handler that runs while the allocator's locks are held. Such calls cannot enter
// the switchable allocator again (its lazy init is not reentrant, its locks are not
// recursive), so they get memory from a static 256 KiB region instead: a lock-free bump
// pointer (one CAS), a 16-byte header with the size, and a free that rolls the pointer
// back when the block is the last one (otherwise the bytes stay used, and are counted).
// Exhausted, it returns null: the caller reports ENOMEM. Nothing else is allocated here
// in a healthy process; the exit statistics show how much was.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ctxalloc::replace::detail {

class BootstrapArena {
 public:
  static constexpr std::size_t kBytes = std::size_t{256} << 10;
  static constexpr std::size_t kMaxAlign = 4096;

  /// size bytes aligned to align (a power of two up to kMaxAlign; smaller ones get 16),
  /// or null when the arena is full.
  void* allocate(std::size_t size, std::size_t align) noexcept;
  /// Gives p back: the bump pointer moves back when p is the last block.
  void deallocate(void* p) noexcept;
  bool contains(const void* p) const noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const auto b = reinterpret_cast<std::uintptr_t>(storage_);
    return a >= b && a < b + kBytes;
  }
  /// The size asked for p (p from allocate).
  std::size_t size_of(const void* p) const noexcept;

  struct Counts {
    std::uint64_t allocations;
    std::uint64_t bytes;      ///< bytes asked for in all
    std::uint64_t frees;      ///< frees of arena blocks
    std::uint64_t reclaimed;  ///< frees that moved the bump pointer back
    std::uint64_t refused;    ///< allocations refused (the arena was full)
    std::size_t in_use;       ///< bytes of the arena used now
  };
  Counts counts() const noexcept;

 private:
  struct Header {
    std::uint64_t size;  // bytes asked for
    std::uint32_t from;  // the bump offset before this block (for the roll-back)
    std::uint32_t end;   // the bump offset after it
  };
  static_assert(sizeof(Header) == 16);

  alignas(kMaxAlign) unsigned char storage_[kBytes] = {};  // .bss: zero pages until used
  std::atomic<std::size_t> top_{0};
  std::atomic<std::uint64_t> allocations_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> frees_{0};
  std::atomic<std::uint64_t> reclaimed_{0};
  std::atomic<std::uint64_t> refused_{0};
};

/// The process's one arena (static storage: zero pages until touched).
BootstrapArena& bootstrap_arena() noexcept;

}  // namespace ctxalloc::replace::detail
