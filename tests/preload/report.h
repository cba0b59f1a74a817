// Reading the process allocator's report ("ctxalloc[<pid>]: <section> key=value ..."),
// from a CTXALLOC_STATS file or from this process (ctxalloc_write_stats), for the
// preload and operator new tests.
#pragma once

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace ctxalloc::testing {

class Report {
 public:
  /// The lines of text that belong to pid.
  static Report parse(const std::string& text, pid_t pid) {
    Report r;
    const std::string prefix = "ctxalloc[" + std::to_string(pid) + "]: ";
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(prefix, 0) != 0) continue;
      std::istringstream words(line.substr(prefix.size()));
      std::string section, kv;
      words >> section;
      auto& fields = r.sections_[section];
      while (words >> kv) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        const std::string value = kv.substr(eq + 1);
        fields[kv.substr(0, eq)] =
            value.empty() || value[0] < '0' || value[0] > '9' ? 0 : std::stoull(value);
        if (kv.substr(0, eq) == "mode") r.mode_ = value;
      }
    }
    return r;
  }
  static Report from_file(const std::string& path, pid_t pid) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return parse(ss.str(), pid);
  }
  /// This process's report through ctxalloc_write_stats, looked up at run time (unless
  /// the caller passes it: a static link does not export it), so the answer is empty
  /// when no ctxalloc process allocator is in place.
  static Report of_this_process(void (*fn)(int) = nullptr) {
    using Fn = void (*)(int);
    if (fn == nullptr) fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "ctxalloc_write_stats"));
    if (fn == nullptr) return Report{};
    const int fd = memfd_create("ctxalloc-report", 0);
    if (fd < 0) return Report{};
    fn(fd);
    std::string text;
    char buf[4096];
    for (off_t at = 0;;) {
      const ssize_t n = pread(fd, buf, sizeof buf, at);
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      at += n;
    }
    close(fd);
    return parse(text, getpid());
  }

  /// Whether the report exists at all (a mistyped LD_PRELOAD gives none).
  bool found() const { return !sections_.empty(); }
  std::uint64_t get(const std::string& section, const std::string& key) const {
    auto s = sections_.find(section);
    if (s == sections_.end()) return 0;
    auto k = s->second.find(key);
    return k == s->second.end() ? 0 : k->second;
  }
  bool has(const std::string& section, const std::string& key) const {
    auto s = sections_.find(section);
    return s != sections_.end() && s->second.count(key) != 0;
  }
  const std::string& mode() const { return mode_; }

 private:
  std::map<std::string, std::map<std::string, std::uint64_t>> sections_;
  std::string mode_;
};

}  // namespace ctxalloc::testing
