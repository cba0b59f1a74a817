// Strict parsing: every number must be whole and in range, every option known; a bad
// command line is refused with the option's name and what is wrong, before EAL starts.
#include "options.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace ctxfwd {
namespace {

bool parse_u64(std::string_view text, int base, std::uint64_t& out) {
  if (text.empty() || text[0] == '-' || text[0] == '+' || text[0] == ' ') return false;
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, base);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  out = v;
  return true;
}

bool parse_seconds(std::string_view text, double& out) {
  if (text.empty() || text[0] == '-' || text[0] == '+' || text[0] == ' ') return false;
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v) || v < 0) return false;
  // Above ~30 years the nanosecond arithmetic of the run loop would overflow.
  if (v > 1e9) return false;
  out = v;
  return true;
}

std::string bad_value(std::string_view opt, std::string_view value, std::string_view want) {
  return std::string(opt) + ": '" + std::string(value) + "' is not " + std::string(want);
}

// One option and its value; `value` is empty for flags.
struct Arg {
  std::string_view name;
  std::string_view value;
  bool has_value = false;
};

// Options that take a value.
constexpr std::string_view kValued[] = {
    "--config",          "-p",
    "--portmask",        "--portmap",
    "--duration",        "--stats-period",
    "--stats-json",      "--flow-alloc",
    "--max-flows",       "--idle-timeout-ms",
    "--close-linger-ms", "--flow-context-bytes",
    "--on-flow-refusal", "--max-packets",
    "--mbufs",           "--mbuf-pool",
    "--ring-size",       "--rx-pcap",
    "--tx-pcap",         "--gen-profile",
};
constexpr std::string_view kFlags[] = {"--no-mac-updating", "--pipeline", "-h", "--help"};

bool is_valued(std::string_view name) {
  for (std::string_view v : kValued)
    if (v == name) return true;
  return false;
}
bool is_flag(std::string_view name) {
  for (std::string_view f : kFlags)
    if (f == name) return true;
  return false;
}

