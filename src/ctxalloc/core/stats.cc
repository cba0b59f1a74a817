#include "ctxalloc/core/stats.h"

#include <cstdio>

namespace ctxalloc {

Stats& Stats::operator+=(const Stats& o) noexcept {
  allocations += o.allocations;
  deallocations += o.deallocations;
  grows += o.grows;
  shrinks += o.shrinks;
  failures += o.failures;
  misuses += o.misuses;
  bytes_in_use += o.bytes_in_use;
  peak_bytes += o.peak_bytes;  // a sum of peaks: an upper bound of the joint peak
  capacity += o.capacity;
  return *this;
}

std::string to_string(const Stats& s) {
  char buf[320];
  std::snprintf(
      buf, sizeof buf,
      "allocations=%llu deallocations=%llu grows=%llu shrinks=%llu failures=%llu "
      "misuses=%llu bytes_in_use=%llu peak_bytes=%llu capacity=%llu",
      static_cast<unsigned long long>(s.allocations),
      static_cast<unsigned long long>(s.deallocations), static_cast<unsigned long long>(s.grows),
      static_cast<unsigned long long>(s.shrinks), static_cast<unsigned long long>(s.failures),
      static_cast<unsigned long long>(s.misuses), static_cast<unsigned long long>(s.bytes_in_use),
      static_cast<unsigned long long>(s.peak_bytes), static_cast<unsigned long long>(s.capacity));
  return buf;
}
}  // namespace ctxalloc
