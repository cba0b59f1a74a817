// Builds well-formed Ethernet frames byte by byte: MACs, up to two VLAN tags, IPv4 or IPv6
// (optionally with Destination Options extension headers), then TCP, UDP, ICMP or ICMPv6,
// a random payload and zero padding up to the 60-byte Ethernet minimum (64 on the wire
// with the FCS, which pcap files do not hold). IPv4 header and L4 checksums are correct.
// It also records where each header starts, so malform.cc can break one field precisely.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "protocol.h"
#include "rng.h"

namespace ctxgen {

inline constexpr std::size_t kMinFrame = 60;  ///< without FCS
// The wire constants, one definition in apps/common/protocol.h.
using ctxproto::kEthArp;
using ctxproto::kEthIpv4;
using ctxproto::kEthIpv6;
using ctxproto::kIpProtoIcmp;
using ctxproto::kIpProtoIcmpv6;
using ctxproto::kIpProtoTcp;
using ctxproto::kIpProtoUdp;
using ctxproto::kIpv6DestOpts;
using ctxproto::kIpv6Fragment;
using ctxproto::kTcpAck;
using ctxproto::kTcpFin;
using ctxproto::kTcpPsh;
using ctxproto::kTcpRst;
using ctxproto::kTcpSyn;
using ctxproto::kTpid8021ad;
using ctxproto::kTpid8021Q;

using Mac = std::array<std::uint8_t, 6>;
using IpAddr = std::array<std::uint8_t, 16>;  ///< IPv4 in the first 4 bytes

/// An IP frame to build.
struct FrameSpec {
  Mac dst_mac{};
  Mac src_mac{};
  std::uint8_t vlan_count = 0;  ///< 0, 1 or 2 (802.1ad outer tag, then 802.1Q)
  std::array<std::uint16_t, 2> vlan_tci{};
  std::uint8_t ip_version = 4;
  IpAddr src{};
  IpAddr dst{};
  std::uint8_t proto = kIpProtoUdp;  ///< TCP, UDP, ICMP (v4) or ICMPv6 (v6)
  std::uint16_t ip_id = 0;
  std::uint8_t ipv6_ext_headers = 0;  ///< 8-byte Destination Options headers before L4
  std::uint16_t src_port = 0;         ///< TCP/UDP; ICMP echo: identifier
  std::uint16_t dst_port = 0;         ///< ICMP echo: sequence number
  std::uint8_t tcp_flags = 0;
  std::uint32_t tcp_seq = 0;
  std::uint32_t tcp_ack = 0;
  std::size_t payload = 0;  ///< L4 payload bytes, random content
};

/// Where the headers of a built frame are.
struct FrameLayout {
  std::size_t l3 = 0;       ///< IP header
  std::size_t ext = 0;      ///< first IPv6 extension header (== l4 when none)
  std::size_t l4 = 0;       ///< TCP / UDP / ICMP header
  std::size_t payload = 0;  ///< L4 payload
  std::size_t ip_end = 0;   ///< end of the IP datagram; the frame may be longer (padding)
};

/// Builds `spec` into `out` (replacing its contents); random payload bytes come from rng.
FrameLayout build_ip_frame(const FrameSpec& spec, Rng& rng, std::vector<std::byte>& out);

/// An ARP request (or reply) frame, padded to 60 bytes.
void build_arp_frame(const Mac& src_mac, const IpAddr& src_ip, const IpAddr& target_ip, bool reply,
                     std::vector<std::byte>& out);

/// L2 header length for `vlan_count` tags.
inline std::size_t l2_length(std::uint8_t vlan_count) {
  return 14 + 4u * vlan_count;
}

/// Header lengths of the L4 protocols the builder writes.
std::size_t l4_header_length(std::uint8_t proto);

/// Big-endian stores and loads on a frame buffer.
void put16(std::vector<std::byte>& f, std::size_t off, std::uint16_t v);
void put32(std::vector<std::byte>& f, std::size_t off, std::uint32_t v);
std::uint16_t get16(const std::vector<std::byte>& f, std::size_t off);

/// Recomputes the IPv4 header checksum at `l3` (after a header field was changed).
void refresh_ipv4_checksum(std::vector<std::byte>& f, std::size_t l3);

}  // namespace ctxgen
