// Kernel facts the source tests compare against or skip on: residency of pages
// (mincore), /proc/vmstat counters, /proc/sys values, and a helper to drop
// CAP_IPC_LOCK in a child process (so that RLIMIT_MEMLOCK applies even to root).
#pragma once

#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "ctxalloc/sources/kernel_info.h"

namespace ctxalloc::testing {

/// Pages of [p, p + len) that are resident, by mincore (exact for this range, unlike
/// smaps, which reports a whole VMA).
inline std::size_t resident_pages(const void* p, std::size_t len) {
  const std::size_t pages = (len + page_size() - 1) / page_size();
  std::vector<unsigned char> vec(pages);
  if (::mincore(const_cast<void*>(p), len, vec.data()) != 0) return SIZE_MAX;
  std::size_t n = 0;
  for (unsigned char v : vec)
    n += v & 1;
  return n;
}

/// Whether [p, p + len) is mapped at all (msync fails with ENOMEM otherwise).
inline bool is_mapped(const void* p, std::size_t len) {
  return ::msync(const_cast<void*>(p), len, MS_ASYNC) == 0;
}

/// A counter of /proc/vmstat ("thp_fault_fallback"), or 0.
inline std::uint64_t vmstat(const std::string& key) {
  std::ifstream in("/proc/vmstat");
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

/// A number from a /proc or /sys file, or fallback.
inline std::uint64_t read_proc_number(const char* path, std::uint64_t fallback = 0) {
  std::ifstream in(path);
  std::uint64_t v = fallback;
  in >> v;
  return v;
}

/// Clears CAP_IPC_LOCK from this process's effective set (for use in a child process).
inline bool drop_ipc_lock_capability() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  data[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
  return ::syscall(SYS_capset, &header, data) == 0;
}

}  // namespace ctxalloc::testing
