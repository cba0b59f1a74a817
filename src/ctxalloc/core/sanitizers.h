// Which sanitizers this translation unit is built with, for gcc and clang alike.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define CTXALLOC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CTXALLOC_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CTXALLOC_ASAN_ACTIVE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTXALLOC_ASAN_ACTIVE 1
#endif
#endif
