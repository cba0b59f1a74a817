// NUMA policies: node masks, validation against this system, and every mode applied
// through MemoryMapSource and read back from the kernel (get_mempolicy). This machine
// has one node; what needs more is listed in docs/sources.md.
#include "ctxalloc/sources/numa_policy.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "ctxalloc/sources/mmap_source.h"

namespace ctxalloc {
namespace {

constexpr std::size_t kMiB = 1024 * 1024;

std::string text(const NodeMask& m) {
  char buf[128];
  m.format(buf, sizeof buf);
  return buf;
}

TEST(NodeMask, SetsTestsCountsAndFormatsNodes) {
  NodeMask m;
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.first(), -1);
  EXPECT_EQ(text(m), "none");
  for (unsigned n : {0U, 1U, 2U, 3U, 6U, 64U, 1023U})
    EXPECT_TRUE(m.set(n));
  EXPECT_EQ(m.count(), 7u);
  EXPECT_TRUE(m.test(64));
  EXPECT_FALSE(m.test(5));
  EXPECT_EQ(m.first(), 0);
  EXPECT_EQ(m.last(), 1023);
  EXPECT_EQ(text(m), "0-3,6,64,1023");
  m.clear(2);
  EXPECT_EQ(text(m), "0-1,3,6,64,1023");
  EXPECT_EQ(m, (NodeMask{0, 1, 3, 6, 64, 1023}));
  EXPECT_NE(m, (NodeMask{0, 1, 3, 6, 64}));
  // The kernel's format: bit n of word n / 64.
  EXPECT_EQ(m.kernel_words()[1], 1UL);
  EXPECT_EQ(m.kernel_words()[0], 0b1001011UL);
}

TEST(NodeMask, RefusesNodesBeyondAnyKernel) {
  NodeMask m;
  EXPECT_FALSE(m.set(kMaxNumaNodes));
  EXPECT_FALSE(m.set(UINT32_MAX));
  EXPECT_TRUE(m.empty());
  EXPECT_FALSE(m.test(kMaxNumaNodes));
}

TEST(NumaSystem, QueriesAgreeWithSysfs) {
  ASSERT_TRUE(numa_supported()) << "this kernel has NUMA policies; the tests below rely on it";
  int highest = -1;
  for (const auto& e : std::filesystem::directory_iterator("/sys/devices/system/node")) {
    const std::string name = e.path().filename();
    if (name.rfind("node", 0) == 0 && name.size() > 4 && std::isdigit(name[4]))
      highest = std::max(highest, std::stoi(name.substr(4)));
  }
  EXPECT_EQ(numa_highest_node(), highest);
  const NodeMask allowed = numa_allowed_nodes();
  EXPECT_FALSE(allowed.empty());
  EXPECT_LE(allowed.last(), highest);
}

TEST(NumaPolicyValidate, RefusesContradictoryPolicies) {
  auto code = [](NumaPolicy p) { return validate(p).code(); };
  NumaPolicy p;
  EXPECT_EQ(code(p), SourceErrc::ok);
  p.nodes.set(0);
  EXPECT_EQ(code(p), SourceErrc::bad_option) << "default takes no nodes";
  p = NumaPolicy{};
  p.strict = true;
  EXPECT_EQ(code(p), SourceErrc::bad_option) << "strict means nothing with default";
  p = NumaPolicy::local();
  EXPECT_EQ(code(p), SourceErrc::ok);
  p.flags = NodeFlags::static_nodes;
  EXPECT_EQ(code(p), SourceErrc::bad_option) << "local with a node flag";
  p = NumaPolicy{};
  p.mode = NumaMode::bind;
  EXPECT_EQ(code(p), SourceErrc::bad_option) << "bind without nodes";
  p.mode = NumaMode::interleave;
  EXPECT_EQ(code(p), SourceErrc::bad_option) << "interleave without nodes";
  p = NumaPolicy::preferred_node(0);
  EXPECT_EQ(code(p), SourceErrc::ok);
  p.nodes.set(1);
  const SourceError e = validate(p);
  EXPECT_EQ(e.code(), SourceErrc::bad_option);
  EXPECT_NE(std::string(e.message()).find("exactly one"), std::string::npos) << e.message();
}

TEST(NumaPolicyValidate, NamesANodeThatIsNotInTheSystem) {
  const unsigned missing = static_cast<unsigned>(numa_highest_node()) + 1;
  for (NumaMode mode : {NumaMode::bind, NumaMode::interleave, NumaMode::preferred}) {
    NumaPolicy p;
    p.mode = mode;
    p.nodes.set(missing);
    const SourceError e = validate(p);
    EXPECT_EQ(e.code(), SourceErrc::no_such_node) << to_string(mode);
    EXPECT_NE(std::string(e.message()).find("node " + std::to_string(missing)), std::string::npos)
        << e.message();
  }
  // A multi-node mask with one missing node is refused as a whole.
  NumaPolicy p = NumaPolicy::interleave_over(NodeMask{0, missing});
  EXPECT_EQ(validate(p).code(), SourceErrc::no_such_node);
  MapOptions o;
  o.numa = NumaPolicy::bind_to(kMaxNumaNodes - 1);
  MemoryMapSource s(o);
  EXPECT_EQ(s.config_error().code(), SourceErrc::no_such_node);
  EXPECT_FALSE(s.obtain(4096));
  EXPECT_EQ(s.last_error().code(), SourceErrc::no_such_node) << s.last_error().message();
}

TEST(NumaPolicyValidate, StaticNodesMayNameAbsentNodesWhenOneIsUsable) {
  const unsigned missing = static_cast<unsigned>(numa_highest_node()) + 1;
  const unsigned usable = static_cast<unsigned>(numa_allowed_nodes().first());
  NumaPolicy p = NumaPolicy::interleave_over(NodeMask{usable, missing});
  p.flags = NodeFlags::static_nodes;
  EXPECT_TRUE(validate(p).ok()) << validate(p).message();
  p.nodes = NodeMask{missing};
  EXPECT_EQ(validate(p).code(), SourceErrc::no_such_node) << "none usable now";
}

TEST(NumaPolicyValidate, RelativeNodesAreIndexesAndNeverMissing) {
  NumaPolicy p = NumaPolicy::bind_to(5);
  p.flags = NodeFlags::relative_nodes;
  EXPECT_TRUE(validate(p).ok()) << validate(p).message();
}

// A mapping with this policy, read back from the kernel.
NumaPolicyReadback applied(const NumaPolicy& p, Block* out = nullptr,
                           MemoryMapSource* keep = nullptr) {
  MapOptions o;
  o.numa = p;
  MemoryMapSource local(o);
  MemoryMapSource& s = keep != nullptr ? *keep : local;
  const Block b = s.obtain(2 * kMiB);
  EXPECT_TRUE(b) << s.last_error().message();
  if (out != nullptr) *out = b;
  return b ? read_numa_policy(b.ptr + kMiB) : NumaPolicyReadback{};
}

TEST(MemoryMapSourceNuma, EachModeIsSetAndReadBackFromTheKernel) {
  const unsigned node = static_cast<unsigned>(numa_allowed_nodes().first());
  NumaPolicyReadback r = applied(NumaPolicy{});
  ASSERT_TRUE(r.error.ok()) << r.error.message();
  EXPECT_EQ(r.mode, NumaMode::default_policy);
  EXPECT_TRUE(r.nodes.empty());

  r = applied(NumaPolicy::bind_to(node));
  EXPECT_EQ(r.mode, NumaMode::bind);
  EXPECT_EQ(r.nodes, NodeMask{node});
  EXPECT_EQ(r.flags, NodeFlags::none);

  r = applied(NumaPolicy::preferred_node(node));
  EXPECT_EQ(r.mode, NumaMode::preferred);
  EXPECT_EQ(r.nodes, NodeMask{node});

  r = applied(NumaPolicy::interleave_over(numa_allowed_nodes()));
  EXPECT_EQ(r.mode, NumaMode::interleave);
  EXPECT_EQ(r.nodes, numa_allowed_nodes());

  r = applied(NumaPolicy::local());
  EXPECT_EQ(r.mode, NumaMode::local);
  EXPECT_TRUE(r.nodes.empty());
}

TEST(MemoryMapSourceNuma, StaticAndRelativeFlagsAreKeptByTheKernel) {
  const unsigned missing = static_cast<unsigned>(numa_highest_node()) + 1;
  const unsigned node = static_cast<unsigned>(numa_allowed_nodes().first());
  NumaPolicy p = NumaPolicy::bind_to(node);
  p.nodes.set(missing);
  p.flags = NodeFlags::static_nodes;
  NumaPolicyReadback r = applied(p);
  EXPECT_EQ(r.mode, NumaMode::bind);
  EXPECT_EQ(r.flags, NodeFlags::static_nodes);
  EXPECT_EQ(r.nodes, (NodeMask{node, missing})) << "the kernel keeps the user's static mask";
  // Relative node 1 on a machine with fewer usable nodes wraps around onto a real one;
  // the kernel reports the mask as given.
  p = NumaPolicy::bind_to(1);
  p.flags = NodeFlags::relative_nodes;
  Block b;
  MapOptions o;
  o.numa = p;
  o.populate = true;
  MemoryMapSource s(o);
  r = applied(p, &b, &s);
  EXPECT_EQ(r.mode, NumaMode::bind);
  EXPECT_EQ(r.flags, NodeFlags::relative_nodes);
  EXPECT_EQ(r.nodes, NodeMask{1});
  ASSERT_TRUE(b);
  const int where = numa_node_of(b.ptr);
  EXPECT_GE(where, 0);
  EXPECT_TRUE(numa_allowed_nodes().test(static_cast<unsigned>(where)));
  if (numa_allowed_nodes().count() == 1) {
    EXPECT_EQ(where, static_cast<int>(node)) << "relative node 1 of 1 usable node is that node";
  }
}

TEST(MemoryMapSourceNuma, PopulatedPagesOfABoundBlockAreOnTheBoundNode) {
  const unsigned node = static_cast<unsigned>(numa_allowed_nodes().last());
  MapOptions o;
  o.numa = NumaPolicy::bind_to(node);
  o.populate = true;
  MemoryMapSource s(o);
  const Block b = s.obtain(1 * kMiB);
  ASSERT_TRUE(b) << s.last_error().message();
  for (std::size_t off = 0; off < b.size; off += 64 * 1024)
    EXPECT_EQ(numa_node_of(b.ptr + off), static_cast<int>(node)) << off;
  MemoryMapSource lazy;
  const Block l = lazy.obtain(64 * 1024);
  EXPECT_EQ(numa_node_of(l.ptr), -ENOENT) << "not faulted in: no node yet";
  // Nothing mapped: -EFAULT, on kernels that say -EFAULT for untouched pages too.
  void* hole = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(hole, MAP_FAILED);
  ASSERT_EQ(munmap(hole, 4096), 0);
  EXPECT_EQ(numa_node_of(hole), -EFAULT);
}

TEST(MemoryMapSourceNuma, StrictAndMoveApplyToMemoryThatAlreadyHasPages) {
  MapOptions o;
  o.populate = true;
  MemoryMapSource s(o);
  const Block b = s.obtain(1 * kMiB);
  ASSERT_TRUE(b);
  std::memset(b.ptr, 0x5A, b.size);
  const unsigned node = static_cast<unsigned>(numa_allowed_nodes().first());
  NumaPolicy p = NumaPolicy::bind_to(node);
  p.strict = true;
  p.move = true;
  ASSERT_TRUE(validate(p).ok());
  const SourceError e = apply_numa_policy(b.ptr, b.size, p);
  EXPECT_TRUE(e.ok()) << e.message();
  EXPECT_EQ(read_numa_policy(b.ptr).mode, NumaMode::bind);
  EXPECT_EQ(numa_node_of(b.ptr), static_cast<int>(node));
  EXPECT_EQ(static_cast<unsigned char>(b.ptr[b.size - 1]), 0x5Au) << "moving keeps the bytes";
  // Strict alone: pages already conform, so it succeeds too.
  p.move = false;
  EXPECT_TRUE(apply_numa_policy(b.ptr, b.size, p).ok());
}

TEST(MemoryMapSourceNuma, AKernelRefusalIsPolicyFailedWithItsErrno) {
  // Bypassing validate(): the kernel itself refuses a node it does not have.
  MemoryMapSource s;
  const Block b = s.obtain(64 * 1024);
  ASSERT_TRUE(b);
  const NumaPolicy p = NumaPolicy::bind_to(static_cast<unsigned>(numa_highest_node()) + 1);
  const SourceError e = apply_numa_policy(b.ptr, b.size, p);
  EXPECT_EQ(e.code(), SourceErrc::policy_failed);
  EXPECT_EQ(e.sys_errno(), EINVAL);
  EXPECT_NE(std::string(e.message()).find("mbind(bind"), std::string::npos) << e.message();
  // Reading back a policy at an unmapped address is a system error, not a crash.
  const NumaPolicyReadback r = read_numa_policy(reinterpret_cast<void*>(4096));
  EXPECT_EQ(r.error.code(), SourceErrc::system_error);
  EXPECT_EQ(r.error.sys_errno(), EFAULT);
}

TEST(MemoryMapSourceNuma, GrowingABlockKeepsItsPolicyOnTheNewPart) {
  const unsigned node = static_cast<unsigned>(numa_allowed_nodes().first());
  MapOptions o;
  o.numa = NumaPolicy::bind_to(node);
  MemoryMapSource s(o);
  Block b = s.obtain(4 * kMiB);
  ASSERT_TRUE(b);
  b = s.resize(b, 64 * 1024, 1, Move::forbidden);
  ASSERT_TRUE(b);
  b = s.resize(b, 4 * kMiB, 1, Move::allowed);
  ASSERT_TRUE(b) << s.last_error().message();
  const NumaPolicyReadback r = read_numa_policy(b.ptr + 3 * kMiB);
  EXPECT_EQ(r.mode, NumaMode::bind);
  EXPECT_EQ(r.nodes, NodeMask{node});
}

}  // namespace
}  // namespace ctxalloc
