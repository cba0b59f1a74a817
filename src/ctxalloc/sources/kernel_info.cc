#include "ctxalloc/sources/kernel_info.h"

#include <dirent.h>
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

// The folder holding the hugepages-<kB>kB folders: system-wide (node < 0) or a node's.
bool hugepage_dir(char* out, std::size_t cap, const char* root, int node) noexcept {
  const int n =
      node < 0 ? std::snprintf(out, cap, "%s/kernel/mm/hugepages", root)
               : std::snprintf(out, cap, "%s/devices/system/node/node%d/hugepages", root, node);
  return n > 0 && static_cast<std::size_t>(n) < cap;
}

// "hugepages-2048kB" -> 2 MiB; 0 for any other name.
std::size_t page_bytes_of_dir(const char* name) noexcept {
  constexpr char kPrefix[] = "hugepages-";
  if (std::strncmp(name, kPrefix, sizeof kPrefix - 1) != 0) return 0;
  const char* digits = name + sizeof kPrefix - 1;
  char* end = nullptr;
  const unsigned long long kb = std::strtoull(digits, &end, 10);
  if (end == digits || std::strcmp(end, "kB") != 0 || kb == 0 || kb > (SIZE_MAX >> 10)) return 0;
  return static_cast<std::size_t>(kb) << 10;
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
  return hugepage_counts_in("/sys", page_bytes, -1);
}

HugePageCounts hugepage_counts_in(const char* sysfs_root, std::size_t page_bytes,
                                  int node) noexcept {
  HugePageCounts c;
  c.page_bytes = page_bytes;
  char dir[192];
  if (!hugepage_dir(dir, sizeof dir, sysfs_root, node)) return c;
  const auto kb = static_cast<unsigned long long>(page_bytes / 1024);
  char path[256];
  auto count = [&](const char* name, std::uint64_t* out) {
    std::snprintf(path, sizeof path, "%s/hugepages-%llukB/%s", dir, kb, name);
    return read_number(path, out);
  };
  if (!count("nr_hugepages", &c.total)) return c;
  c.supported = true;
  count("free_hugepages", &c.free);
  if (node < 0) count("resv_hugepages", &c.reserved);
  count("surplus_hugepages", &c.surplus);
  return c;
}

std::size_t hugepage_sizes_in(const char* sysfs_root, int node, std::size_t* sizes,
                              std::size_t cap) noexcept {
  char dir[192];
  if (cap == 0 || !hugepage_dir(dir, sizeof dir, sysfs_root, node)) return 0;
  const int fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t n = 0;
  // getdents64 into a stack buffer: opendir would allocate its DIR.
  alignas(8) char buf[2048];
  for (;;) {
    const ssize_t got = ::getdents64(fd, buf, sizeof buf);
    if (got <= 0) break;
    for (ssize_t off = 0; off < got;) {
      const auto* e = reinterpret_cast<const dirent64*>(buf + off);
      off += e->d_reclen;
      const std::size_t bytes = page_bytes_of_dir(e->d_name);
      if (bytes == 0 || n == cap) continue;
      std::size_t i = n++;  // insertion sort: a kernel offers two or three sizes
      for (; i > 0 && sizes[i - 1] > bytes; --i)
        sizes[i] = sizes[i - 1];
      sizes[i] = bytes;
    }
  }
  ::close(fd);
  return n;
}

bool hugetlbfs_mount_writable(const char* mounts_path) noexcept {
  LineReader r(mounts_path);
  if (!r.ok()) return false;
  // "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0": device, mount point,
  // type. A mount point with a space is written \040 by the kernel; such a path is not
  // unescaped here (access fails on it, as it would mean another directory).
  while (const char* line = r.next()) {
    const char* dir = std::strchr(line, ' ');
    if (dir == nullptr) continue;
    ++dir;
    const char* type = std::strchr(dir, ' ');
    if (type == nullptr || std::strncmp(type + 1, "hugetlbfs ", 10) != 0) continue;
    char path[256];
    const auto len = static_cast<std::size_t>(type - dir);
    if (len == 0 || len >= sizeof path) continue;
    std::memcpy(path, dir, len);
    path[len] = '\0';
    if (::access(path, W_OK) == 0) return true;
  }
  return false;
}

bool read_small_file(const char* path, char* buf, std::size_t cap) noexcept {
  if (cap == 0) return false;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t len = 0;
  while (len + 1 < cap) {
    const ssize_t n = ::read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  return len > 0;
}

namespace detail {

bool parse_uint(const char** s, unsigned* out) noexcept {
  const char* p = *s;
  if (*p < '0' || *p > '9') return false;
  std::uint64_t v = 0;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + static_cast<unsigned>(*p - '0');
    if (v > (std::uint64_t{1} << 31)) return false;
    ++p;
  }
  *s = p;
  *out = static_cast<unsigned>(v);
  return true;
}

}  // namespace detail

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
