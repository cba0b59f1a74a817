// Named traffic profiles: every knob of the generator with its default for one use.
// Command-line options override single fields of the chosen profile.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ctxgen {

/// Everything that shapes the traffic, apart from the seed.
struct Profile {
  std::string name;
  std::string description;
  std::uint64_t flows = 0;        ///< flow instances (a reused 5-tuple counts again)
  std::uint64_t packets = 0;      ///< records in the pcap, all classes together
  double malformed_share = 0;     ///< of `packets`, rounded to the nearest packet
  double passthrough_share = 0;   ///< ARP / ICMP / ICMPv6, of `packets`
  std::uint32_t concurrency = 0;  ///< flows interleaved at once
  double tcp_share = 0;           ///< of flows; the rest is UDP
  double tcp_fin_share = 0;       ///< of TCP flows: end with FIN
  double tcp_rst_share = 0;       ///< of TCP flows: end with RST; the rest go idle
  double reuse_share = 0;         ///< of TCP flows: take the 5-tuple of an ended TCP flow
  double ipv6_share = 0;          ///< of flows
  double ipv6_ext_share = 0;      ///< of IPv6 flows: one Destination Options header
  double vlan_share = 0;          ///< of flows: one 802.1Q tag
  double qinq_share = 0;          ///< of flows: two tags (802.1ad + 802.1Q)
  double length_alpha = 0;        ///< Pareto shape of the flow-length weights (lower: heavier tail)
  double small_share = 0;         ///< data frames of 64..127 B on the wire
  double large_share = 0;         ///< data frames of 1024..1518 B; the rest 128..1023 B
  std::uint32_t mean_gap_us = 0;  ///< mean time between two records
};

/// The built-in profiles: default, churn, flood, mixed.
std::span<const Profile> profiles();

/// The profile called `name`, or nullptr.
const Profile* find_profile(std::string_view name);

/// An empty string when `p` is usable, else what is wrong with it.
std::string validate(const Profile& p);

}  // namespace ctxgen
