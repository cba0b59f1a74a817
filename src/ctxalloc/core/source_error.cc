#include "ctxalloc/core/source_error.h"

#include <cstdarg>
#include <cstdio>

namespace ctxalloc {

const char* to_string(SourceErrc code) noexcept {
  switch (code) {
    case SourceErrc::ok:
      return "ok";
    case SourceErrc::bad_option:
      return "bad option";
    case SourceErrc::no_such_node:
      return "no such node";
    case SourceErrc::numa_unavailable:
      return "NUMA unavailable";
    case SourceErrc::hugepages_unavailable:
      return "hugepages unavailable";
    case SourceErrc::huge_size_unsupported:
      return "hugepage size unsupported";
    case SourceErrc::bad_size:
      return "bad size";
    case SourceErrc::bad_alignment:
      return "bad alignment";
    case SourceErrc::too_large:
      return "too large";
    case SourceErrc::exhausted:
      return "exhausted";
    case SourceErrc::out_of_memory:
      return "out of memory";
    case SourceErrc::policy_failed:
      return "NUMA policy failed";
    case SourceErrc::populate_failed:
      return "populate failed";
    case SourceErrc::lock_failed:
      return "lock failed";
    case SourceErrc::would_move:
      return "would move";
    case SourceErrc::region_too_small:
      return "region too small";
    case SourceErrc::misuse:
      return "misuse";
    case SourceErrc::system_error:
      return "system error";
  }
  return "unknown error";
}

SourceError SourceError::make(SourceErrc code, int sys_errno, const char* format, ...) noexcept {
  SourceError e;
  e.code_ = code;
  e.errno_ = sys_errno;
  // vsnprintf with %s/%d/%zu conversions formats into the caller's buffer through a
  // FILE on the stack: it allocates nothing, so this is safe on malloc's own paths.
  va_list args;
  va_start(args, format);
  std::vsnprintf(e.message_, sizeof e.message_, format, args);
  va_end(args);
  return e;
}

}  // namespace ctxalloc
