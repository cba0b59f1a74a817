// ctxalloc-config: checks configuration files, explains them, and reserves the hugepages
// they ask for.
//   ctxalloc-config check [--against-system] FILE...
//   ctxalloc-config reserve FILE
//   ctxalloc-config default            (prints the embedded default configuration)
// Exit status: 0 all well, 1 a file is bad or a reservation fell short, 2 bad usage.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ctxalloc/dpdk/config.h"
#include "ctxalloc/dpdk/system.h"

namespace {

using namespace ctxalloc::dpdk;

int usage() {
  std::fprintf(stderr,
               "usage: ctxalloc-config check [--against-system] FILE...\n"
               "       ctxalloc-config reserve FILE\n"
               "       ctxalloc-config default\n");
  return 2;
}

void print_errors(const std::vector<Diagnostic>& ds, const char* prefix) {
  for (const Diagnostic& d : ds)
    std::fprintf(stderr, "%s%s\n", prefix, d.to_string().c_str());
}

int check_one(const std::string& path, bool against_system) {
  const ConfigResult r = load_config_file(path);
  if (!r.ok()) {
    print_errors(r.errors, "");
    std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), r.errors.size(),
                 r.errors.size() == 1 ? "" : "s");
    return 1;
  }
  std::vector<Diagnostic> errors, warnings;
  if (against_system)
    errors = check_against_system(*r.config, probe_system(sysfs_root()), warnings);
  print_errors(warnings, "warning: ");
  if (!errors.empty()) {
    print_errors(errors, "");
    std::fprintf(stderr, "%s: %zu error%s against this machine\n", path.c_str(), errors.size(),
                 errors.size() == 1 ? "" : "s");
    return 1;
  }
  std::printf("%s: OK%s\n", path.c_str(), against_system ? " (also on this machine)" : "");
  for (const std::string& line : describe(*r.config))
    std::printf("  %s\n", line.c_str());
  return 0;
}

// EAL maps hugepages through a hugetlbfs mount unless it runs --in-memory.
bool hugetlbfs_mounted() {
  std::ifstream mounts("/proc/mounts");
  std::string dev, dir, type;
  while (mounts >> dev >> dir >> type) {
    if (type == "hugetlbfs") return true;
    mounts.ignore(4096, '\n');
  }
  return false;
}

int reserve(const std::string& path) {
  const ConfigResult r = load_config_file(path);
  if (!r.ok()) {
    print_errors(r.errors, "");
    std::fprintf(stderr, "%s: not reserving anything for a bad file\n", path.c_str());
    return 1;
  }
  bool all_ok = true;
  for (const ReserveStep& s : reserve_hugepages(*r.config, sysfs_root())) {
    std::printf("%s %s\n", s.ok ? "ok:    " : "FAILED:", s.text.c_str());
    all_ok = all_ok && s.ok;
  }
  if (r.config->hugepages != HugepagePolicy::none && !hugetlbfs_mounted())
    std::printf("note:   no hugetlbfs is mounted: EAL needs one, unless run with --in-memory\n");
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string cmd = argv[1];
  try {
    if (cmd == "check") {
      bool against_system = false;
      std::vector<std::string> files;
      for (int i = 2; i < argc; ++i) {
        if (std::strcmp(argv[i], "--against-system") == 0)
          against_system = true;
        else if (argv[i][0] == '-')
          return usage();
        else
          files.emplace_back(argv[i]);
      }
      if (files.empty()) return usage();
      int rc = 0;
      for (const std::string& f : files)
        rc |= check_one(f, against_system);
      return rc;
    }
    if (cmd == "reserve" && argc == 3) return reserve(argv[2]);
    if (cmd == "default" && argc == 2) {
      const std::string_view text = default_config_text();
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ctxalloc-config: %s\n", e.what());
    return 1;
  }
  return usage();
}
