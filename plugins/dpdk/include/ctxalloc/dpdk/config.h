// The plugin's configuration: hugepages and heaps per NUMA socket, the thread allocator of
// each lcore, flow contexts, and the fallback policy. It is read from an INI file in
// rte_cfgfile's syntax (docs/dpdk.md lists every key) by a reader that keeps line numbers,
// so that every error names file:line, section and key. The parsed Config is a plain
// struct: the plugin, the per-lcore set-up and ctxfwd read it directly.
//
// Nothing here includes a DPDK header: the command `ctxalloc-config` links it alone.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ctxalloc::dpdk {

/// The most lcores and sockets a file may name (DPDK's RTE_MAX_LCORE and
/// RTE_MAX_NUMA_NODES of Debian's build; the plugin static_asserts that they agree).
inline constexpr unsigned kMaxLcores = 128;
inline constexpr unsigned kMaxSockets = 32;

/// What a thread allocator or a flow context is made of. growing (flow contexts only):
/// ctxalloc's GrowingContext, a small first chunk that grows by chunks of the lcore's
/// flow memory; bump, bitset, tree: a fixed context over one block_size block.
enum class AllocatorKind : std::uint8_t { none, bump, bitset, tree, growing };

/// Where a growing flow's request goes when the lcore's flow memory has no room left
/// ([flows] spill): refused (counted), the lcore's thread allocator's segments, or those
/// and then the socket's global heap.
enum class FlowSpill : std::uint8_t { refuse, thread, global };

/// What to do when hugepages are missing.
enum class HugepagePolicy : std::uint8_t {
  require,  ///< refuse to start without the hugepages the file asks for
  prefer,   ///< use them when they exist, else normal pages with a logged warning
  none,     ///< never use hugepages (every socket must ask for 0)
};

/// Where an allocation goes when the tier before it is exhausted.
enum class Tier : std::uint8_t { context, thread, global };

/// "none", "bump", "bitset", "tree" / "require", ... / "context", ...
const char* to_string(AllocatorKind k) noexcept;
const char* to_string(HugepagePolicy p) noexcept;
const char* to_string(Tier t) noexcept;
const char* to_string(FlowSpill s) noexcept;

/// [socket.N]: one NUMA node, the lcores on it, its hugepages and its global heap.
struct SocketConfig {
  unsigned id = 0;
  std::vector<unsigned> lcores;     ///< sorted, each lcore in exactly one socket
  std::size_t hugepage_size = 0;    ///< bytes (a power of two)
  std::uint64_t hugepages = 0;      ///< pages to reserve on this node (0: none)
  std::size_t global_heap = 0;      ///< bytes of the socket's global heap (4 MiB multiple)
  unsigned line = 0;                ///< of the [socket.N] heading
  unsigned hugepages_line = 0;      ///< of the `hugepages` key
  unsigned hugepage_size_line = 0;  ///< of the `hugepage_size` key
  unsigned lcores_line = 0;         ///< of the `lcores` key

  /// hugepages * hugepage_size.
  std::uint64_t hugepage_bytes() const noexcept { return hugepages * hugepage_size; }
};

/// [lcore.default] or [lcore.N]: the lcore's thread-local allocator.
struct LcoreConfig {
  unsigned id = 0;      ///< the lcore id ([lcore.default]: unused)
  unsigned socket = 0;  ///< from the socket that lists it ([lcore.default]: unused)
  /// tree (ctxalloc's ThreadHeap) or none (no thread allocator: the lcore's flow
  /// contexts still come from its own arena); the validator refuses bump and bitset.
  AllocatorKind thread_allocator = AllocatorKind::tree;
  std::size_t thread_size = 0;  ///< bytes, a 4 MiB multiple (0 with thread_allocator none)
  unsigned line = 0;            ///< of the section heading (0: from [lcore.default])
};

/// [flows]: the per-flow context allocators.
struct FlowConfig {
  AllocatorKind kind = AllocatorKind::growing;  ///< never none
  // Fixed kinds (bump, bitset, tree) only.
  std::size_t block_size = 0;      ///< bytes of one flow context (2^12..2^22)
  std::uint32_t ready_blocks = 0;  ///< made ahead of time, per lcore
  // Growing only.
  std::size_t first_chunk = 1024;  ///< a flow's first chunk (power of two, 256 B..64 KiB)
  std::size_t max_chunk = 16384;   ///< the largest chunk a flow grows by (<= 64 KiB)
  std::size_t large_block = 0;     ///< requests this large are separate blocks (0: derived)
  std::size_t budget = 0;          ///< bytes one flow may hold (0: no bound)
  FlowSpill spill = FlowSpill::refuse;
  std::size_t growth_size = 0;  ///< per lcore: memory for further chunks and large blocks
  unsigned max_flows_line = 0;  ///< of the `max_flows` key
  // Both.
  std::uint32_t max_flows = 0;                ///< live flows at most (all lcores)
  std::chrono::milliseconds idle_timeout{0};  ///< a flow idle this long ends

