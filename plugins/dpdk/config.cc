// Config's accessors, names of its enums, and the human-readable description that
// `ctxalloc-config check` prints.
#include <algorithm>
#include <cstdio>

#include "ctxalloc/dpdk/config.h"
#include "detail/units.h"

namespace ctxalloc::dpdk {

// Generated at build time from config/default.ini (see embed_config.py).
extern const char kEmbeddedDefaultConfig[];
extern const std::size_t kEmbeddedDefaultConfigSize;

std::string_view default_config_text() noexcept {
  return {kEmbeddedDefaultConfig, kEmbeddedDefaultConfigSize};
}

const char* to_string(AllocatorKind k) noexcept {
  switch (k) {
    case AllocatorKind::none:
      return "none";
    case AllocatorKind::bump:
      return "bump";
    case AllocatorKind::bitset:
      return "bitset";
    case AllocatorKind::tree:
      return "tree";
    case AllocatorKind::growing:
      return "growing";
  }
  return "?";
}

const char* to_string(FlowSpill s) noexcept {
  switch (s) {
    case FlowSpill::refuse:
      return "refuse";
    case FlowSpill::thread:
      return "thread";
    case FlowSpill::global:
      return "global";
  }
  return "?";
}

const char* to_string(HugepagePolicy p) noexcept {
  switch (p) {
    case HugepagePolicy::require:
      return "require";
    case HugepagePolicy::prefer:
      return "prefer";
    case HugepagePolicy::none:
      return "none";
  }
  return "?";
}

const char* to_string(Tier t) noexcept {
  switch (t) {
    case Tier::context:
      return "context";
    case Tier::thread:
      return "thread";
    case Tier::global:
      return "global";
  }
  return "?";
}

const SocketConfig* Config::socket(unsigned id) const noexcept {
  for (const SocketConfig& s : sockets)
    if (s.id == id) return &s;
  return nullptr;
}

LcoreConfig Config::lcore(unsigned id) const noexcept {
  for (const LcoreConfig& l : lcores)
    if (l.id == id) return l;
  LcoreConfig l = lcore_default;
  l.id = id;
  l.socket = 0;
  l.line = 0;
  return l;
}

bool Config::falls_back_to(Tier t) const noexcept {
  return std::find(fallback.begin(), fallback.end(), t) != fallback.end();
}

namespace {
constexpr std::uint64_t kSegment = std::uint64_t{4} << 20;
// FlowChunks' layout (flow_chunks.h): 64 pages of 64 KiB per segment, the first 4 KiB of
// page 0 for the segment's record (page 0 takes chunks of 4 KiB or less).
constexpr std::uint64_t kChunkPage = 64 << 10;
constexpr std::uint64_t kChunkPages = kSegment / kChunkPage;
constexpr std::uint64_t kChunkRecord = 4096;
constexpr std::uint64_t kMaxRegionBytes = std::uint64_t{16} << 30;  // SegmentRegion's

std::uint64_t chunks_per_segment(std::uint64_t chunk) noexcept {
  if (chunk == 0) return 0;
  const std::uint64_t page0 = chunk <= kChunkRecord ? (kChunkPage - kChunkRecord) / chunk : 0;
  return (kChunkPages - 1) * (kChunkPage / chunk) + page0;
}
}  // namespace

std::uint64_t Config::ready_bytes() const noexcept {
  if (flows.growing()) return 0;
  const std::uint64_t bytes = std::uint64_t{flows.ready_blocks} * flows.block_size;
  return (bytes + kSegment - 1) / kSegment * kSegment;
}

std::uint64_t Config::first_chunk_bytes(std::uint64_t n) const noexcept {
  const std::uint64_t per = chunks_per_segment(flows.first_chunk);
  return per == 0 ? 0 : (n + per - 1) / per * kSegment;
}

std::uint64_t Config::first_chunks_in(std::uint64_t bytes) const noexcept {
  return bytes / kSegment * chunks_per_segment(flows.first_chunk);
}

std::uint64_t Config::flow_memory_bytes(std::uint64_t n) const noexcept {
  if (!flows.growing()) return 0;
  return first_chunk_bytes(n) + flows.growth_size;
}

std::uint64_t Config::socket_demand(const SocketConfig& s) const noexcept {
  std::uint64_t need = s.global_heap;
  const std::uint64_t share = flow_share(flows.max_flows, lcores.size());
  for (unsigned id : s.lcores)
    need += lcore(id).thread_size + ready_bytes() + flow_memory_bytes(share);
  return need;
}

std::string Config::flow_sizing_error(std::uint32_t max, std::uint32_t flow_lcores) const {
  if (lcores.empty() || max == 0) return {};
  const std::uint64_t n = flow_lcores != 0 ? flow_lcores : lcores.size();
  const std::uint64_t share = flow_share(max, n);
  // The lcore with the smallest thread allocator is the one that runs out first.
  const LcoreConfig* tight = &lcores.front();
  for (const LcoreConfig& l : lcores)
    if (l.thread_size < tight->thread_size) tight = &l;
  if (flows.growing()) {
    const std::string at = source + ":" + std::to_string(flows.max_flows_line);
    if (max > flows.max_flows) {
      return "max_flows = " + std::to_string(max) + " needs " + std::to_string(max) + " x " +
             format_bytes(flows.first_chunk) +
             " first chunks = " + format_bytes(std::uint64_t{max} * flows.first_chunk) +
             " of flow memory, but the flow memory is sized at set-up from [flows] max_flows = " +
             std::to_string(flows.max_flows) + " (" + at + ") and holds " +
             std::to_string(flows.max_flows) + " first chunks (" +
             format_bytes(std::uint64_t{flows.max_flows} * flows.first_chunk) +
             "): raise max_flows there";
    }
    const std::uint64_t need = tight->thread_size + flow_memory_bytes(share);
    if (need <= kMaxRegionBytes) return {};
    return "max_flows = " + std::to_string(max) + " over " + std::to_string(n) +
           " lcores gives lcore " + std::to_string(tight->id) + " a share of " +
           std::to_string(share) + " flows: its first chunks (" +
           format_bytes(first_chunk_bytes(share)) + "), growth_size (" +
           format_bytes(flows.growth_size) + ") and thread_size (" +
           format_bytes(tight->thread_size) + ") need " + format_bytes(need) +
           ", but one lcore's memory is at most " + format_bytes(kMaxRegionBytes) +
           " (spread the flows over more lcores)";
  }
  const std::uint64_t need = share * flows.block_size;
  const std::uint64_t have = ready_bytes() + tight->thread_size;
  if (need <= have) return {};
  return "max_flows = " + std::to_string(max) + " over " + std::to_string(n) +
         " lcores gives lcore " + std::to_string(tight->id) + " a share of " +
         std::to_string(share) + " flows x " + format_bytes(flows.block_size) + " = " +
         format_bytes(need) + " needed, but its ready blocks (" + format_bytes(ready_bytes()) +
         ") and thread_size (" + format_bytes(tight->thread_size) + ") give " + format_bytes(have);
}

std::string Diagnostic::to_string() const {
  // Appends rather than `a + b` temporaries: GCC 12's -Wrestrict misfires on those.
  std::string s = file;
  if (line != 0) s.append(":").append(std::to_string(line));
  s.append(":");
  if (!section.empty()) s.append(" [").append(section).append("]");
  if (!key.empty())
    s.append(" ").append(key).append(":");
  else if (!section.empty())
    s.append(":");
  return s.append(" ").append(message);
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  unsigned u = 0;
  while (u + 1 < std::size(kUnits) && bytes >= (std::uint64_t{1024} << (10 * u)))
    ++u;
  const std::uint64_t unit = std::uint64_t{1} << (10 * u);
  char buf[48];
  if (bytes % unit == 0) {
    std::snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(bytes / unit),
                  kUnits[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f %s",
                  static_cast<double>(bytes) / static_cast<double>(unit), kUnits[u]);
  }
  return buf;
}

namespace {

std::string describe_lcore(const LcoreConfig& l) {
  if (l.thread_allocator == AllocatorKind::none) return "no thread allocator";
  return std::string("thread allocator ") + to_string(l.thread_allocator) + ", " +
         format_bytes(l.thread_size);
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = static_cast<unsigned long long>(d.count());
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + " min";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

std::string describe_hugepages(const Config& c, const SocketConfig& s) {
  if (s.hugepages == 0) return "no hugepages (normal pages)";
  return std::to_string(s.hugepages) + " x " + format_bytes(s.hugepage_size) + " hugepages (" +
         format_bytes(s.hugepage_bytes()) + ", " + format_bytes(c.socket_demand(s)) +
         " of them for ctxalloc)";
}

}  // namespace

std::vector<std::string> describe(const Config& c) {
  std::vector<std::string> out;
  std::string policy = std::string("hugepages: ") + to_string(c.hugepages);
  if (c.hugepages == HugepagePolicy::prefer)
    policy += " (normal pages with a warning where hugepages are missing)";
  out.push_back(policy);
  std::string chain;
  for (Tier t : c.fallback)
    chain += (chain.empty() ? "" : " -> ") + std::string(to_string(t));
  out.push_back("fallback: " + chain + " -> fail");
  for (const SocketConfig& s : c.sockets) {
    out.push_back("socket " + std::to_string(s.id) + ": lcores " +
                  detail::format_id_list(s.lcores) + "; " + describe_hugepages(c, s) +
                  "; global heap " + format_bytes(s.global_heap));
  }
  for (const LcoreConfig& l : c.lcores) {
    out.push_back("lcore " + std::to_string(l.id) + " (socket " + std::to_string(l.socket) +
                  "): " + describe_lcore(l) + (l.line ? "" : " (default)"));
  }
  out.push_back("other lcores: " + describe_lcore(c.lcore_default));
  const FlowConfig& f = c.flows;
  if (f.growing()) {
    const std::uint64_t share = Config::flow_share(f.max_flows, c.lcores.size());
    out.push_back(
        "flows: growing contexts, first chunk " + format_bytes(f.first_chunk) + ", chunks up to " +
        format_bytes(f.max_chunk) + ", large blocks from " + format_bytes(f.large_block_bytes()) +
        ", budget " + (f.budget == 0 ? std::string("none") : format_bytes(f.budget)) +
        " per flow, spill " + to_string(f.spill) + ", at most " + std::to_string(f.max_flows) +
        " flows, idle timeout " + format_duration(f.idle_timeout));
    out.push_back("flow memory per lcore (a share of " + std::to_string(share) + " flows over " +
                  std::to_string(c.lcores.size()) +
                  " lcores): " + format_bytes(c.first_chunk_bytes(share)) + " of first chunks + " +
                  format_bytes(f.growth_size) +
                  " growth = " + format_bytes(c.flow_memory_bytes(share)));
  } else {
    out.push_back(std::string("flows: ") + to_string(f.kind) + " contexts of " +
                  format_bytes(f.block_size) + ", " + std::to_string(f.ready_blocks) +
                  " ready per lcore, at most " + std::to_string(f.max_flows) +
                  " flows, idle timeout " + format_duration(f.idle_timeout));
  }
  return out;
}

}  // namespace ctxalloc::dpdk
