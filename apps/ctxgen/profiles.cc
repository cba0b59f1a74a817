#include "profiles.h"

#include <array>
#include <cmath>

namespace ctxgen {
namespace {

// Fields in declaration order: name, description, flows, packets, malformed, passthrough,
// concurrency, tcp, fin, rst, reuse, ipv6, ipv6 ext, vlan, qinq, alpha, small, large, gap.
const std::array<Profile, 4> kProfiles = {{
    {"default", "small and varied, for the README run: every header path and malformed kind", 64,
     2000, 0.05, 0.01, 16, 0.6, 0.5, 0.2, 0.2, 0.3, 0.3, 0.15, 0.05, 1.5, 0.5, 0.25, 50},
    {"churn", "many short TCP flows opening and closing, for benchmarks", 20000, 200000, 0.01,
     0.005, 64, 0.85, 0.7, 0.25, 0.3, 0.25, 0.1, 0.1, 0.02, 3.0, 0.6, 0.15, 10},
    {"flood", "many distinct flows that never end, to test the flow-table bound", 100000, 250000,
     0.0, 0.0, 4096, 0.5, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 3.0, 0.9, 0.05, 2},
    {"mixed", "everything in proportion, for the end-to-end tests", 500, 10000, 0.05, 0.02, 32, 0.6,
     0.5, 0.2, 0.25, 0.35, 0.3, 0.15, 0.05, 1.5, 0.5, 0.25, 20},
}};

bool is_share(double x) {
  return std::isfinite(x) && x >= 0 && x <= 1;
}

}  // namespace

std::span<const Profile> profiles() {
  return kProfiles;
}

const Profile* find_profile(std::string_view name) {
  for (const Profile& p : kProfiles) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string validate(const Profile& p) {
  const struct {
    const char* name;
    double value;
  } shares[] = {{"malformed share", p.malformed_share},
                {"passthrough share", p.passthrough_share},
                {"tcp share", p.tcp_share},
                {"tcp fin share", p.tcp_fin_share},
                {"tcp rst share", p.tcp_rst_share},
                {"reuse share", p.reuse_share},
                {"ipv6 share", p.ipv6_share},
                {"ipv6 ext share", p.ipv6_ext_share},
                {"vlan share", p.vlan_share},
                {"qinq share", p.qinq_share},
                {"small share", p.small_share},
                {"large share", p.large_share}};
  for (const auto& s : shares) {
    if (!is_share(s.value)) return std::string(s.name) + " must be within [0, 1]";
  }
  if (p.malformed_share + p.passthrough_share > 1) {
    return "malformed share + passthrough share must not exceed 1";
  }
  if (p.tcp_fin_share + p.tcp_rst_share > 1) return "tcp fin share + tcp rst share exceed 1";
  if (p.vlan_share + p.qinq_share > 1) return "vlan share + qinq share exceed 1";
  if (p.small_share + p.large_share > 1) return "small share + large share exceed 1";
  if (!std::isfinite(p.length_alpha) || p.length_alpha <= 0) return "length alpha must be > 0";
  if (p.packets == 0) return "packets must be > 0";
  if (p.packets > (std::uint64_t{1} << 32)) return "packets must be at most 2^32";
  // Per-flow state is ~150 bytes while generating: 2^24 flows need ~2.5 GB.
  if (p.flows > (std::uint64_t{1} << 24)) return "flows must be at most 2^24";
  if (p.concurrency == 0) return "concurrency must be > 0";
  return {};
}

}  // namespace ctxgen