  bool growing() const noexcept { return kind == AllocatorKind::growing; }
  /// large_block as configured, or derived: min(4 KiB, max_chunk / 2).
  std::size_t large_block_bytes() const noexcept {
    if (large_block != 0) return large_block;
    return max_chunk / 2 < 4096 ? max_chunk / 2 : 4096;
  }
};

struct Config {
  std::string source;  ///< the file it came from ("embedded:config/default.ini" for the default)
  HugepagePolicy hugepages = HugepagePolicy::prefer;
  /// The chain from [ctxalloc] fallback: always starts with context; a request that the
  /// last tier cannot serve fails.
  std::vector<Tier> fallback;
  std::vector<SocketConfig> sockets;  ///< sorted by id
  LcoreConfig lcore_default;
  std::vector<LcoreConfig> lcores;  ///< one per lcore listed by a socket, sorted by id
  FlowConfig flows;

  /// The socket section with this id, or null.
  const SocketConfig* socket(unsigned id) const noexcept;
  /// The lcore's settings: its own (with [lcore.default]'s for keys it leaves out), or
  /// [lcore.default]'s for an lcore no socket lists (its `socket` is then left 0).
  LcoreConfig lcore(unsigned id) const noexcept;
  /// Whether `fallback` contains the tier.
  bool falls_back_to(Tier t) const noexcept;
  /// Bytes of an lcore's ready flow-context blocks: ready_blocks * block_size, rounded
  /// up to whole 4 MiB segments (the arena's slabs); 0 for growing flows.
  std::uint64_t ready_bytes() const noexcept;
  /// An lcore's share of max_flows when `lcores` lcores make flows (rounded up).
  static std::uint64_t flow_share(std::uint64_t max_flows, std::uint64_t lcores) noexcept {
    return lcores == 0 ? 0 : (max_flows + lcores - 1) / lcores;
  }
  /// Growing flows: bytes of the first-chunk memory that holds `flows` first chunks of
  /// first_chunk bytes (whole 4 MiB segments of FlowChunks pages), and how many first
  /// chunks `bytes` of it hold.
  std::uint64_t first_chunk_bytes(std::uint64_t flows) const noexcept;
  std::uint64_t first_chunks_in(std::uint64_t bytes) const noexcept;
  /// Growing flows: an lcore's flow memory for a share of `flows`: first-chunk memory +
  /// growth_size. 0 for fixed kinds.
  std::uint64_t flow_memory_bytes(std::uint64_t flows) const noexcept;
  /// Bytes a socket's lcores and heap take: global_heap + for every lcore on it,
  /// thread_size + ready_bytes() (fixed kinds) or its flow memory for the lcore's share
  /// of max_flows over the file's lcores (growing).
  std::uint64_t socket_demand(const SocketConfig& s) const noexcept;
  /// Sizing of `max_flows` live flows (a process-wide count split evenly over
  /// `flow_lcores` lcores, rounded up; 0: the file's lcores). Fixed kinds: every lcore
  /// holds its share of block_size blocks in its ready blocks + thread_size. Growing: the
  /// flow memory is sized at set-up from [flows] max_flows, so a count above it is
  /// refused, and an lcore's memory must fit one region (16 GiB). Empty when it fits,
  /// else what is needed and what is available.
  std::string flow_sizing_error(std::uint32_t max_flows, std::uint32_t flow_lcores = 0) const;
};

/// One problem in a file: where, and what is wrong.
struct Diagnostic {
  std::string file;
  unsigned line = 0;    ///< 0: the file as a whole
  std::string section;  ///< empty when the line is outside any section
  std::string key;      ///< empty for section-level problems
  std::string message;

  /// "file:line: [section] key: message" (parts that are empty are left out).
  std::string to_string() const;
};

/// The outcome of reading a configuration: a Config when there are no errors.
struct ConfigResult {
  std::optional<Config> config;
  std::vector<Diagnostic> errors;
  bool ok() const noexcept { return config.has_value(); }
};

/// Parses INI text named `file` (used in messages) and checks it: syntax (stricter than
/// rte_cfgfile: see docs/dpdk.md), known sections and keys, numbers and units, and the
/// contradictions between sections (the topology the file describes).
ConfigResult parse_config(std::string_view text, std::string_view file);

/// Reads and parses a file. A file that cannot be read is one error on line 0.
ConfigResult load_config_file(const std::string& path);

/// The text of config/default.ini, compiled in at build time.
std::string_view default_config_text() noexcept;
/// The name messages use for it: "embedded:config/default.ini".
inline constexpr std::string_view kDefaultConfigName = "embedded:config/default.ini";

/// Lines describing what a valid config means (`ctxalloc-config check` prints them).
std::vector<std::string> describe(const Config& c);

/// "64 KiB", "2 MiB", "1.5 GiB", "100 B".
std::string format_bytes(std::uint64_t bytes);

}  // namespace ctxalloc::dpdk
