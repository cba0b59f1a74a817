// ctxfwd's command line: EAL arguments, `--`, then the application's own. This part
// includes no DPDK header, so the parser is unit-tested without an EAL.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ctxfwd {

/// Where a flow's memory comes from (--flow-alloc).
enum class FlowAllocKind : std::uint8_t { ctxalloc, rte_malloc, malloc };

/// "ctxalloc", "rte_malloc" or "malloc".
std::string_view to_string(FlowAllocKind kind) noexcept;
/// The kind with that name, if any.
std::optional<FlowAllocKind> flow_alloc_from_string(std::string_view name) noexcept;

/// Two ports that forward to each other (a port may be paired with itself).
struct PortPair {
  std::uint16_t a = 0;
  std::uint16_t b = 0;
  friend bool operator==(const PortPair&, const PortPair&) = default;
};

/// Built-in values of the settings a config file may also set (see resolve()).
inline constexpr std::uint32_t kDefaultMaxFlows = 16384;         ///< per process
inline constexpr std::uint32_t kDefaultIdleTimeoutMs = 10000;    ///< 10 s
inline constexpr std::uint32_t kDefaultFlowContextBytes = 4096;  ///< per flow
inline constexpr std::uint32_t kMaxFlowsLimit = 1u << 24;        ///< what --max-flows accepts
inline constexpr std::uint32_t kDefaultRingSize = 1024;          ///< --pipeline ring, per pair
inline constexpr std::uint32_t kDefaultCloseLingerMs = 2000;     ///< 2 s
inline constexpr std::uint32_t kBurst = 32;                      ///< rx/tx burst

/// One flow lcore's share of a process-wide flow count: total split evenly over `lcores`,
/// rounded up (every lcore admits at least one flow; 0 lcores count as one).
constexpr std::uint32_t per_lcore_share(std::uint32_t total, std::uint32_t lcores) {
  const std::uint32_t n = lcores == 0 ? 1 : lcores;
  return static_cast<std::uint32_t>(std::max<std::uint64_t>(1, (std::uint64_t{total} + n - 1) / n));
}

/// The application's options (after `--`). Settings a config file will also carry are
/// optional here: a value given on the command line wins over the config file, which
/// wins over the built-in default (resolved_* below).
struct AppOptions {
  std::string config_path;                 ///< --config FILE (empty: none)
  std::optional<std::uint64_t> port_mask;  ///< -p / --portmask (empty: every port)
  std::vector<PortPair> port_map;          ///< --portmap "(0,1),(2,3)"; others pair in order
  double duration_s = 0;                   ///< --duration; 0: until SIGINT/SIGTERM
  double stats_period_s = 1;               ///< --stats-period; 0: no periodic line
  bool mac_updating = true;                ///< --no-mac-updating clears it
  std::string stats_json;                  ///< --stats-json FILE
  FlowAllocKind flow_alloc = FlowAllocKind::ctxalloc;  ///< --flow-alloc
  bool pipeline = false;                               ///< --pipeline
  std::optional<std::uint32_t> max_flows;              ///< --max-flows, per process
  std::optional<std::uint32_t> idle_timeout_ms;        ///< --idle-timeout-ms
  /// --close-linger-ms: a TCP flow ended by FIN/RST stays this long, closed, to count the
  /// segments still in flight as its late segments; 0: released at once.
  std::uint32_t close_linger_ms = kDefaultCloseLingerMs;
  std::optional<std::uint32_t> flow_context_bytes;  ///< --flow-context-bytes
  /// --on-flow-refusal keep: a packet whose work the flow's memory refuses is forwarded
  /// and the flow kept as it was (counted); end (default): the flow ends, the packet drops.
  bool keep_refused_flows = false;
  std::uint64_t max_packets = 0;  ///< --max-packets: stop after this many rx (0: no limit)
  std::uint32_t mbufs = 0;        ///< --mbufs: mbuf pool size per socket (0: computed)
  /// --mbuf-pool: the mempool driver of the mbuf pools ("ring_mp_mc" or "ctxalloc").
  std::string mbuf_pool = "ring_mp_mc";
  std::uint32_t ring_size = kDefaultRingSize;  ///< --ring-size (pipeline), a power of two
  // The embedded default's devices (used when no device is given to EAL):
  std::string rx_pcap;                  ///< --rx-pcap FILE; empty: ctxgen generates one
  std::string tx_pcap;                  ///< --tx-pcap FILE; empty: net_null (input replayed)
  std::string gen_profile = "default";  ///< --gen-profile: ctxgen profile of that input
  bool help = false;                    ///< -h / --help

  /// Live flows at most over the whole process (every flow lcore together), for every
  /// --flow-alloc: the meaning of the plugin's [flows] max_flows.
  std::uint32_t resolved_max_flows() const { return max_flows.value_or(kDefaultMaxFlows); }
  std::uint32_t resolved_idle_timeout_ms() const {
    return idle_timeout_ms.value_or(kDefaultIdleTimeoutMs);
  }
  std::uint32_t resolved_flow_context_bytes() const {
    return flow_context_bytes.value_or(kDefaultFlowContextBytes);
  }
};

/// Parses the application's arguments (those after `--`). Returns an empty string on
/// success, else what is wrong ("--duration: 'x' is not a number of seconds").
std::string parse_app_args(std::span<const std::string> args, AppOptions& out);

/// Parses "(0,1),(2,3)" (spaces allowed). Empty string on success.
std::string parse_port_map(std::string_view text, std::vector<PortPair>& out);

/// The usage text.
std::string usage_text();

/// argv split at the first "--": EAL arguments (argv[0] included) and application ones.
struct SplitArgs {
  std::vector<std::string> eal;
  std::vector<std::string> app;
};
SplitArgs split_args(int argc, const char* const* argv);

}  // namespace ctxfwd
