#include "ctxalloc/sources/kernel_info.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ctxalloc {
namespace {

// A file read line by line through a fixed buffer: no FILE (fopen allocates), no heap.
// Lines longer than the buffer are cut (smaps' only long lines are path names, which we
// skip anyway).
class LineReader {
 public:
  explicit LineReader(const char* path) noexcept : fd_(::open(path, O_RDONLY | O_CLOEXEC)) {}
  ~LineReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  bool ok() const noexcept { return fd_ >= 0; }

  /// The next line without its newline, or nullptr at the end.
  const char* next() noexcept {
    std::size_t len = 0;
    for (;;) {
      if (pos_ == end_ && !refill()) break;
      const char c = buf_[pos_++];
      if (c == '\n') {
        line_[len] = '\0';
        return line_;
      }
      if (len + 1 < sizeof line_) line_[len++] = c;  // the rest of a long line is dropped
    }
    if (len == 0) return nullptr;
    line_[len] = '\0';
    return line_;
  }

 private:
  bool refill() noexcept {
    if (fd_ < 0) return false;
    ssize_t n;
    do {
      n = ::read(fd_, buf_, sizeof buf_);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return false;
    pos_ = 0;
    end_ = static_cast<std::size_t>(n);
    return true;
  }

  int fd_;
  std::size_t pos_ = 0, end_ = 0;
  char buf_[4096];
  char line_[256];
};

// Reads a file holding one unsigned number ("64\n"); false when unreadable.
bool read_number(const char* path, std::uint64_t* out) noexcept {
  LineReader r(path);
  const char* line = r.ok() ? r.next() : nullptr;
  if (line == nullptr) return false;
  char* end = nullptr;
  *out = std::strtoull(line, &end, 10);
  return end != line;
}

bool is_hex(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// "7f16e7e00000-7f16e8600000 rw-p ..." -> begin, end.
bool parse_range(const char* line, std::uintptr_t* begin, std::uintptr_t* end) noexcept {
  if (!is_hex(line[0])) return false;
  char* dash = nullptr;
  *begin = std::strtoull(line, &dash, 16);
  if (dash == nullptr || *dash != '-') return false;
  char* after = nullptr;
  *end = std::strtoull(dash + 1, &after, 16);
  return after != dash + 1 && *after == ' ';
}

// "AnonHugePages:      8192 kB" -> bytes, when the line starts with key.
bool field_kb(const char* line, const char* key, std::size_t* bytes) noexcept {
  const std::size_t n = std::strlen(key);
  if (std::strncmp(line, key, n) != 0 || line[n] != ':') return false;
  *bytes = static_cast<std::size_t>(std::strtoull(line + n + 1, nullptr, 10)) * 1024;
  return true;
}

bool has_flag(const char* flags, const char* two) noexcept {
  for (const char* p = flags; p[0] != '\0' && p[1] != '\0'; ++p) {
    if (p[0] == two[0] && p[1] == two[1] && (p == flags || p[-1] == ' ') &&
        (p[2] == ' ' || p[2] == '\0'))
      return true;
  }
  return false;
}

void parse_field(const char* line, MappingReport* r) noexcept {
  std::size_t v = 0;
  if (field_kb(line, "KernelPageSize", &r->kernel_page_size)) return;
  if (field_kb(line, "MMUPageSize", &r->mmu_page_size)) return;
  if (field_kb(line, "Rss", &r->rss)) return;
  if (field_kb(line, "AnonHugePages", &r->anon_huge_bytes)) return;
  if (field_kb(line, "Private_Hugetlb", &v) || field_kb(line, "Shared_Hugetlb", &v)) {
    r->hugetlb_bytes += v;
    return;
  }
  if (field_kb(line, "Locked", &r->locked_bytes)) return;
  if (field_kb(line, "Swap", &r->swap)) return;
  if (std::strncmp(line, "THPeligible:", 12) == 0) {
    r->thp_eligible = std::strtol(line + 12, nullptr, 10) == 1;
    return;
  }
  if (std::strncmp(line, "VmFlags:", 8) == 0) {
    const char* f = line + 8;
    r->hugetlb_flag = has_flag(f, "ht");
    r->thp_advised = has_flag(f, "hg");
    r->locked_flag = has_flag(f, "lo");
    r->dontdump_flag = has_flag(f, "dd");
    r->noreserve_flag = has_flag(f, "nr");
  }
}

}  // namespace

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

HugePageCounts hugepage_counts(std::size_t page_bytes) noexcept {
  HugePageCounts c;
  char path[128];
  const auto kb = static_cast<unsigned long long>(page_bytes / 1024);
  std::snprintf(path, sizeof path, "/sys/kernel/mm/hugepages/hugepages-%llukB/nr_hugepages", kb);
  if (!read_number(path, &c.total)) return c;
  c.supported = true;
  std::snprintf(path, sizeof path, "/sys/kernel/mm/hugepages/hugepages-%llukB/free_hugepages", kb);
  read_number(path, &c.free);
  std::snprintf(path, sizeof path, "/sys/kernel/mm/hugepages/hugepages-%llukB/resv_hugepages", kb);
  read_number(path, &c.reserved);
  std::snprintf(path, sizeof path, "/sys/kernel/mm/hugepages/hugepages-%llukB/surplus_hugepages",
                kb);
  read_number(path, &c.surplus);
  return c;
}

ThpMode thp_mode() noexcept {
  LineReader r("/sys/kernel/mm/transparent_hugepage/enabled");
  const char* line = r.ok() ? r.next() : nullptr;
  if (line == nullptr) return ThpMode::unsupported;
  if (std::strstr(line, "[always]") != nullptr) return ThpMode::always;
  if (std::strstr(line, "[madvise]") != nullptr) return ThpMode::madvise;
  if (std::strstr(line, "[never]") != nullptr) return ThpMode::never;
  return ThpMode::unsupported;
}

const char* to_string(ThpMode m) noexcept {
  switch (m) {
    case ThpMode::unsupported:
      return "unsupported";
    case ThpMode::always:
      return "always";
    case ThpMode::madvise:
      return "madvise";
    case ThpMode::never:
      return "never";
  }
  return "?";
}

const char* to_string(PageKind k) noexcept {
  switch (k) {
    case PageKind::unknown:
      return "unknown";
    case PageKind::base:
      return "base pages";
    case PageKind::transparent:
      return "transparent hugepages";
    case PageKind::hugetlb:
      return "hugetlb pages";
  }
  return "?";
}

PageKind MappingReport::backing() const noexcept {
  if (!found) return PageKind::unknown;
  if (hugetlb_flag || kernel_page_size > page_size()) return PageKind::hugetlb;
  if (anon_huge_bytes > 0) return PageKind::transparent;
  return PageKind::base;
}

MappingReport inspect_mapping_in(const char* smaps_path, const void* p) noexcept {
  MappingReport r;
  LineReader in(smaps_path);
  if (!in.ok()) return r;
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  while (const char* line = in.next()) {
    std::uintptr_t begin = 0, end = 0;
    if (parse_range(line, &begin, &end)) {
      if (inside) break;  // the next mapping's header: ours is complete
      inside = addr >= begin && addr < end;
      if (inside) {
        r.found = true;
        r.vma_begin = begin;
        r.vma_end = end;
      }
      continue;
    }
    if (inside) parse_field(line, &r);
  }
  return r;
}

MappingReport inspect_mapping(const void* p) noexcept {
  return inspect_mapping_in("/proc/self/smaps", p);
}

}  // namespace ctxalloc
