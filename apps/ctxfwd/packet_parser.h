// ctxfwd's header parser: Ethernet, up to two VLAN tags, IPv4 / IPv6 (extension headers
// skipped), TCP / UDP. It reads nothing outside [frame, frame + len), allocates nothing and
// includes no DPDK header, so it is unit-tested and fuzzed on its own.
//
// Every frame gets one of three verdicts:
//   flow         TCP or UDP over IPv4/IPv6 with consistent lengths: a flow key, a direction
//                bit, the TCP flags and the L4 payload span;
//   passthrough  well-formed but not flow-tracked: a known non-IP ethertype (ARP, RARP, LLDP,
//                slow protocols, PTP) or IP with another L4 protocol (ICMP, ICMPv6, ESP,
//                "no next header", ...). ctxfwd forwards these as they are, like l2fwd;
//   malformed    a reason from `Malformed`; ctxfwd drops and counts these.
// The rules, their order and why are in docs/trafficgen.md ("Packet parser").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

#include "protocol.h"

namespace ctxfwd {

/// What the parser made of a frame.
enum class Status : std::uint8_t { flow, passthrough, malformed };

/// Why a frame is malformed (or, for the two fragment reasons, why it cannot be keyed).
/// Checked in this order per layer; the first failing check names the reason.
enum class Malformed : std::uint8_t {
  none = 0,
  eth_too_short,            ///< fewer than 14 bytes
  vlan_truncated,           ///< a VLAN TPID not followed by a whole 4-byte tag
  vlan_too_many_tags,       ///< a third VLAN tag (one or two are parsed)
  unknown_ethertype,        ///< not IPv4, IPv6, VLAN or a known non-IP type; or an 802.3 length
  ip_bad_version,           ///< the version nibble does not match the ethertype
  ipv4_truncated,           ///< fewer than 20 bytes after L2
  ipv4_bad_ihl,             ///< IHL below 5
  ip_length_exceeds_frame,  ///< IPv4 total length / IPv6 40 + payload length > bytes present
  ip_length_below_header,   ///< IPv4 total length < IHL*4
  ipv4_fragment,            ///< a non-first IPv4 fragment: no L4 header, so no flow (no reassembly)
  ipv6_truncated,           ///< fewer than 40 bytes after L2
  ipv6_ext_truncated,       ///< an extension header runs past the IPv6 payload length
  ipv6_ext_too_many,        ///< more than kMaxIpv6ExtHeaders extension headers
  ipv6_fragment,            ///< a non-first IPv6 fragment
  tcp_truncated,            ///< the IP datagram holds fewer than 20 TCP bytes
  tcp_bad_data_offset,      ///< TCP data offset < 5 or beyond the datagram
  udp_truncated,            ///< the IP datagram holds fewer than 8 UDP bytes
  udp_length_below_header,  ///< UDP length < 8
  udp_length_exceeds_ip,    ///< UDP length > the datagram's L4 bytes (not fragments)
};
inline constexpr std::size_t kMalformedCount = 20;  ///< values of Malformed, `none` included

/// Why a well-formed frame is forwarded without a flow.
enum class Passthrough : std::uint8_t { none = 0, non_ip, other_l4 };

/// Extension headers walked before the parser gives up (a bound on work per packet).
inline constexpr unsigned kMaxIpv6ExtHeaders = 8;

// The wire constants the parser and the flow table use, defined once in
// apps/common/protocol.h.
using ctxproto::kIpProtoTcp;
using ctxproto::kIpProtoUdp;
using ctxproto::kTcpAck;
using ctxproto::kTcpFin;
using ctxproto::kTcpPsh;
using ctxproto::kTcpRst;
using ctxproto::kTcpSyn;

/// A bidirectional 5-tuple: the endpoint (address, port) that compares lower is `lo`, so
/// both directions of a conversation give the same key. Addresses are in network byte
/// order (an IPv4 address fills the first 4 bytes, the rest is zero), ports in host order.
/// The VLAN tags are not part of the key. No padding, so it can be hashed and compared as
/// raw bytes (rte_hash does). 8-byte aligned, so that a hash may read it in words
/// (rte_hash_crc loads uint64_t; from a 2-byte-aligned key that is a misaligned load).
struct alignas(8) FlowKey {
  std::array<std::uint8_t, 16> addr_lo{};
  std::array<std::uint8_t, 16> addr_hi{};
  std::uint16_t port_lo = 0;
  std::uint16_t port_hi = 0;
  std::uint8_t ip_version = 0;             ///< 4 or 6
  std::uint8_t proto = 0;                  ///< kIpProtoTcp or kIpProtoUdp
  std::array<std::uint8_t, 2> reserved{};  ///< always zero
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};
static_assert(sizeof(FlowKey) == 40);
static_assert(std::has_unique_object_representations_v<FlowKey>);

/// The parser's answer. Offsets are from the start of the frame.
struct ParseResult {
  Status status = Status::malformed;
  Malformed reason = Malformed::none;    ///< set when status == malformed
  Passthrough pass = Passthrough::none;  ///< set when status == passthrough
  FlowKey key{};                         ///< set when status == flow
  bool reversed = false;  ///< the packet goes from the key's hi endpoint to its lo endpoint
  std::uint8_t tcp_flags = 0;
  std::uint8_t vlan_tags = 0;   ///< 0, 1 or 2
  std::uint8_t l4_proto = 0;    ///< IP protocol after extension headers (IP frames)
  std::uint16_t ethertype = 0;  ///< after the VLAN tags
  std::uint16_t l3_offset = 0;
  std::uint32_t l4_offset = 0;
  std::uint32_t payload_offset = 0;  ///< L4 payload span (flow packets); excludes L2 padding
  std::uint32_t payload_length = 0;

  /// True for a TCP packet with FIN or RST: under ctxfwd's rule it ends its flow.
  bool ends_flow() const {
    return status == Status::flow && key.proto == kIpProtoTcp &&
           (tcp_flags & (kTcpFin | kTcpRst)) != 0;
  }
  /// The L4 payload inside `frame` (the frame that was parsed); empty unless a flow packet.
  std::span<const std::byte> payload(const std::byte* frame) const {
    return {frame + payload_offset, payload_length};
  }
};

/// Parses one Ethernet frame of `len` bytes. Never reads outside the frame, never
/// allocates, never fails otherwise: bad input gives Status::malformed and a reason.
ParseResult parse(const std::byte* frame, std::size_t len) noexcept;

/// The name of a reason ("ipv4_bad_ihl"); "none" for Malformed::none.
std::string_view to_string(Malformed reason) noexcept;
/// The reason with that name, if any.
std::optional<Malformed> malformed_from_string(std::string_view name) noexcept;
/// "flow", "passthrough" or "malformed".
std::string_view to_string(Status status) noexcept;
/// "none", "non_ip" or "other_l4".
std::string_view to_string(Passthrough pass) noexcept;

}  // namespace ctxfwd
