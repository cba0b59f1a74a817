// The process allocator's statistics and the exit report CTXALLOC_STATS asks for.
#include "ctxalloc/replace/process_stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/replace/detail/bootstrap.h"
#include "ctxalloc/replace/detail/front_internal.h"
#include "ctxalloc/switchable/runtime_hooks.h"

namespace ctxalloc {
namespace {

using replace::detail::front_counters;

// Where the report goes: kOff, kStderr, or the path in g_path. Read at process init,
// when the environment is the one the program was started with.
enum class Target { off, stderr_fd, path };
Target g_target = Target::off;
char g_path[4096];
pid_t g_init_pid = 0;

void add_heap(void* context, const ThreadHeap& heap, bool abandoned) {
  auto& s = *static_cast<ProcessStats*>(context);
  const ThreadHeapStats h = heap.stats();
  ++s.heaps;
  if (abandoned) ++s.heaps_abandoned;
  s.small += h.small;
  s.medium += h.medium;
  s.fallbacks += h.fallbacks;
  s.large += h.large;
  s.remote_frees += h.remote_received;
}

void add_global(void* context, const GlobalHeap& heap, unsigned) {
  auto& s = *static_cast<ProcessStats*>(context);
  s.global += heap.stats();
  s.global_chunks += heap.chunks();
  s.large_mappings += heap.large_mappings();
  s.large_cached += heap.cached_large();
  s.large_cached_bytes += heap.cached_large_bytes();
  s.large_reuses += heap.large_reuses();
  s.large_evictions += heap.large_evictions();
}

// snprintf into a line buffer and write(2): stdio streams may allocate, this may not.
class Line {
 public:
  explicit Line(const char* section) noexcept {
    add("ctxalloc[%d]: %s", static_cast<int>(getpid()), section);
  }
  [[gnu::format(printf, 2, 3)]] void add(const char* fmt, ...) noexcept {
    if (len_ >= sizeof buf_) return;
    va_list ap;
    va_start(ap, fmt);
    const int n = std::vsnprintf(buf_ + len_, sizeof buf_ - len_, fmt, ap);
    va_end(ap);
    if (n > 0) len_ += static_cast<std::size_t>(n);
    if (len_ >= sizeof buf_) len_ = sizeof buf_ - 1;
  }
  void kv(const char* key, std::uint64_t v) noexcept {
    add(" %s=%llu", key, static_cast<unsigned long long>(v));
  }
  void write_to(int fd) noexcept {
    if (len_ < sizeof buf_ - 1) buf_[len_++] = '\n';
    std::size_t done = 0;
    while (done < len_) {
      const ssize_t n = ::write(fd, buf_ + done, len_ - done);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  char buf_[1024];
  std::size_t len_ = 0;
};

[[gnu::destructor]] void report_at_exit() noexcept {
  if (g_target == Target::off) return;
  if (g_target == Target::stderr_fd) {
    write_process_stats(STDERR_FILENO);
    return;
  }
  const int fd = ::open(g_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  write_process_stats(fd);
  ::close(fd);
}

}  // namespace

namespace replace::detail {

void init_exit_report() noexcept {
  g_init_pid = getpid();
  const char* v = std::getenv("CTXALLOC_STATS");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "0") == 0) return;
  if (std::strcmp(v, "1") == 0 || std::strcmp(v, "stderr") == 0) {
    g_target = Target::stderr_fd;
    return;
  }
  if (std::strlen(v) >= sizeof g_path) return;  // not a path this report can use
  std::strcpy(g_path, v);
  g_target = Target::path;
}

}  // namespace replace::detail

ProcessStats process_stats() noexcept {
  ProcessStats s;
  s.default_mode = detail::default_mode();
  detail::for_each_heap(&add_heap, &s);
  detail::for_each_global_heap(&add_global, &s);
  const auto& c = front_counters();
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.threads = get(c.threads);
  s.threads_exited = get(c.threads_exited);
  s.nested_calls = get(c.nested);
  s.dropped_frees = get(c.dropped_frees);
  s.late_operations = get(c.late_operations);
  s.failures = get(c.failures);
  s.new_handler_calls = get(c.new_handler_calls);
  s.forks = get(c.forks);
  s.fork_waits = get(c.fork_waits);
  const auto arena = replace::detail::bootstrap_arena().counts();
  s.early_allocations = arena.allocations;
  s.early_bytes = arena.bytes;
  s.early_in_use = arena.in_use;
  s.misuses = misuse_count();
  return s;
}

void write_process_stats(int fd) noexcept {
  const ProcessStats s = process_stats();
  {
    Line l("process");
    l.add(" mode=%s", to_string(s.default_mode));
    l.kv("threads", s.threads);
    l.kv("threads_exited", s.threads_exited);
    l.kv("forks", s.forks);
    if (g_init_pid != 0 && g_init_pid != getpid()) l.add(" forked_from=%d", g_init_pid);
    l.write_to(fd);
  }
  {
    Line l("total");
    l.kv("allocations", s.allocations());
    l.kv("frees", s.frees());
    l.kv("bytes_in_use", s.small.bytes_in_use + s.medium.bytes_in_use + s.global.bytes_in_use);
    l.kv("failures", s.failures);
    l.kv("misuses", s.misuses);
    l.write_to(fd);
  }
  {
    Line l("thread-heaps");
    l.kv("heaps", s.heaps);
    l.kv("abandoned", s.heaps_abandoned);
    l.kv("small_allocations", s.small.allocations);
    l.kv("small_frees", s.small.deallocations);
    l.kv("medium_allocations", s.medium.allocations);
    l.kv("medium_frees", s.medium.deallocations);
    l.kv("bytes_in_use", s.small.bytes_in_use + s.medium.bytes_in_use);
    l.kv("remote_frees", s.remote_frees);
    l.kv("fallbacks", s.fallbacks);
    l.kv("large", s.large);
    l.write_to(fd);
  }
  {
    Line l("global-heap");
    l.kv("allocations", s.global.allocations);
    l.kv("frees", s.global.deallocations);
    l.kv("bytes_in_use", s.global.bytes_in_use);
    l.kv("chunks", s.global_chunks);
    l.kv("large_mappings", s.large_mappings);
    l.kv("large_cached", s.large_cached);
    l.kv("large_cached_bytes", s.large_cached_bytes);
    l.kv("large_reuses", s.large_reuses);
    l.kv("large_evictions", s.large_evictions);
    l.write_to(fd);
  }
  {
    Line l("front");
    l.kv("early_allocations", s.early_allocations);
    l.kv("early_bytes", s.early_bytes);
    l.kv("early_in_use", s.early_in_use);
    l.kv("nested_calls", s.nested_calls);
    l.kv("dropped_frees", s.dropped_frees);
    l.kv("late_operations", s.late_operations);
    l.kv("fork_waits", s.fork_waits);
    l.kv("new_handler_calls", s.new_handler_calls);
    l.write_to(fd);
  }
}

}  // namespace ctxalloc

extern "C" __attribute__((visibility("default"))) void ctxalloc_write_stats(int fd) noexcept {
  ctxalloc::write_process_stats(fd);
}
