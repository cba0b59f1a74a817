// The broken and the not-flow-tracked packets the generator mixes into its traffic.
//
// Each malformed kind breaks exactly one thing in an otherwise well-formed frame, so that
// a parser checking layer by layer (docs/trafficgen.md) finds that thing and nothing
// earlier. The kinds are the generator's own bookkeeping: it names what it did, it does
// not ask a parser. Their names match ctxfwd's Malformed reasons one to one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "rng.h"

namespace ctxgen {

enum class MalformedKind : std::uint8_t {
  eth_too_short,            ///< 1..13 bytes
  vlan_truncated,           ///< a VLAN TPID with the tag cut off (first or second tag)
  vlan_too_many_tags,       ///< three VLAN tags
  unknown_ethertype,        ///< an ethertype nobody handles, or an 802.3 length
  ip_bad_version,           ///< IPv4/IPv6 ethertype, wrong version nibble
  ipv4_truncated,           ///< cut inside the 20-byte IPv4 header
  ipv4_bad_ihl,             ///< IHL 0..4
  ip_length_exceeds_frame,  ///< total / payload length beyond the frame (raised, or frame cut)
  ip_length_below_header,   ///< IPv4 total length 0..19
  ipv4_fragment,            ///< non-first IPv4 fragment
  ipv6_truncated,           ///< cut inside the 40-byte IPv6 header
  ipv6_ext_truncated,       ///< an extension header longer than the payload
  ipv6_ext_too_many,        ///< 9..12 extension headers
  ipv6_fragment,            ///< non-first IPv6 fragment (fragment extension header)
  tcp_truncated,            ///< the IP length leaves 0..19 bytes of TCP header
  tcp_bad_data_offset,      ///< data offset 0..4, or past the datagram
  udp_truncated,            ///< the IP length leaves 0..7 bytes of UDP header
  udp_length_below_header,  ///< UDP length 0..7
  udp_length_exceeds_ip,    ///< UDP length beyond the datagram
};
inline constexpr std::size_t kMalformedKinds = 19;

/// "eth_too_short", ...
std::string_view name(MalformedKind kind);

/// Writes one malformed frame of `kind` into `out`.
void make_malformed(MalformedKind kind, Rng& rng, std::vector<std::byte>& out);

/// Well-formed frames that are not TCP/UDP flows: ctxfwd forwards them without a flow.
enum class PassKind : std::uint8_t { arp, icmp, icmpv6 };
inline constexpr std::size_t kPassKinds = 3;

/// "arp", "icmp", "icmpv6".
std::string_view name(PassKind kind);

/// Writes one passthrough frame of `kind` into `out`.
void make_passthrough(PassKind kind, Rng& rng, std::vector<std::byte>& out);

}  // namespace ctxgen
