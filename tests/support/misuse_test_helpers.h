// Misuse tests for every allocator: the same statement is run twice, once in a death
// test under the abort policy (the report must name the misuse) and once in this
// process under the count policy (it must be counted, and the allocator must stay
// consistent). Release and checked builds thus both test both behaviours.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "ctxalloc/core/misuse.h"

namespace ctxalloc::testing {

/// Runs stmt in a child that must abort with stderr matching `pattern`, then in this
/// process under MisusePolicy::count, where misuse_count() must rise.
inline void expect_misuse(const std::function<void()>& stmt, const std::string& pattern) {
  EXPECT_DEATH(
      {
        set_misuse_policy(MisusePolicy::abort);
        stmt();
      },
      pattern);
  const MisusePolicy saved = misuse_policy();
  set_misuse_policy(MisusePolicy::count);
  const std::uint64_t before = misuse_count();
  stmt();
  EXPECT_GT(misuse_count(), before) << "misuse was not counted: " << pattern;
  set_misuse_policy(saved);
}

}  // namespace ctxalloc::testing
