#include "ctxalloc/core/misuse.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "ctxalloc/config.h"

namespace ctxalloc {
namespace {

std::atomic<std::uint64_t> g_misuses{0};

// 0: not yet decided (read the environment on first use), else MisusePolicy + 1.
std::atomic<int> g_policy{0};

MisusePolicy default_policy() noexcept {
  // getenv allocates nothing, so this is safe inside malloc.
  if (const char* env = std::getenv("CTXALLOC_MISUSE")) {
    if (std::strcmp(env, "abort") == 0) return MisusePolicy::abort;
    if (std::strcmp(env, "count") == 0) return MisusePolicy::count;
  }
  return CTXALLOC_CHECKS ? MisusePolicy::abort : MisusePolicy::count;
}

// Appends s to buf at *len without overflowing; no allocation, no stdio.
void append(char* buf, std::size_t cap, std::size_t* len, const char* s) noexcept {
  while (*s != '\0' && *len + 1 < cap)
    buf[(*len)++] = *s++;
  buf[*len] = '\0';
}

void append_hex(char* buf, std::size_t cap, std::size_t* len, std::uintptr_t v) noexcept {
  char digits[2 + 16 + 1] = "0x";
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 0xF];
    v >>= 4;
  } while (v != 0);
  int at = 2;
  while (n > 0)
    digits[at++] = tmp[--n];
  digits[at] = '\0';
  append(buf, cap, len, digits);
}

}  // namespace

const char* to_string(Misuse m) noexcept {
  switch (m) {
    case Misuse::double_free:
      return "double free";
    case Misuse::foreign_pointer:
      return "foreign pointer";
    case Misuse::wrong_size:
      return "wrong size";
    case Misuse::wrong_alignment:
      return "wrong alignment";
    case Misuse::overflow:
      return "write past the end of a block";
    case Misuse::released_context:
      return "use of a released context";
    case Misuse::live_on_release:
      return "context released with live blocks";
    case Misuse::wrong_thread:
      return "use on the wrong thread";
    case Misuse::bad_argument:
      return "bad argument";
  }
  return "unknown misuse";
}

MisusePolicy misuse_policy() noexcept {
  int p = g_policy.load(std::memory_order_relaxed);
  if (p == 0) {
    p = static_cast<int>(default_policy()) + 1;
    g_policy.store(p, std::memory_order_relaxed);
  }
  return static_cast<MisusePolicy>(p - 1);
}

void set_misuse_policy(MisusePolicy p) noexcept {
  g_policy.store(static_cast<int>(p) + 1, std::memory_order_relaxed);
}

void report_misuse(Misuse what, const char* allocator, const char* operation,
                   const void* ptr) noexcept {
  g_misuses.fetch_add(1, std::memory_order_relaxed);
  if (misuse_policy() != MisusePolicy::abort) return;
  char line[256];
  std::size_t len = 0;
  append(line, sizeof line, &len, "ctxalloc: ");
  append(line, sizeof line, &len, to_string(what));
  append(line, sizeof line, &len, " in ");
  append(line, sizeof line, &len, allocator);
  append(line, sizeof line, &len, ".");
  append(line, sizeof line, &len, operation);
  append(line, sizeof line, &len, "(");
  append_hex(line, sizeof line, &len, reinterpret_cast<std::uintptr_t>(ptr));
  append(line, sizeof line, &len, ")\n");
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line, len);
  std::abort();
}

std::uint64_t misuse_count() noexcept {
  return g_misuses.load(std::memory_order_relaxed);
}

}  // namespace ctxalloc
