// The kernel readers: smaps parsing (on a recorded file and on a live mapping), hugepage
// counts and the THP mode against the kernel's own files.
#include "ctxalloc/sources/kernel_info.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
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

}  // namespace
}  // namespace ctxalloc
