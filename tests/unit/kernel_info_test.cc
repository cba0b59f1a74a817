// The kernel readers: smaps parsing (on a recorded file and on a live mapping), hugepage
// counts and the THP mode against the kernel's own files, hugepage sizes and counts per
// node and hugetlbfs mounts against a fake tree.
#include "ctxalloc/sources/kernel_info.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/kernel_probe.h"

namespace ctxalloc {
namespace {

// Three entries as Linux 6.x writes them; the middle one is a hugetlb mapping, the first
// has a path longer than the reader's line buffer.
const char* kRecorded =
    "7f0000000000-7f0000200000 rw-p 00000000 00:00 0                          /very/long/"
    "path/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    "Size:               2048 kB\n"
    "KernelPageSize:        4 kB\n"
    "MMUPageSize:           4 kB\n"
    "Rss:                2048 kB\n"
    "AnonHugePages:      2048 kB\n"
    "Locked:                0 kB\n"
    "THPeligible:           1\n"
    "VmFlags: rd wr mr mw me ac hg \n"
    "7f0000400000-7f0000800000 rw-p 00000000 00:0f 1234                       /anon_hugepage "
    "(deleted)\n"
    "Size:               4096 kB\n"
    "KernelPageSize:     2048 kB\n"
    "MMUPageSize:        2048 kB\n"
    "Rss:                   0 kB\n"
    "AnonHugePages:         0 kB\n"
    "Shared_Hugetlb:        0 kB\n"
    "Private_Hugetlb:    4096 kB\n"
    "Swap:                  0 kB\n"
    "Locked:             4096 kB\n"
    "THPeligible:           0\n"
    "VmFlags: rd wr mr mw me de ac ht lo dd nr \n"
    "7f0000800000-7f0000801000 r--p 00000000 00:00 0 \n"
    "Size:                  4 kB\n"
    "KernelPageSize:        4 kB\n"
    "VmFlags: rd mr mw me \n";

class RecordedSmaps : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/ctxalloc-smaps-XXXXXX";
    const int fd = ::mkstemp(name);
    ASSERT_GE(fd, 0);
    path_ = name;
    ASSERT_EQ(::write(fd, kRecorded, std::strlen(kRecorded)),
              static_cast<ssize_t>(std::strlen(kRecorded)));
    ::close(fd);
  }
  void TearDown() override { std::remove(path_.c_str()); }
  MappingReport at(std::uintptr_t a) const {
    return inspect_mapping_in(path_.c_str(), reinterpret_cast<void*>(a));
  }
  std::string path_;
};

TEST_F(RecordedSmaps, ReadsTheEntryHoldingTheAddress) {
  const MappingReport r = at(0x7f0000500000);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.vma_begin, 0x7f0000400000u);
  EXPECT_EQ(r.vma_end, 0x7f0000800000u);
  EXPECT_EQ(r.kernel_page_size, 2u << 20);
  EXPECT_EQ(r.mmu_page_size, 2u << 20);
  EXPECT_EQ(r.hugetlb_bytes, 4u << 20);
  EXPECT_EQ(r.locked_bytes, 4u << 20);
  EXPECT_EQ(r.anon_huge_bytes, 0u);
  EXPECT_FALSE(r.thp_eligible);
  EXPECT_TRUE(r.hugetlb_flag && r.locked_flag && r.dontdump_flag && r.noreserve_flag);
  EXPECT_FALSE(r.thp_advised);
  EXPECT_EQ(r.backing(), PageKind::hugetlb);
}

TEST_F(RecordedSmaps, SurvivesALongPathAndReadsTheFirstEntry) {
  const MappingReport r = at(0x7f00001fffff);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.vma_begin, 0x7f0000000000u);
  EXPECT_EQ(r.anon_huge_bytes, 2u << 20);
  EXPECT_TRUE(r.thp_eligible);
  EXPECT_TRUE(r.thp_advised);
  EXPECT_FALSE(r.hugetlb_flag || r.locked_flag);
  EXPECT_EQ(r.backing(), PageKind::transparent);
}

TEST_F(RecordedSmaps, ReadsTheLastEntryAndMissesGaps) {
  const MappingReport last = at(0x7f0000800fff);
  ASSERT_TRUE(last.found);
  EXPECT_EQ(last.kernel_page_size, 4096u);
  EXPECT_EQ(last.backing(), PageKind::base);
  EXPECT_FALSE(at(0x7f0000300000).found) << "between two mappings";
  EXPECT_FALSE(at(0x7f0000801000).found) << "just past the last";
  EXPECT_EQ(at(0x10).backing(), PageKind::unknown);
  EXPECT_FALSE(inspect_mapping_in("/nonexistent/smaps", this).found);
}

TEST(KernelInfo, ReadsALiveMappingOfThisProcess) {
  void* p = ::mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  static_cast<char*>(p)[0] = 1;
  const MappingReport r = inspect_mapping(static_cast<char*>(p) + 4096);
  ASSERT_TRUE(r.found);
  EXPECT_LE(r.vma_begin, reinterpret_cast<std::uintptr_t>(p));
  EXPECT_GE(r.vma_end, reinterpret_cast<std::uintptr_t>(p) + 3 * 4096);
  EXPECT_EQ(r.kernel_page_size, page_size());
  EXPECT_GE(r.rss, 4096u);
  ::munmap(p, 3 * 4096);
  EXPECT_FALSE(inspect_mapping(static_cast<char*>(p) + 4096).found);
}

