#include "ctxalloc/adaptors/detail/c_error.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>

namespace ctxalloc::capi {
namespace {

// One line per thread; initial-exec would be cheaper but the library is also built as a
// shared object that may be dlopen'ed, so the default TLS model is kept (failures only).
thread_local char t_message[320];

void record(const char* format, va_list args) noexcept {
  std::vsnprintf(t_message, sizeof t_message, format, args);
}

}  // namespace

int fail(int code, const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  record(format, args);
  va_end(args);
  return -code;
}

std::nullptr_t fail_null(int code, const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  record(format, args);
  va_end(args);
  errno = code;
  return nullptr;
}

const char* last_error() noexcept {
  return t_message;
}

}  // namespace ctxalloc::capi
