// The C API's error reporting: a negative errno for the caller and a one-line reason kept
// per thread for ctxalloc_last_error(). Formatting allocates nothing (vsnprintf with
// %s/%zu/%p conversions into a thread-local buffer).
#pragma once

#include <cstddef>

namespace ctxalloc::capi {

/// Records why the calling thread's call failed; returns -code for the caller to return.
[[gnu::format(printf, 2, 3), gnu::cold]] int fail(int code, const char* format, ...) noexcept;

/// The same for functions that return a pointer: sets errno to code and returns nullptr
/// (which converts to any handle type).
[[gnu::format(printf, 2, 3), gnu::cold]] std::nullptr_t fail_null(int code, const char* format,
                                                                  ...) noexcept;

/// The calling thread's last reason ("" before any failure).
const char* last_error() noexcept;

}  // namespace ctxalloc::capi