TEST(KernelInfo, HugepageCountsAreTheKernelsOwn) {
  const HugePageCounts c = hugepage_counts(2u << 20);
  ASSERT_TRUE(c.supported) << "x86-64 kernels always know 2 MiB pages";
  EXPECT_EQ(c.total, testing::read_proc_number("/proc/sys/vm/nr_hugepages"));
  EXPECT_LE(c.free, c.total + c.surplus);
  EXPECT_LE(c.available(), c.free);
  EXPECT_FALSE(hugepage_counts(3u << 20).supported) << "no 3 MiB pages anywhere";
}

TEST(KernelInfo, ThpModeIsTheBracketedWordOfSysfs) {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(in, line)) {
    EXPECT_EQ(thp_mode(), ThpMode::unsupported);
    return;
  }
  const std::string word = line.substr(line.find('[') + 1, line.find(']') - line.find('[') - 1);
  EXPECT_EQ(to_string(thp_mode()), word);
}

TEST(KernelInfo, PageSizeIsSysconfs) {
  EXPECT_EQ(page_size(), static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
}

// A fake sysfs root and mounts file under /tmp, removed at the end.
class FakeTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/ctxalloc-sysfs-XXXXXX";
    ASSERT_NE(::mkdtemp(name), nullptr);
    root_ = name;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    const std::filesystem::path p = std::filesystem::path(root_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::string root_;
};

TEST_F(FakeTree, ListsHugepageSizesAscendingAndIgnoresOtherNames) {
  write("kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "1\n");
  write("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "8\n");
  write("kernel/mm/hugepages/hugepages-xkB/nr_hugepages", "1\n");
  write("kernel/mm/hugepages/hugepages-64kBx/nr_hugepages", "1\n");
  write("kernel/mm/hugepages/README", "not a size\n");
  std::size_t sizes[4] = {};
  ASSERT_EQ(hugepage_sizes_in(root_.c_str(), -1, sizes, 4), 2u);
  EXPECT_EQ(sizes[0], std::size_t{2} << 20);
  EXPECT_EQ(sizes[1], std::size_t{1} << 30);
  std::size_t one[1] = {};
  EXPECT_EQ(hugepage_sizes_in(root_.c_str(), -1, one, 1), 1u) << "at most cap sizes";
  EXPECT_EQ(hugepage_sizes_in(root_.c_str(), 3, sizes, 4), 0u) << "no such node";
}

TEST_F(FakeTree, CountsHugepagesSystemWideAndPerNode) {
  write("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "16\n");
  write("kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "10\n");
  write("kernel/mm/hugepages/hugepages-2048kB/resv_hugepages", "4\n");
  write("kernel/mm/hugepages/hugepages-2048kB/surplus_hugepages", "1\n");
  write("devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages", "6\n");
  write("devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages", "5\n");
  const HugePageCounts all = hugepage_counts_in(root_.c_str(), 2u << 20, -1);
  EXPECT_TRUE(all.supported);
  EXPECT_EQ(all.page_bytes, std::size_t{2} << 20);
  EXPECT_EQ(all.total, 16u);
  EXPECT_EQ(all.free, 10u);
  EXPECT_EQ(all.reserved, 4u);
  EXPECT_EQ(all.surplus, 1u);
  EXPECT_EQ(all.available(), 6u);
  const HugePageCounts node1 = hugepage_counts_in(root_.c_str(), 2u << 20, 1);
  EXPECT_TRUE(node1.supported);
  EXPECT_EQ(node1.total, 6u);
  EXPECT_EQ(node1.free, 5u);
  EXPECT_EQ(node1.reserved, 0u) << "a node has no resv_hugepages";
  EXPECT_FALSE(hugepage_counts_in(root_.c_str(), 1u << 30, -1).supported);
  EXPECT_FALSE(hugepage_counts_in(root_.c_str(), 2u << 20, 0).supported);
}

TEST_F(FakeTree, FindsOnlyAWritableHugetlbfsMount) {
  std::filesystem::create_directories(root_ + "/huge");
  write("mounts-none", "proc /proc proc rw 0 0\ntmpfs " + root_ + " tmpfs rw 0 0\n");
  write("mounts-missing", "hugetlbfs " + root_ + "/gone hugetlbfs rw,pagesize=2M 0 0\n");
  write("mounts-ok", "proc /proc proc rw 0 0\nhugetlbfs " + root_ +
                         "/huge hugetlbfs rw,relatime,pagesize=2M 0 0\n");
  EXPECT_FALSE(hugetlbfs_mount_writable((root_ + "/mounts-none").c_str()));
  EXPECT_FALSE(hugetlbfs_mount_writable((root_ + "/mounts-missing").c_str()));
  EXPECT_TRUE(hugetlbfs_mount_writable((root_ + "/mounts-ok").c_str()));
  EXPECT_FALSE(hugetlbfs_mount_writable((root_ + "/no-such-file").c_str()));
}

TEST_F(FakeTree, ReadsSmallFilesWhole) {
  write("cpulist", "0-3,8\n");
  char buf[64];
  ASSERT_TRUE(read_small_file((root_ + "/cpulist").c_str(), buf, sizeof buf));
  EXPECT_STREQ(buf, "0-3,8\n");
  char small[4];
  ASSERT_TRUE(read_small_file((root_ + "/cpulist").c_str(), small, sizeof small));
  EXPECT_STREQ(small, "0-3") << "cut at cap - 1 bytes";
  write("empty", "");
  EXPECT_FALSE(read_small_file((root_ + "/empty").c_str(), buf, sizeof buf));
  EXPECT_FALSE(read_small_file((root_ + "/missing").c_str(), buf, sizeof buf));
}

}  // namespace
}  // namespace ctxalloc
