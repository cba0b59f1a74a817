// The per-lcore allocators on real hugepages: EAL with hugepages (--in-memory: no
// hugetlbfs files, but pages must be reserved), tests/dpdk/configs/lcore_fixed_bump.ini
// (the former default, fixed bump flows; 2 MiB pages preferred): every heap's region is a
// memzone on the lcore's socket, allocations lie in DPDK memsegs of that socket,
// tear-down frees the memzones. Skipped (with the reason) when the machine has too few
// free 2 MiB hugepages: the file needs 72 MiB of them, EAL a few more.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_memory.h>
#include <rte_memzone.h>

#include <fstream>
#include <sstream>
#include <string>

#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/dpdk/registry.h"
#include "detail/lcore_heaps.h"
#include "dpdk/lcore_run.h"

namespace ctxalloc::dpdk {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr long kPagesNeeded = 48;  // 96 MiB: 72 for ctxalloc, the rest for EAL

long free_2m_hugepages() {
  std::ifstream f("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  long n = 0;
  return (f >> n) ? n : 0;
}

class HugepageEal : public ::testing::Environment {
 public:
  void SetUp() override {
    const long free = free_2m_hugepages();
    if (free < kPagesNeeded)
      GTEST_SKIP() << free << " free 2 MiB hugepages, " << kPagesNeeded
                   << " needed (echo 64 > /proc/sys/vm/nr_hugepages as root)";
    std::string prefix = "ctxalloc_huge_" + std::to_string(getpid());
    std::string args[] = {"ctxalloc_huge_test",
                          "-l",
                          "0-1",
                          "--in-memory",
                          "-m",
                          "80",
                          "--no-pci",
                          "--no-telemetry",
                          "--file-prefix=" + prefix,
                          "--log-level=lib.eal:warning"};
    char* argv[std::size(args)];
    for (std::size_t i = 0; i < std::size(args); ++i)
      argv[i] = args[i].data();
    if (rte_eal_init(static_cast<int>(std::size(args)), argv) < 0)
      GTEST_SKIP() << "EAL could not start on hugepages (taken by another process?)";
    started_ = true;
  }
  void TearDown() override {
    if (started_) rte_eal_cleanup();
  }
  static bool started_;
};
bool HugepageEal::started_ = false;

[[maybe_unused]] ::testing::Environment* const g_eal =
    ::testing::AddGlobalTestEnvironment(new HugepageEal);

TEST(PerLcoreHugepages, HeapsLiveInMemzonesOnTheirSocket) {
  if (!HugepageEal::started_) GTEST_SKIP() << "no EAL on hugepages";
  ASSERT_EQ(rte_eal_has_hugepages(), 1);
  ASSERT_EQ(setup(), 0);
  for (unsigned l : {0u, 1u}) {
    const LcoreFigures f = lcore_figures(l);
    ASSERT_TRUE(f.present) << l;
    EXPECT_EQ(f.memory, Memory::hugepages);
    EXPECT_EQ(f.page_size, 2 * kMiB);
    EXPECT_EQ(f.region_bytes, 20 * kMiB);
    const std::string name = "ctxalloc_lcore_" + std::to_string(l);
    const rte_memzone* mz = rte_memzone_lookup(name.c_str());
    ASSERT_NE(mz, nullptr) << name;
    EXPECT_EQ(mz->socket_id, static_cast<int>(rte_lcore_to_socket_id(l)));
    EXPECT_EQ(mz->addr, detail::heap_of_lcore(l)->region.base());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(mz->addr) % (4 * kMiB), 0u) << "4 MiB-aligned";
  }
  const SocketFigures s = socket_figures(0);
  EXPECT_EQ(s.memory, Memory::hugepages);
  EXPECT_EQ(Registry::instance().socket(0).hugepage_bytes.load(), 72 * kMiB);
  EXPECT_EQ(Registry::instance().socket(0).normal_page_bytes.load(), 0u);

  // A worker's allocation and a flow's block: in a memseg of the worker's socket.
  void* p = ctxalloc::testing::on_lcore(1, [] {
    Context* f = make_flow_context();
    EXPECT_NE(f, nullptr);
    if (f != nullptr) {
      const rte_memseg* ms = rte_mem_virt2memseg(f, nullptr);
      EXPECT_NE(ms, nullptr);
      if (ms != nullptr) {
        EXPECT_EQ(ms->socket_id, static_cast<int>(rte_socket_id()));
      }
      EXPECT_EQ(release_flow_context(f), 0);
    }
    return ctxalloc::allocate(1000);
  });
  ASSERT_NE(p, nullptr);
  const rte_memseg* ms = rte_mem_virt2memseg(p, nullptr);
  ASSERT_NE(ms, nullptr) << "DPDK's hugepage memory";
  EXPECT_EQ(ms->socket_id, static_cast<int>(rte_lcore_to_socket_id(1)));
  EXPECT_EQ(ms->hugepage_sz, 2 * kMiB);
  EXPECT_TRUE(detail::heap_of_lcore(1)->region.contains(p));
  ctxalloc::testing::on_lcore(1, [&] { ctxalloc::deallocate(p); });

  TeardownReport r;
  ASSERT_EQ(teardown(&r), 0);
  EXPECT_EQ(r.bytes_returned, 72 * kMiB);
  EXPECT_EQ(rte_memzone_lookup("ctxalloc_lcore_1"), nullptr) << "memzones freed";
  EXPECT_EQ(Registry::instance().socket(0).hugepage_bytes.load(), 0u);
}

}  // namespace
}  // namespace ctxalloc::dpdk