std::string parse_u32_in(std::string_view opt, std::string_view value, std::uint64_t lo,
                         std::uint64_t hi, std::uint32_t& out) {
  std::uint64_t v = 0;
  if (!parse_u64(value, 10, v) || v < lo || v > hi)
    return bad_value(opt, value,
                     "a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  out = static_cast<std::uint32_t>(v);
  return {};
}

std::string apply_valued(const Arg& a, AppOptions& o) {
  const std::string_view n = a.name;
  const std::string_view v = a.value;
  if (n == "--config") {
    if (v.empty()) return "--config: empty file name";
    o.config_path = std::string(v);
    if (::access(o.config_path.c_str(), R_OK) != 0)
      return "--config: cannot read '" + o.config_path + "'";
    return {};
  }
  if (n == "-p" || n == "--portmask") {
    std::uint64_t mask = 0;
    if (!parse_u64(v, 16, mask) || mask == 0) return bad_value(n, v, "a non-zero hex port mask");
    o.port_mask = mask;
    return {};
  }
  if (n == "--portmap") return parse_port_map(v, o.port_map);
  if (n == "--duration") {
    if (!parse_seconds(v, o.duration_s)) return bad_value(n, v, "a number of seconds >= 0");
    return {};
  }
  if (n == "--stats-period") {
    if (!parse_seconds(v, o.stats_period_s)) return bad_value(n, v, "a number of seconds >= 0");
    return {};
  }
  if (n == "--stats-json") {
    if (v.empty()) return "--stats-json: empty file name";
    o.stats_json = std::string(v);
    return {};
  }
  if (n == "--flow-alloc") {
    const auto kind = flow_alloc_from_string(v);
    if (!kind) return bad_value(n, v, "one of ctxalloc, rte_malloc, malloc");
    o.flow_alloc = *kind;
    return {};
  }
  std::uint32_t u = 0;
  if (n == "--max-flows") {
    if (auto e = parse_u32_in(n, v, 1, kMaxFlowsLimit, u); !e.empty()) return e;
    o.max_flows = u;
    return {};
  }
  if (n == "--idle-timeout-ms") {
    // 0 turns expiry off; the upper bound keeps the cycle arithmetic far from overflow.
    if (auto e = parse_u32_in(n, v, 0, 86400000, u); !e.empty()) return e;
    o.idle_timeout_ms = u;
    return {};
  }
  if (n == "--close-linger-ms") {
    if (auto e = parse_u32_in(n, v, 0, 600000, u); !e.empty()) return e;
    o.close_linger_ms = u;
    return {};
  }
  if (n == "--flow-context-bytes") {
    if (auto e = parse_u32_in(n, v, 1, 1u << 30, u); !e.empty()) return e;
    o.flow_context_bytes = u;
    return {};
  }
  if (n == "--on-flow-refusal") {
    if (v == "end") {
      o.keep_refused_flows = false;
    } else if (v == "keep") {
      o.keep_refused_flows = true;
    } else {
      return bad_value(n, v, "end or keep");
    }
    return {};
  }
  if (n == "--max-packets") {
    if (!parse_u64(v, 10, o.max_packets)) return bad_value(n, v, "a whole number");
    return {};
  }
  if (n == "--mbufs") return parse_u32_in(n, v, 1024, 1u << 24, o.mbufs);
  if (n == "--mbuf-pool") {
    if (v != "ring_mp_mc" && v != "ctxalloc") return bad_value(n, v, "ring_mp_mc or ctxalloc");
    o.mbuf_pool = std::string(v);
    return {};
  }
  if (n == "--ring-size") {
    if (auto e = parse_u32_in(n, v, 64, 1u << 20, u); !e.empty()) return e;
    if ((u & (u - 1)) != 0) return bad_value(n, v, "a power of two");
    o.ring_size = u;
    return {};
  }
  if (n == "--rx-pcap" || n == "--tx-pcap") {
    if (v.empty()) return std::string(n) + ": empty file name";
    (n == "--rx-pcap" ? o.rx_pcap : o.tx_pcap) = std::string(v);
    return {};
  }
  if (n == "--gen-profile") {
    if (v.empty()) return "--gen-profile: empty profile name";
    o.gen_profile = std::string(v);
    return {};
  }
  return "internal: unhandled option " + std::string(n);
}

void apply_flag(std::string_view name, AppOptions& o) {
  if (name == "--no-mac-updating") o.mac_updating = false;
  if (name == "--pipeline") o.pipeline = true;
  if (name == "-h" || name == "--help") o.help = true;
}

}  // namespace

std::string_view to_string(FlowAllocKind kind) noexcept {
  switch (kind) {
    case FlowAllocKind::ctxalloc:
      return "ctxalloc";
    case FlowAllocKind::rte_malloc:
      return "rte_malloc";
    case FlowAllocKind::malloc:
      return "malloc";
  }
  return "?";
}

std::optional<FlowAllocKind> flow_alloc_from_string(std::string_view name) noexcept {
  for (FlowAllocKind k :
       {FlowAllocKind::ctxalloc, FlowAllocKind::rte_malloc, FlowAllocKind::malloc})
    if (to_string(k) == name) return k;
  return std::nullopt;
}

std::string parse_port_map(std::string_view text, std::vector<PortPair>& out) {
  out.clear();
  std::string compact;
  for (char c : text)
    if (c != ' ') compact.push_back(c);
  std::string_view s = compact;
  const std::string err = "--portmap: '" + std::string(text) + "' is not a list like (0,1),(2,3)";
  while (!s.empty()) {
    if (s.front() != '(') return err;
    const auto close = s.find(')');
    if (close == std::string_view::npos) return err;
    const std::string_view inner = s.substr(1, close - 1);
    const auto comma = inner.find(',');
    if (comma == std::string_view::npos) return err;
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    if (!parse_u64(inner.substr(0, comma), 10, a) || !parse_u64(inner.substr(comma + 1), 10, b))
      return err;
    if (a > 0xFFFE || b > 0xFFFE) return "--portmap: port id out of range";
    for (const PortPair& p : out) {
      if (p.a == a || p.b == a || p.a == b || p.b == b)
        return "--portmap: port " + std::to_string(p.a == a || p.b == a ? a : b) +
               " appears in two pairs (each port forwards to exactly one port)";
    }
    out.push_back({static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)});
    s.remove_prefix(close + 1);
    if (!s.empty()) {
      if (s.front() != ',') return err;
      s.remove_prefix(1);
      if (s.empty()) return err;
    }
  }
  if (out.empty()) return err;
  return {};
}

