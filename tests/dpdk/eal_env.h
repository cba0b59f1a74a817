// One EAL per test binary: a gtest environment starts it before the first test and
// cleans it up after the last. Default arguments need neither root nor hugepages and let
// several binaries run at once (--no-shconf, no telemetry, in-memory); a binary that
// needs telemetry passes its own with a unique --file-prefix.
#pragma once

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include <string>
#include <vector>

namespace ctxalloc::testing {

class EalEnvironment : public ::testing::Environment {
 public:
  explicit EalEnvironment(std::vector<std::string> args) : args_(std::move(args)) {}

  void SetUp() override {
    std::vector<char*> argv;
    for (std::string& a : args_)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = rte_eal_init(static_cast<int>(argv.size() - 1), argv.data());
    ASSERT_GE(rc, 0) << "rte_eal_init failed: " << rte_strerror(rte_errno);
  }
  void TearDown() override { rte_eal_cleanup(); }

  /// The arguments every DPDK test binary uses, with `lcores` (e.g. "0-1") and extras.
  static std::vector<std::string> default_args(const std::string& lcores,
                                               std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"ctxalloc_dpdk_test",
                                  "-l",
                                  lcores,
                                  "--no-huge",
                                  "-m",
                                  "256",
                                  "--no-shconf",
                                  "--no-pci",
                                  "--no-telemetry",
                                  "--log-level=lib.eal:warning"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

 private:
  std::vector<std::string> args_;
};

}  // namespace ctxalloc::testing
