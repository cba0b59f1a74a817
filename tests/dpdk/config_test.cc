// The configuration: the line-tracking reader against rte_cfgfile, every malformed file
// of tests/dpdk/configs/ with its expected message, units, the shipped files, the
// embedded default, checks against a (fake) system, hugepage reservation, and the
// ctxalloc-config command. No EAL: rte_cfgfile works without it.
#include <gtest/gtest.h>
#include <rte_cfgfile.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ctxalloc/dpdk/config.h"
#include "ctxalloc/dpdk/system.h"
#include "detail/ini_reader.h"
#include "detail/units.h"

namespace ctxalloc::dpdk {
namespace {

namespace fs = std::filesystem;
using detail::IniFile;

static_assert(detail::kCfgNameLen == CFG_NAME_LEN, "the reader's limits must be rte_cfgfile's");
static_assert(detail::kCfgValueLen == CFG_VALUE_LEN, "the reader's limits must be rte_cfgfile's");

fs::path source_root() {
  const char* r = std::getenv("CTXALLOC_SOURCE_ROOT");
  return r != nullptr ? fs::path(r) : fs::path(".");
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<fs::path> files_in(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".ini" && e.path().filename().string().starts_with(prefix))
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> shipped_files() {
  return files_in(source_root() / "config", "");
}

// ---------------------------------------------------------------- malformed files

struct Expectation {
  unsigned line = 0;
  std::string section, key, message;
};

// "; expect: LINE|SECTION|KEY|MESSAGE" on the file's second line.
Expectation expectation_of(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  std::getline(in, line);
  const std::string tag = "; expect: ";
  EXPECT_TRUE(line.starts_with(tag)) << p;
  std::vector<std::string> parts;
  std::string rest = line.substr(tag.size());
  for (int i = 0; i < 3; ++i) {
    const std::size_t bar = rest.find('|');
    parts.push_back(rest.substr(0, bar));
    rest = rest.substr(bar + 1);
  }
  parts.push_back(rest);
  return Expectation{static_cast<unsigned>(std::stoul(parts[0])), parts[1], parts[2], parts[3]};
}

TEST(ConfigFiles, EveryMalformedFileIsRejectedWithItsExpectedMessage) {
  const auto files = files_in(source_root() / "tests/dpdk/configs", "bad_");
  ASSERT_GE(files.size(), 20u);
  for (const fs::path& p : files) {
    SCOPED_TRACE(p.filename().string());
    const Expectation want = expectation_of(p);
    const ConfigResult r = load_config_file(p.string());
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.errors.size(), 1u) << "one defect, one error; got:\n"
                                   << [&] {
                                        std::string s;
                                        for (const auto& e : r.errors)
                                          s += e.to_string() + "\n";
                                        return s;
                                      }();
    const Diagnostic& d = r.errors.front();
    EXPECT_EQ(d.file, p.string());
    EXPECT_EQ(d.line, want.line);
    EXPECT_EQ(d.section, want.section);
    EXPECT_EQ(d.key, want.key);
    EXPECT_NE(d.message.find(want.message), std::string::npos) << d.message;
    // The printed form names all of it.
    const std::string text = d.to_string();
    EXPECT_TRUE(text.starts_with(p.string() + (want.line ? ":" + std::to_string(want.line) : "")))
        << text;
    if (!want.section.empty()) {
      EXPECT_NE(text.find("[" + want.section + "]"), std::string::npos);
    }
  }
}

TEST(ConfigFiles, SeveralDefectsAreAllReportedInLineOrder) {
  const ConfigResult r = parse_config(
      "[ctxalloc]\nhugepages = maybe\nfallback = context\n[socket.0]\nlcores = 0\n"
      "hugepages = -1\nglobal_heap = 1MB\nbogus\n[lcore.default]\nthread_allocator = tree\n"
      "thread_size = 4M\n[flows]\nkind = bump\nblock_size = 4K\nready_blocks = 1\n"
      "max_flows = 1\nidle_timeout = 1s\n",
      "several.ini");
  ASSERT_EQ(r.errors.size(), 4u);
  EXPECT_EQ(r.errors[0].line, 2u);
  EXPECT_EQ(r.errors[1].line, 6u);
  EXPECT_EQ(r.errors[2].line, 7u);
  EXPECT_EQ(r.errors[3].line, 8u);
}

TEST(ConfigFiles, AFileThatCannotBeOpenedIsOneErrorOnLineZero) {
  const ConfigResult r = load_config_file("/nonexistent/ctxalloc.ini");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "/nonexistent/ctxalloc.ini: cannot open the file");
}

// ---------------------------------------------------------------- rte_cfgfile

// What rte_cfgfile makes of a file: sections and entries in order.
std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> through_rte(
    const fs::path& p) {
  rte_cfgfile* cfg = rte_cfgfile_load(p.c_str(), 0);
  EXPECT_NE(cfg, nullptr) << p;
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> out;
  if (cfg == nullptr) return out;
  const int n = rte_cfgfile_num_sections(cfg, nullptr, 0);
  for (int i = 0; i < n; ++i) {
    char name[CFG_NAME_LEN];
    const int entries = rte_cfgfile_section_num_entries_by_index(cfg, name, i);
    std::vector<rte_cfgfile_entry> e(static_cast<std::size_t>(entries));
    rte_cfgfile_section_entries_by_index(cfg, i, name, e.data(), entries);
    out.emplace_back(name, std::vector<std::pair<std::string, std::string>>{});
    for (const rte_cfgfile_entry& x : e)
      out.back().second.emplace_back(x.name, x.value);
  }
  rte_cfgfile_close(cfg);
  return out;
}

void expect_same_as_rte_cfgfile(const fs::path& p) {
  SCOPED_TRACE(p.string());
  const IniFile mine = detail::read_ini(read_file(p));
  EXPECT_TRUE(mine.errors.empty());
  const auto theirs = through_rte(p);
  ASSERT_EQ(mine.sections.size(), theirs.size());
  for (std::size_t i = 0; i < theirs.size(); ++i) {
    EXPECT_EQ(mine.sections[i].name, theirs[i].first);
    ASSERT_EQ(mine.sections[i].entries.size(), theirs[i].second.size()) << theirs[i].first;
    for (std::size_t j = 0; j < theirs[i].second.size(); ++j) {
      EXPECT_EQ(mine.sections[i].entries[j].key, theirs[i].second[j].first);
      EXPECT_EQ(mine.sections[i].entries[j].value, theirs[i].second[j].second);
    }
  }
}

TEST(ConfigFiles, EveryShippedFileReadsTheSameThroughRteCfgfile) {
  const auto files = shipped_files();
  ASSERT_EQ(files.size(), 4u) << "default, million, no-hugepages, two-socket";
  for (const fs::path& p : files)
    expect_same_as_rte_cfgfile(p);
}

TEST(ConfigFiles, TheSharedSyntaxReadsTheSame) {
  // Comments, escaped semicolons, white space, '=' in values: both readers agree.
  const fs::path p =
      fs::temp_directory_path() / ("ctxalloc_syntax_" + std::to_string(getpid()) + ".ini");
  std::ofstream(p) << "; comment\n  [ spaced ]  \n key\t=  value with spaces  \n"
                      "semi = a\\;b ; trailing comment\nequals = x=y\n\n[other]\nk=v\r\n";
  expect_same_as_rte_cfgfile(p);
  const IniFile mine = detail::read_ini(read_file(p));
  ASSERT_EQ(mine.sections.size(), 2u);
  EXPECT_EQ(mine.sections[0].name, "spaced");
  // rte_cfgfile looks only at a line's first ';': when it is escaped, nothing on the line
  // is a comment.
  EXPECT_EQ(mine.sections[0].find("semi")->value, "a;b ; trailing comment");
  EXPECT_EQ(mine.sections[0].find("equals")->value, "x=y");
  fs::remove(p);
}

TEST(ConfigFiles, RteCfgfileAcceptsWhatTheReaderRejects) {
  // Why the plugin has its own reader: rte_cfgfile loads all of these without a word.
  const fs::path p =
      fs::temp_directory_path() / ("ctxalloc_lax_" + std::to_string(getpid()) + ".ini");
  std::ofstream(p) << "[a]\nk = 1\nk = 2\nno equals sign\n[a]\n[b] trailing\n"
                   << std::string(70, 'n') << " = 1\n";
  rte_cfgfile* cfg = rte_cfgfile_load(p.c_str(), 0);
  ASSERT_NE(cfg, nullptr);
  EXPECT_STREQ(rte_cfgfile_get_entry(cfg, "a", "k"), "1");  // the duplicate is kept, unseen
  rte_cfgfile_close(cfg);
  const IniFile mine = detail::read_ini(read_file(p));
  ASSERT_EQ(mine.errors.size(), 5u);
  EXPECT_NE(mine.errors[0].message.find("duplicate key"), std::string::npos);
  EXPECT_NE(mine.errors[1].message.find("not `key = value`"), std::string::npos);
  EXPECT_NE(mine.errors[2].message.find("duplicate section"), std::string::npos);
  EXPECT_NE(mine.errors[3].message.find("text after"), std::string::npos);
  EXPECT_NE(mine.errors[4].message.find("keeps only 63"), std::string::npos);
  fs::remove(p);
}

TEST(ConfigFiles, LinesTooLongForRteCfgfileAreRejectedByBoth) {
  const std::string ok_line = "k = " + std::string(detail::kCfgMaxLine - 5, 'v');  // 322 chars
  const std::string long_line = ok_line + "v";                                     // 323 chars
  EXPECT_TRUE(detail::read_ini("[s]\n" + ok_line + "\n").errors.size() == 1)
      << "a 318-character value is too long for a value, but the line itself fits";
  const IniFile r = detail::read_ini("[s]\n" + long_line + "\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("line of 323 characters"), std::string::npos);
  const fs::path p =
      fs::temp_directory_path() / ("ctxalloc_long_" + std::to_string(getpid()) + ".ini");
  std::ofstream(p) << "[s]\n" << long_line << "\n";
  EXPECT_EQ(rte_cfgfile_load(p.c_str(), 0), nullptr);
  fs::remove(p);
}

// ---------------------------------------------------------------- shipped files

TEST(ConfigFiles, EveryShippedFilePassesAgainstTheTopologyItDescribes) {
  for (const fs::path& p : shipped_files()) {
    const ConfigResult r = load_config_file(p.string());
    EXPECT_TRUE(r.ok()) << p << ": " << (r.errors.empty() ? "" : r.errors[0].to_string());
  }
}

TEST(ConfigFiles, TheDefaultFitsATwoCoreOneNodeMachineWithOrWithoutHugepages) {
  const ConfigResult r = load_config_file((source_root() / "config/default.ini").string());
  ASSERT_TRUE(r.ok());
  const Config& c = *r.config;
  ASSERT_EQ(c.sockets.size(), 1u);
  EXPECT_EQ(c.sockets[0].lcores, (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(c.hugepages, HugepagePolicy::prefer);
  EXPECT_EQ(c.fallback, (std::vector<Tier>{Tier::context, Tier::thread, Tier::global}));
  EXPECT_LE(c.socket_demand(c.sockets[0]), c.sockets[0].hugepage_bytes());
  EXPECT_EQ(c.flows.idle_timeout, std::chrono::seconds(10));
}

TEST(ConfigFiles, TheEmbeddedDefaultIsConfigDefaultIni) {
  EXPECT_EQ(std::string(default_config_text()), read_file(source_root() / "config/default.ini"));
  const ConfigResult r = parse_config(default_config_text(), kDefaultConfigName);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->source, kDefaultConfigName);
}

TEST(ConfigFiles, LcoreSectionsOverrideTheDefaultKeyByKey) {
  const ConfigResult r = load_config_file((source_root() / "config/two-socket.ini").string());
  ASSERT_TRUE(r.ok());
  const Config& c = *r.config;
  EXPECT_EQ(c.lcore(0).thread_allocator, AllocatorKind::tree) << "kind from [lcore.default]";
  EXPECT_EQ(c.lcore(0).thread_size, 4u << 20);
  EXPECT_EQ(c.lcore(8).thread_allocator, AllocatorKind::tree);
  EXPECT_EQ(c.lcore(8).thread_size, 16u << 20) << "size from [lcore.default]";
  EXPECT_EQ(c.lcore(8).socket, 1u);
  EXPECT_EQ(c.lcore(3).thread_allocator, AllocatorKind::tree);
  EXPECT_EQ(c.lcore(99).thread_allocator, AllocatorKind::tree) << "unlisted: the default";
  ASSERT_NE(c.socket(1), nullptr);
  EXPECT_EQ(c.socket(2), nullptr);
}

TEST(ConfigFiles, DescribeSaysWhatTheFileMeans) {
  const ConfigResult r = load_config_file((source_root() / "config/default.ini").string());
  ASSERT_TRUE(r.ok());
  const std::vector<std::string> lines = describe(*r.config);
  std::string all;
  for (const std::string& l : lines)
    all += l + "\n";
  EXPECT_NE(all.find("fallback: context -> thread -> global -> fail"), std::string::npos) << all;
  EXPECT_NE(all.find("socket 0: lcores 0-1; 112 x 2 MiB hugepages (224 MiB, 192 MiB of them"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("flows: growing contexts, first chunk 1 KiB, chunks up to 16 KiB, large "
                     "blocks from 4 KiB, budget 16 KiB per flow, spill global, at most 100000 "
                     "flows, idle timeout 10 s"),
            std::string::npos)
      << all;
  // 50,000 first chunks of 1 KiB: 4,092 per 4 MiB segment (page 0 keeps 4 KiB for the
  // segment's record), 13 segments.
  EXPECT_NE(all.find("flow memory per lcore (a share of 50000 flows over 2 lcores): 52 MiB of "
                     "first chunks + 16 MiB growth = 68 MiB"),
            std::string::npos)
      << all;
  const ConfigResult fixed =
      load_config_file((source_root() / "tests/dpdk/configs/lcore_fixed_bump.ini").string());
  ASSERT_TRUE(fixed.ok());
  std::string f;
  for (const std::string& l : describe(*fixed.config))
    f += l + "\n";
  EXPECT_NE(f.find("flows: bump contexts of 16 KiB, 512 ready per lcore, at most 1024 flows, "
                   "idle timeout 10 s"),
            std::string::npos)
      << f;
}

// ---------------------------------------------------------------- units

TEST(ConfigUnits, SizesTakeBinaryUnitsOnly) {
  EXPECT_EQ(detail::parse_size("4096").value(), 4096u);
  EXPECT_EQ(detail::parse_size("64K").value(), 64u << 10);
  EXPECT_EQ(detail::parse_size("2MiB").value(), 2u << 20);
  EXPECT_EQ(detail::parse_size("1g").value(), 1u << 30);
  EXPECT_EQ(detail::parse_size("3 M").value(), 3u << 20);
  EXPECT_EQ(detail::parse_size("2T").value(), std::uint64_t{2} << 40);
  EXPECT_NE(detail::parse_size("2MB").error().find("decimal unit"), std::string::npos);
  EXPECT_NE(detail::parse_size("0K").error().find("above zero"), std::string::npos);
  EXPECT_NE(detail::parse_size("1.5M").error().find("whole number"), std::string::npos);
  EXPECT_NE(detail::parse_size("0x100").error().find("decimal"), std::string::npos);
  EXPECT_NE(detail::parse_size("99999999999T").error().find("too large"), std::string::npos);
  EXPECT_NE(detail::parse_size("99999999999999999999").error().find("too large"),
            std::string::npos);
  EXPECT_NE(detail::parse_size("M").error().find("not a number"), std::string::npos);
}

TEST(ConfigUnits, DurationsNeedAUnit) {
  EXPECT_EQ(detail::parse_duration("250ms").value(), std::chrono::milliseconds(250));
  EXPECT_EQ(detail::parse_duration("10s").value(), std::chrono::seconds(10));
  EXPECT_EQ(detail::parse_duration("2min").value(), std::chrono::minutes(2));
  EXPECT_FALSE(detail::parse_duration("10").ok());
  EXPECT_FALSE(detail::parse_duration("10h").ok());
  EXPECT_FALSE(detail::parse_duration("2000min").ok()) << "longer than a day";
}

TEST(ConfigUnits, IdListsAreSortedAndRefuseDuplicates) {
  EXPECT_EQ(detail::parse_id_list("4-5, 0,2", 128).value(), (std::vector<unsigned>{0, 2, 4, 5}));
  EXPECT_FALSE(detail::parse_id_list("0-2,1", 128).ok());
  EXPECT_FALSE(detail::parse_id_list("3-1", 128).ok());
  EXPECT_FALSE(detail::parse_id_list("128", 128).ok());
  EXPECT_FALSE(detail::parse_id_list("", 128).ok());
  EXPECT_EQ(detail::format_id_list({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
}

// ---------------------------------------------------------------- against a system

// A fake sysfs tree: nodes with CPUs and hugepages.
class FakeSysfs {
 public:
  FakeSysfs() : root_(fs::temp_directory_path() / ("ctxalloc_sysfs_" + std::to_string(getpid()))) {
    fs::remove_all(root_);
  }
  ~FakeSysfs() { fs::remove_all(root_); }

  void node(unsigned id, const std::string& cpus, std::uint64_t pages_2m) {
    const fs::path n = root_ / "devices/system/node" / ("node" + std::to_string(id));
    write(n / "cpulist", cpus);
    write(n / "hugepages/hugepages-2048kB/nr_hugepages", std::to_string(pages_2m));
    write(n / "hugepages/hugepages-2048kB/free_hugepages", std::to_string(pages_2m));
    nodes_ += (nodes_.empty() ? "" : ",") + std::to_string(id);
    write(root_ / "devices/system/node/online", nodes_);
  }
  void system(const std::string& online_cpus) {
    write(root_ / "devices/system/cpu/online", online_cpus);
    write(root_ / "kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "0");
  }
  std::string nr_pages(unsigned node) const {
    return read_file(root_ / "devices/system/node" / ("node" + std::to_string(node)) /
                     "hugepages/hugepages-2048kB/nr_hugepages");
  }
  const fs::path& root() const { return root_; }

  static void write(const fs::path& p, const std::string& v) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << v << "\n";
  }

 private:
  fs::path root_;
  std::string nodes_;
};

Config load_ok(const std::string& name) {
  ConfigResult r = load_config_file((source_root() / "config" / name).string());
  EXPECT_TRUE(r.ok());
  return std::move(*r.config);
}

TEST(ConfigSystem, ProbeReadsNodesCpusAndHugepages) {
  FakeSysfs f;
  f.system("0-3");
  f.node(0, "0-1", 16);
  f.node(1, "2-3", 0);
  const SystemInfo sys = probe_system(f.root().string());
  ASSERT_EQ(sys.nodes.size(), 2u);
  EXPECT_EQ(sys.online_cpus, (std::vector<unsigned>{0, 1, 2, 3}));
  EXPECT_EQ(sys.node_of_cpu(3), 1);
  EXPECT_EQ(sys.node(0)->pages_of(2 << 20)->total, 16u);
  EXPECT_EQ(sys.page_sizes, (std::vector<std::uint64_t>{2 << 20}));
}

TEST(ConfigSystem, MissingHugepagesWarnUnderPreferAndFailUnderRequire) {
  FakeSysfs f;
  f.system("0-1");
  f.node(0, "0-1", 16);
  std::vector<Diagnostic> warnings;
  Config c = load_ok("default.ini");  // asks for 112
  EXPECT_TRUE(check_against_system(c, probe_system(f.root().string()), warnings).empty());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(
      warnings[0].message.find("node 0 has 16 x 2 MiB hugepages reserved, the file asks for 112"),
      std::string::npos)
      << warnings[0].message;
  EXPECT_EQ(warnings[0].line, c.sockets[0].hugepages_line);
  c.hugepages = HugepagePolicy::require;
  warnings.clear();
  EXPECT_EQ(check_against_system(c, probe_system(f.root().string()), warnings).size(), 1u);
}

TEST(ConfigSystem, TwoSocketFileFailsOnAOneNodeMachineAndPassesOnItsOwn) {
  Config c = load_ok("two-socket.ini");
  {
    FakeSysfs f;
    f.system("0-1");
    f.node(0, "0-1", 1024);
    std::vector<Diagnostic> warnings;
    const auto errors = check_against_system(c, probe_system(f.root().string()), warnings);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_NE(errors[0].message.find("lcores 2-7: no such CPUs online"), std::string::npos);
    EXPECT_EQ(errors[1].section, "socket.1");
    EXPECT_NE(errors[1].message.find("NUMA node 1 does not exist"), std::string::npos);
  }
  {
    FakeSysfs f;
    f.system("0-15");
    f.node(0, "0-7", 512);
    f.node(1, "8-15", 512);
    std::vector<Diagnostic> warnings;
    EXPECT_TRUE(check_against_system(c, probe_system(f.root().string()), warnings).empty());
    EXPECT_TRUE(warnings.empty());
  }
  {
    FakeSysfs f;  // lcores on the wrong node
    f.system("0-15");
    f.node(0, "0-3,8-11", 512);
    f.node(1, "4-7,12-15", 512);
    std::vector<Diagnostic> warnings;
    const auto errors = check_against_system(c, probe_system(f.root().string()), warnings);
    EXPECT_EQ(errors.size(), 8u);
    EXPECT_NE(errors[0].message.find("lcore 4 is on NUMA node 1, not 0"), std::string::npos);
  }
}

TEST(ConfigSystem, ReserveRaisesPagesPerNodeAndNeverLowersThem) {
  FakeSysfs f;
  f.system("0-15");
  f.node(0, "0-7", 100);
  f.node(1, "8-15", 600);
  const auto steps = reserve_hugepages(load_ok("two-socket.ini"), f.root().string());
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_TRUE(steps[0].ok);
  EXPECT_NE(steps[0].text.find("raised from 100 to 512"), std::string::npos) << steps[0].text;
  EXPECT_EQ(f.nr_pages(0), "512\n");
  EXPECT_TRUE(steps[1].ok);
  EXPECT_NE(steps[1].text.find("600 reserved already"), std::string::npos) << steps[1].text;
  EXPECT_EQ(f.nr_pages(1), "600\n");
}

TEST(ConfigSystem, ReserveSaysWhatItCouldNotDo) {
  FakeSysfs f;
  f.system("0-1");
  f.node(0, "0-1", 0);
  // A directory where the count should be: opening it for writing fails.
  const fs::path nr =
      f.root() / "devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";
  fs::remove(nr);
  fs::create_directories(nr);
  const auto steps = reserve_hugepages(load_ok("two-socket.ini"), f.root().string());
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_FALSE(steps[0].ok);
  EXPECT_NE(steps[0].text.find("could not raise 0 to 512"), std::string::npos) << steps[0].text;
  EXPECT_FALSE(steps[1].ok);
  EXPECT_NE(steps[1].text.find("NUMA node 1 does not exist"), std::string::npos) << steps[1].text;
  const auto none = reserve_hugepages(load_ok("no-hugepages.ini"), f.root().string());
  ASSERT_EQ(none.size(), 1u);
  EXPECT_TRUE(none[0].ok);
}

// ---------------------------------------------------------------- the command

struct ToolRun {
  int status = -1;
  std::string out;
};

// Runs the ctxalloc-config command (its path comes from meson) with stderr merged.
ToolRun run_tool(const std::string& args, const std::string& env = "") {
  const char* tool = std::getenv("CTXALLOC_CONFIG_TOOL");
  EXPECT_NE(tool, nullptr);
  ToolRun r;
  if (tool == nullptr) return r;
  const std::string cmd = env + " " + tool + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(ConfigCommand, CheckPassesEveryShippedFileAndExplainsIt) {
  for (const fs::path& p : shipped_files()) {
    const ToolRun r = run_tool("check " + p.string());
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find(p.string() + ": OK"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("fallback: context -> thread -> global"), std::string::npos) << r.out;
  }
}

TEST(ConfigCommand, CheckRejectsABadFileWithFileLineSectionAndKey) {
  const fs::path bad = source_root() / "tests/dpdk/configs/bad_hugepages_too_few.ini";
  const ToolRun r = run_tool("check " + bad.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find(bad.string() + ":10: [socket.0] hugepages: socket 0 needs 56 MiB"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("1 error"), std::string::npos) << r.out;
}

TEST(ConfigCommand, CheckAgainstTheSystemReadsSysfs) {
  FakeSysfs f;
  f.system("0-1");
  f.node(0, "0-1", 64);
  const std::string env = "CTXALLOC_SYSFS=" + f.root().string();
  const ToolRun ok =
      run_tool("check --against-system " + (source_root() / "config/default.ini").string(), env);
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_NE(ok.out.find("OK (also on this machine)"), std::string::npos) << ok.out;
  const ToolRun bad =
      run_tool("check --against-system " + (source_root() / "config/two-socket.ini").string(), env);
  EXPECT_EQ(bad.status, 1) << bad.out;
  EXPECT_NE(bad.out.find("[socket.1]: NUMA node 1 does not exist on this machine"),
            std::string::npos)
      << bad.out;
}

TEST(ConfigCommand, ReserveReportsEachNode) {
  FakeSysfs f;
  f.system("0-1");
  f.node(0, "0-1", 8);
  const ToolRun r = run_tool("reserve " + (source_root() / "config/default.ini").string(),
                             "CTXALLOC_SYSFS=" + f.root().string());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("node 0, 2 MiB pages: raised from 8 to 112"), std::string::npos) << r.out;
  EXPECT_EQ(f.nr_pages(0), "112\n");
}

TEST(ConfigCommand, BadUsageExitsWithTwo) {
  EXPECT_EQ(run_tool("").status, 2);
  EXPECT_EQ(run_tool("check").status, 2);
  EXPECT_EQ(run_tool("frobnicate x").status, 2);
  const ToolRun d = run_tool("default");
  EXPECT_EQ(d.status, 0);
  EXPECT_EQ(d.out, read_file(source_root() / "config/default.ini"));
}

}  // namespace
}  // namespace ctxalloc::dpdk
