#include "ctxalloc/core/check.h"

#include <cstdio>

namespace ctxalloc {

std::string describe(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

}  // namespace ctxalloc
