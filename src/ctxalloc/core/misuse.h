// Misuse of an allocator by its caller: a double free, a pointer no allocator owns, a
// wrong size or alignment, a write past a block, use of a released context, a free on
// the wrong lcore. Allocators detect what they can cheaply and report it here.
//
// Policy: `abort` prints one line naming the allocator, the pointer and the operation
// to stderr and aborts (the default in builds with checks); `count` prints nothing and
// only counts (the default in release builds, where the allocator's own stats count it
// too). CTXALLOC_MISUSE=abort|count in the environment overrides the default.
#pragma once

#include <cstdint>

namespace ctxalloc {

enum class Misuse : std::uint8_t {
  double_free,
  foreign_pointer,
  wrong_size,
  wrong_alignment,
  overflow,          ///< a canary past the end of a block was overwritten
  released_context,  ///< use of a context after it was released
  live_on_release,   ///< a context released while blocks in it are live
  wrong_thread,      ///< used or freed on a thread (lcore) where that is forbidden
  bad_argument,      ///< an argument that no call could accept (not a power-of-two align...)
};

/// A short name: "double free", "foreign pointer", ...
const char* to_string(Misuse m) noexcept;

enum class MisusePolicy : std::uint8_t { abort, count };

/// The policy now in force (see the header comment for the default).
MisusePolicy misuse_policy() noexcept;
void set_misuse_policy(MisusePolicy p) noexcept;

/// Reports a misuse: writes "ctxalloc: <what> in <allocator>.<operation>(<ptr>)" and
/// aborts under the abort policy; otherwise counts it. Safe to call from inside malloc:
/// it allocates nothing.
[[gnu::cold]] void report_misuse(Misuse what, const char* allocator, const char* operation,
                                 const void* ptr) noexcept;

/// Misuses reported in this process so far (all allocators, all threads).
std::uint64_t misuse_count() noexcept;

}  // namespace ctxalloc
