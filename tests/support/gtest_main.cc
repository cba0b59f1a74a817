// main() for every GoogleTest binary of the project. Unlike gtest_main it exits with 77
// (meson's "skipped") when every test that ran was skipped, so a binary whose cases all
// skip never reads as a pass.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Death tests fork; "threadsafe" re-executes the binary, which stays correct when a
  // test has started threads (the switchable allocator's tests do).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int rc = RUN_ALL_TESTS();
  const auto* unit = ::testing::UnitTest::GetInstance();
  if (rc == 0 && unit->test_to_run_count() > 0 &&
      unit->skipped_test_count() == unit->test_to_run_count()) {
    return 77;
  }
  return rc;
}
