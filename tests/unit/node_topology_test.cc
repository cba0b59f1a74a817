#include "ctxalloc/sources/node_topology.h"

#include "ctxalloc/sources/kernel_info.h"

#include <numa.h>
#include <sched.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

// NodeTopology::read runs inside malloc when ctxalloc serves malloc: this binary wraps
// malloc and friends with counters (support/counting_malloc.h) and requires the
// count to stay 0 across a read. Sanitizer builds bring their own malloc: skipped there.
#include "ctxalloc/core/sanitizers.h"

#include "support/counting_malloc.h"

namespace ctxalloc {
namespace {

std::vector<std::pair<unsigned, unsigned>> ranges(const char* text, bool* ok) {
  std::vector<std::pair<unsigned, unsigned>> r;
  *ok = parse_id_ranges(text, [&](unsigned a, unsigned b) { r.emplace_back(a, b); });
  return r;
}

TEST(NodeTopology, ParsesSysfsLists) {
  bool ok = false;
  using V = std::vector<std::pair<unsigned, unsigned>>;
  EXPECT_EQ(ranges("0-3,8,10-11\n", &ok), (V{{0, 3}, {8, 8}, {10, 11}}));
  EXPECT_TRUE(ok);
  EXPECT_EQ(ranges("5", &ok), (V{{5, 5}}));
  EXPECT_TRUE(ok);
  EXPECT_TRUE(ranges("\n", &ok).empty());
  EXPECT_TRUE(ok);
  for (const char* bad : {"3-1", "a", "1,", "1-", "-2", "1;2", "99999999999"}) {
    ranges(bad, &ok);
    EXPECT_FALSE(ok) << bad;
  }
}

TEST(NodeTopology, AgreesWithLibnumaOnThisMachine) {
  const NodeTopology t = NodeTopology::read();
  if (numa_available() < 0) {
    EXPECT_EQ(t.nodes(), 1u);
    return;
  }
  EXPECT_EQ(t.nodes(), static_cast<unsigned>(numa_max_node()) + 1);
  const long cpus = sysconf(_SC_NPROCESSORS_CONF);
  for (int c = 0; c < cpus; ++c) {
    const int n = numa_node_of_cpu(c);
    if (n >= 0) {
      EXPECT_EQ(t.node_of_cpu(c), static_cast<unsigned>(n)) << "cpu " << c;
    }
  }
  EXPECT_LT(t.node_of_cpu(sched_getcpu()), t.nodes());
}

TEST(NodeTopology, ReadsAMachineOfTwoNodes) {
  char tmpl[] = "/tmp/ctxalloc-nodes-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  auto put = [&](const std::string& rel, const char* text) {
    std::ofstream(root + "/" + rel) << text;
  };
  put("online", "0-1\n");
  ASSERT_EQ(system(("mkdir -p " + root + "/node0 " + root + "/node1").c_str()), 0);
  put("node0/cpulist", "0-1,4\n");
  put("node1/cpulist", "2-3,5-7\n");
  const NodeTopology t = NodeTopology::read(root.c_str());
  EXPECT_EQ(t.nodes(), 2u);
  const unsigned expect[] = {0, 0, 1, 1, 0, 1, 1, 1};
  for (int c = 0; c < 8; ++c)
    EXPECT_EQ(t.node_of_cpu(c), expect[c]) << "cpu " << c;
  EXPECT_EQ(t.node_of_cpu(-1), 0u);
  EXPECT_EQ(t.node_of_cpu(100000), 0u);
  put("online", "garbage\n");
  EXPECT_EQ(NodeTopology::read(root.c_str()).nodes(), 1u);  // malformed: one node
  ASSERT_EQ(system(("rm -rf " + root).c_str()), 0);
  EXPECT_EQ(NodeTopology::read("/nonexistent").nodes(), 1u);
}

TEST(NodeTopology, ReadingAllocatesNothing) {
#ifdef CTXALLOC_COUNT_MALLOC
  g_calls = 0;
  g_counting = true;
  const NodeTopology t = NodeTopology::read();
  const NodeTopology missing = NodeTopology::read("/nonexistent");
  g_counting = false;
  EXPECT_EQ(g_calls.load(), 0) << "NodeTopology::read called malloc";
  EXPECT_GE(t.nodes(), 1u);
  EXPECT_EQ(missing.nodes(), 1u);
  // The counter works: libnuma's node-of-cpu allocates (why ctxalloc does not use it).
  g_counting = true;
  if (numa_available() >= 0) (void)numa_node_of_cpu(0);
  g_counting = false;
  if (numa_available() >= 0) {
    EXPECT_GT(g_calls.load(), 0);
  }
#else
  GTEST_SKIP() << "sanitizer builds own malloc: it cannot be counted here";
#endif
}

}  // namespace
}  // namespace ctxalloc
