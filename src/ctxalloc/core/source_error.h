// What went wrong in a memory source: an error code, the errno of the system call that
// failed (if one did) and a one-line message with the details (which node, how many
// hugepages were free, which option). Sources never throw: obtain() returns a null Block
// and keeps the reason here, like errno but per source.
#pragma once

#include <cstdint>

namespace ctxalloc {

enum class SourceErrc : std::uint8_t {
  ok = 0,
  bad_option,             ///< options no call can satisfy (contradictory flags, bad node list)
  no_such_node,           ///< a NUMA node that is not in the system (or not allowed)
  numa_unavailable,       ///< a NUMA policy on a kernel without NUMA support
  hugepages_unavailable,  ///< too few free hugepages of the size asked for, and no fallback
  huge_size_unsupported,  ///< the kernel has no hugepages of that size, and no fallback
  bad_size,               ///< size 0, or so large that rounding it up overflows
  bad_alignment,          ///< not a power of two, or more than the source can honour
  too_large,              ///< larger than the source's blocks (arena) or free space (region)
  exhausted,              ///< the source (or its parent) has no room left
  out_of_memory,          ///< the kernel refused the memory (ENOMEM)
  policy_failed,          ///< mbind refused the NUMA policy
  populate_failed,        ///< pages could not be faulted in (populate)
  lock_failed,            ///< mlock failed (RLIMIT_MEMLOCK, no CAP_IPC_LOCK)
  would_move,             ///< growing in place is impossible and moving is forbidden
  region_too_small,       ///< a caller-supplied region cannot hold its metadata and one piece
  misuse,                 ///< a release the source refused (double, foreign, wrong size)
  system_error,           ///< another system call failed (sys_errno() says how)
};

/// A short name: "no such node", "hugepages unavailable", ...
const char* to_string(SourceErrc code) noexcept;

/// An error code with its errno and a message. Fixed size, no heap: sources that serve
/// malloc fill it in on their failure paths.
class SourceError {
 public:
  /// ok(), with an empty message. Only the first byte of the message is written: success
  /// paths create these on every call, and clearing the whole buffer each time would be
  /// a large part of what a cheap success path costs.
  SourceError() noexcept { message_[0] = '\0'; }

  /// An error whose message is printf-formatted into the object (truncated if long).
  [[gnu::format(printf, 3, 4)]] static SourceError make(SourceErrc code, int sys_errno,
                                                        const char* format, ...) noexcept;

  bool ok() const noexcept { return code_ == SourceErrc::ok; }
  SourceErrc code() const noexcept { return code_; }
  /// The errno of the failed system call, 0 when none was involved.
  int sys_errno() const noexcept { return errno_; }
  /// "mmap_source: node 3 is not in the system (nodes 0-0)"; "" when ok().
  const char* message() const noexcept { return message_; }

 private:
  SourceErrc code_ = SourceErrc::ok;
  int errno_ = 0;
  char message_[224];  // NUL-terminated; bytes after the NUL are unspecified
};

}  // namespace ctxalloc
