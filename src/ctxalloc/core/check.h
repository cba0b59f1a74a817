// The result of check_invariants(): empty when every invariant holds, else a sentence
// naming the allocator and the broken invariant.
#pragma once

#include <string>
#include <utility>

namespace ctxalloc {

class [[nodiscard]] CheckResult {
 public:
  static CheckResult ok() { return CheckResult{}; }
  static CheckResult fail(std::string what) {
    CheckResult r;
    r.error_ = std::move(what);
    return r;
  }

  bool is_ok() const noexcept { return error_.empty(); }
  explicit operator bool() const noexcept { return is_ok(); }
  const std::string& error() const noexcept { return error_; }

 private:
  std::string error_;
};

/// Builds a failure message from pieces: check_fail("bump: next ", p, " past end").
/// Pointers print as hex, integers in decimal.
std::string describe(const void* p);
inline std::string describe(const char* s) {
  return s;
}
inline std::string describe(const std::string& s) {
  return s;
}
inline std::string describe(unsigned long long v) {
  return std::to_string(v);
}
inline std::string describe(unsigned long v) {
  return std::to_string(v);
}
inline std::string describe(unsigned v) {
  return std::to_string(v);
}
inline std::string describe(long long v) {
  return std::to_string(v);
}
inline std::string describe(long v) {
  return std::to_string(v);
}
inline std::string describe(int v) {
  return std::to_string(v);
}

template <class... Parts>
CheckResult check_fail(const Parts&... parts) {
  std::string s;
  (s += ... += describe(parts));
  return CheckResult::fail(std::move(s));
}

}  // namespace ctxalloc

/// Returns a failed CheckResult from the enclosing function when cond is false.
#define CTXALLOC_INVARIANT(cond, ...)                        \
  do {                                                       \
    if (!(cond)) return ::ctxalloc::check_fail(__VA_ARGS__); \
  } while (0)