std::string parse_app_args(std::span<const std::string> args, AppOptions& out) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view tok = args[i];
    Arg a;
    if (const auto eq = tok.find('='); tok.starts_with("--") && eq != std::string_view::npos) {
      a.name = tok.substr(0, eq);
      a.value = tok.substr(eq + 1);
      a.has_value = true;
    } else {
      a.name = tok;
    }
    if (is_flag(a.name)) {
      if (a.has_value) return std::string(a.name) + ": takes no value";
      apply_flag(a.name, out);
      continue;
    }
    if (!is_valued(a.name)) {
      if (!tok.starts_with("-")) return "unexpected argument '" + std::string(tok) + "'";
      return "unknown option '" + std::string(a.name) + "' (see --help)";
    }
    if (!a.has_value) {
      if (i + 1 >= args.size()) return std::string(a.name) + ": missing value";
      a.value = args[++i];
    }
    if (auto e = apply_valued(a, out); !e.empty()) return e;
  }
  return {};
}

SplitArgs split_args(int argc, const char* const* argv) {
  SplitArgs s;
  int i = 0;
  for (; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") break;
    s.eal.emplace_back(argv[i]);
  }
  for (++i; i < argc; ++i)
    s.app.emplace_back(argv[i]);
  return s;
}

std::string usage_text() {
  return "usage: ctxfwd [EAL options] -- [options]\n"
         "l2fwd-style forwarding with a flow table and per-flow memory contexts.\n"
         "Without EAL devices (--vdev / -a) and without DPDK-bound NICs it runs an embedded\n"
         "default: ctxgen traffic from a pcap, replayed, forwarded to net_null.\n"
         "  --config FILE            ctxalloc config file (hugepages, flow contexts)\n"
         "  -p, --portmask MASK      hex mask of the ports to use (default: all)\n"
         "  --portmap \"(0,1),(2,3)\"  port pairs that forward to each other; the other\n"
         "                           ports pair in order, a last odd port with itself\n"
         "  --duration SECONDS       stop after this long (default 0: at SIGINT/SIGTERM)\n"
         "  --stats-period SECONDS   periodic stats line (default 1; 0: none)\n"
         "  --no-mac-updating        forward frames unchanged\n"
         "  --stats-json FILE        final summary as JSON\n"
         "  --flow-alloc KIND        ctxalloc | rte_malloc | malloc (default ctxalloc)\n"
         "  --pipeline               rx lcores hand packets to tx lcores over rte_rings\n"
         "  --max-flows N            concurrent flows of the process, split evenly over\n"
         "                           the flow lcores (default: the config's max_flows)\n"
         "  --idle-timeout-ms MS     a flow idle this long ends (default 10000; 0: never)\n"
         "  --close-linger-ms MS     a TCP flow ended by FIN/RST stays this long, closed,\n"
         "                           its late segments counted (default 2000; 0: none)\n"
         "  --flow-context-bytes N   memory budget of one flow (default: the config's\n"
         "                           flow bound; ctxalloc takes only that value)\n"
         "  --on-flow-refusal WHAT   a flow's memory refused for a packet: end (default:\n"
         "                           the flow ends, the packet drops) or keep (the flow\n"
         "                           stays as it was, the packet is forwarded; counted)\n"
         "  --max-packets N          stop after N packets received (all ports)\n"
         "  --mbufs N                mbufs per socket's pool (default: computed)\n"
         "  --mbuf-pool DRIVER       mempool driver of the mbufs: ring_mp_mc (default) or\n"
         "                           ctxalloc (the plugin's driver)\n"
         "  --ring-size N            --pipeline ring size, power of two (default 1024)\n"
         "  --rx-pcap FILE           embedded default: the input (default: generated)\n"
         "  --tx-pcap FILE           embedded default: write output there, input once\n"
         "  --gen-profile NAME       embedded default: ctxgen profile (default: default)\n"
         "  -h, --help               this text\n"
         "Exit status: 0 done, 1 run-time failure, 2 bad command line.\n";
}

}  // namespace ctxfwd
