// Each layer checks that the bytes it is about to read are there before it reads them;
// lengths are compared as std::size_t differences (end - off), never as sums that could
// wrap. Cost: one pass over at most the headers, no allocation, no loop except the
// bounded IPv6 extension-header walk.
#include "packet_parser.h"

#include <algorithm>
#include <cstring>

namespace ctxfwd {
namespace {

using ctxproto::kEthIpv4;
using ctxproto::kEthIpv6;
constexpr std::size_t kEthHeader = 14;
constexpr std::size_t kVlanTag = 4;
constexpr unsigned kMaxVlanTags = 2;
constexpr std::size_t kIpv4Header = 20;
constexpr std::size_t kIpv6Header = 40;
constexpr std::size_t kTcpHeader = 20;
constexpr std::size_t kUdpHeader = 8;

// IPv6 extension headers the parser skips over.
using ctxproto::kIpv6Auth;
using ctxproto::kIpv6DestOpts;
using ctxproto::kIpv6Fragment;
using ctxproto::kIpv6HopByHop;
using ctxproto::kIpv6Routing;

std::uint8_t u8(const std::byte* p) {
  return static_cast<std::uint8_t>(*p);
}
std::uint16_t be16(const std::byte* p) {
  return static_cast<std::uint16_t>((u8(p) << 8) | u8(p + 1));
}

bool is_vlan_tpid(std::uint16_t t) {
  return t == ctxproto::kTpid8021Q || t == ctxproto::kTpid8021ad || t == 0x9100;
}

// Non-IP types ctxfwd forwards unchanged: ARP, RARP, slow protocols (LACP), LLDP, PTP.
bool is_known_non_ip(std::uint16_t t) {
  return t == ctxproto::kEthArp || t == 0x8035 || t == 0x8809 || t == 0x88CC || t == 0x88F7;
}

// Where the L3 header starts and what it is, after the VLAN tags.
struct L2 {
  std::size_t l3 = 0;
  std::uint16_t ethertype = 0;
};

// The IP layer's answer: the addresses, where the L4 header starts and where the
// datagram ends (L2 padding excluded).
struct L3 {
  const std::byte* src = nullptr;
  const std::byte* dst = nullptr;
  std::size_t addr_len = 0;
  std::size_t l4 = 0;
  std::size_t end = 0;
  std::uint8_t proto = 0;
  bool first_fragment = false;  // a fragment with offset 0 and "more fragments" set
};

ParseResult& fail(ParseResult& r, Malformed why) {
  r.status = Status::malformed;
  r.reason = why;
  return r;
}

bool parse_l2(const std::byte* f, std::size_t len, ParseResult& r, L2& out) {
  if (len < kEthHeader) return fail(r, Malformed::eth_too_short), false;
  std::size_t off = 12;  // the first ethertype / TPID
  std::uint16_t type = be16(f + off);
  while (is_vlan_tpid(type)) {
    if (r.vlan_tags == kMaxVlanTags) return fail(r, Malformed::vlan_too_many_tags), false;
    // TPID (2) + TCI (2) + the next type (2) must all be present.
    if (len - off < 2 + kVlanTag) return fail(r, Malformed::vlan_truncated), false;
    ++r.vlan_tags;
    off += kVlanTag;
    type = be16(f + off);
  }
  r.ethertype = type;
  out.l3 = off + 2;
  out.ethertype = type;
  return true;
}

bool parse_ipv4(const std::byte* f, std::size_t len, std::size_t l3, ParseResult& r, L3& out) {
  if (len - l3 < kIpv4Header) return fail(r, Malformed::ipv4_truncated), false;
  const std::byte* ip = f + l3;
  if ((u8(ip) >> 4) != 4) return fail(r, Malformed::ip_bad_version), false;
  const std::size_t ihl = (u8(ip) & 0x0F) * 4u;
  if (ihl < kIpv4Header) return fail(r, Malformed::ipv4_bad_ihl), false;
  const std::size_t total = be16(ip + 2);
  if (total > len - l3) return fail(r, Malformed::ip_length_exceeds_frame), false;
  if (total < ihl) return fail(r, Malformed::ip_length_below_header), false;
  const std::uint16_t frag = be16(ip + 6);
  if ((frag & 0x1FFF) != 0) return fail(r, Malformed::ipv4_fragment), false;
  out.first_fragment = (frag & 0x2000) != 0;
  out.src = ip + 12;
  out.dst = ip + 16;
  out.addr_len = 4;
  out.l4 = l3 + ihl;
  out.end = l3 + total;
  out.proto = u8(ip + 9);
  return true;
}

// Length in bytes of the extension header at p of type nh (2 bytes at p are present).
std::size_t ext_header_length(std::uint8_t nh, const std::byte* p) {
  if (nh == kIpv6Fragment) return 8;
  if (nh == kIpv6Auth) return (u8(p + 1) + 2u) * 4u;  // RFC 4302: in 4-byte units, minus 2
  return (u8(p + 1) + 1u) * 8u;                       // RFC 8200: in 8-byte units, minus 1
}

bool is_ext_header(std::uint8_t nh) {
  return nh == kIpv6HopByHop || nh == kIpv6Routing || nh == kIpv6Fragment || nh == kIpv6Auth ||
         nh == kIpv6DestOpts;
}

bool parse_ipv6(const std::byte* f, std::size_t len, std::size_t l3, ParseResult& r, L3& out) {
  if (len - l3 < kIpv6Header) return fail(r, Malformed::ipv6_truncated), false;
  const std::byte* ip = f + l3;
  if ((u8(ip) >> 4) != 6) return fail(r, Malformed::ip_bad_version), false;
  const std::size_t payload = be16(ip + 4);
  if (payload > len - l3 - kIpv6Header) {
    return fail(r, Malformed::ip_length_exceeds_frame), false;
  }
  out.end = l3 + kIpv6Header + payload;
  std::size_t off = l3 + kIpv6Header;
  std::uint8_t nh = u8(ip + 6);
  for (unsigned n = 0; is_ext_header(nh); ++n) {
    if (n == kMaxIpv6ExtHeaders) return fail(r, Malformed::ipv6_ext_too_many), false;
    if (out.end - off < 2) return fail(r, Malformed::ipv6_ext_truncated), false;
    const std::size_t hlen = ext_header_length(nh, f + off);
    if (out.end - off < hlen) return fail(r, Malformed::ipv6_ext_truncated), false;
    if (nh == kIpv6Fragment) {
      const std::uint16_t frag = be16(f + off + 2);
      if ((frag >> 3) != 0) return fail(r, Malformed::ipv6_fragment), false;
      out.first_fragment = (frag & 1) != 0;
    }
    nh = u8(f + off);
    off += hlen;
  }
  out.src = ip + 8;
  out.dst = ip + 24;
  out.addr_len = 16;
  out.l4 = off;
  out.proto = nh;
  return true;
}

std::uint32_t load_be32(const std::byte* p) {
  std::uint32_t x;
  std::memcpy(&x, p, 4);
  return __builtin_bswap32(x);
}
std::uint64_t load_be64(const std::byte* p) {
  std::uint64_t x;
  std::memcpy(&x, p, 8);
  return __builtin_bswap64(x);
}

// True when (src, sport) sorts above (dst, dport). Computed without branches: the
// direction of a packet is as good as random, so a branch on it would mispredict for
// about every other packet.
bool source_is_higher(const L3& ip, std::uint16_t sport, std::uint16_t dport) {
  if (ip.addr_len == 4) {
    const std::uint64_t s = std::uint64_t{load_be32(ip.src)} << 16 | sport;
    const std::uint64_t d = std::uint64_t{load_be32(ip.dst)} << 16 | dport;
    return s > d;
  }
  const std::uint64_t s0 = load_be64(ip.src), d0 = load_be64(ip.dst);
  const std::uint64_t s1 = load_be64(ip.src + 8), d1 = load_be64(ip.dst + 8);
  return (s0 > d0) | ((s0 == d0) & ((s1 > d1) | ((s1 == d1) & (sport > dport))));
}

void make_key(const L3& ip, std::uint8_t version, std::uint16_t sport, std::uint16_t dport,
              ParseResult& r) {
  const bool rev = source_is_higher(ip, sport, dport);
  const std::byte* lo = rev ? ip.dst : ip.src;
  const std::byte* hi = rev ? ip.src : ip.dst;
  FlowKey& k = r.key;  // zero-initialised: IPv4 leaves bytes 4..15 zero
  if (ip.addr_len == 4) {
    std::memcpy(k.addr_lo.data(), lo, 4);
    std::memcpy(k.addr_hi.data(), hi, 4);
  } else {
    std::memcpy(k.addr_lo.data(), lo, 16);
    std::memcpy(k.addr_hi.data(), hi, 16);
  }
  k.port_lo = rev ? dport : sport;
  k.port_hi = rev ? sport : dport;
  k.ip_version = version;
  k.proto = ip.proto;
  r.reversed = rev;
}

bool parse_tcp(const std::byte* f, const L3& ip, ParseResult& r, std::uint16_t ports[2]) {
  if (ip.end - ip.l4 < kTcpHeader) return fail(r, Malformed::tcp_truncated), false;
  const std::byte* tcp = f + ip.l4;
  const std::size_t doff = (u8(tcp + 12) >> 4) * 4u;
  if (doff < kTcpHeader || doff > ip.end - ip.l4) {
    return fail(r, Malformed::tcp_bad_data_offset), false;
  }
  ports[0] = be16(tcp);
  ports[1] = be16(tcp + 2);
  r.tcp_flags = u8(tcp + 13);
  r.payload_offset = static_cast<std::uint32_t>(ip.l4 + doff);
  r.payload_length = static_cast<std::uint32_t>(ip.end - ip.l4 - doff);
  return true;
}

bool parse_udp(const std::byte* f, const L3& ip, ParseResult& r, std::uint16_t ports[2]) {
  const std::size_t avail = ip.end - ip.l4;
  if (avail < kUdpHeader) return fail(r, Malformed::udp_truncated), false;
  const std::byte* udp = f + ip.l4;
  const std::size_t ulen = be16(udp + 4);
  if (ulen < kUdpHeader) return fail(r, Malformed::udp_length_below_header), false;
  // A first fragment's UDP length counts the whole datagram, which is not all here.
  if (ulen > avail && !ip.first_fragment) return fail(r, Malformed::udp_length_exceeds_ip), false;
  ports[0] = be16(udp);
  ports[1] = be16(udp + 2);
  r.payload_offset = static_cast<std::uint32_t>(ip.l4 + kUdpHeader);
  r.payload_length = static_cast<std::uint32_t>(std::min(ulen, avail) - kUdpHeader);
  return true;
}

constexpr std::array<std::string_view, kMalformedCount> kMalformedNames = {
    "none",
    "eth_too_short",
    "vlan_truncated",
    "vlan_too_many_tags",
    "unknown_ethertype",
    "ip_bad_version",
    "ipv4_truncated",
    "ipv4_bad_ihl",
    "ip_length_exceeds_frame",
    "ip_length_below_header",
    "ipv4_fragment",
    "ipv6_truncated",
    "ipv6_ext_truncated",
    "ipv6_ext_too_many",
    "ipv6_fragment",
    "tcp_truncated",
    "tcp_bad_data_offset",
    "udp_truncated",
    "udp_length_below_header",
    "udp_length_exceeds_ip",
};
static_assert(static_cast<std::size_t>(Malformed::udp_length_exceeds_ip) + 1 == kMalformedCount);

}  // namespace

ParseResult parse(const std::byte* frame, std::size_t len) noexcept {
  ParseResult r;
  L2 l2;
  if (!parse_l2(frame, len, r, l2)) return r;
  r.l3_offset = static_cast<std::uint16_t>(l2.l3);
  L3 ip;
  std::uint8_t version = 0;
  if (l2.ethertype == kEthIpv4) {
    if (!parse_ipv4(frame, len, l2.l3, r, ip)) return r;
    version = 4;
  } else if (l2.ethertype == kEthIpv6) {
    if (!parse_ipv6(frame, len, l2.l3, r, ip)) return r;
    version = 6;
  } else if (is_known_non_ip(l2.ethertype)) {
    r.status = Status::passthrough;
    r.pass = Passthrough::non_ip;
    return r;
  } else {
    // Includes values below 0x0600, which are 802.3 length fields (LLC frames such as
    // STP BPDUs), not types: ctxfwd drops those too.
    fail(r, Malformed::unknown_ethertype);
    return r;  // `return r` on every path keeps the named return value optimisation: a
               // copy of the result out of a stack temporary stalls on store forwarding
  }
  r.l4_proto = ip.proto;
  r.l4_offset = static_cast<std::uint32_t>(ip.l4);
  std::uint16_t ports[2] = {0, 0};
  if (ip.proto == kIpProtoTcp) {
    if (!parse_tcp(frame, ip, r, ports)) return r;
  } else if (ip.proto == kIpProtoUdp) {
    if (!parse_udp(frame, ip, r, ports)) return r;
  } else {
    r.status = Status::passthrough;
    r.pass = Passthrough::other_l4;
    return r;
  }
  make_key(ip, version, ports[0], ports[1], r);
  r.status = Status::flow;
  return r;
}

std::string_view to_string(Malformed reason) noexcept {
  const auto i = static_cast<std::size_t>(reason);
  return i < kMalformedNames.size() ? kMalformedNames[i] : std::string_view("invalid");
}

std::optional<Malformed> malformed_from_string(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kMalformedNames.size(); ++i) {
    if (kMalformedNames[i] == name) return static_cast<Malformed>(i);
  }
  return std::nullopt;
}

std::string_view to_string(Status status) noexcept {
  switch (status) {
    case Status::flow:
      return "flow";
    case Status::passthrough:
      return "passthrough";
    case Status::malformed:
      return "malformed";
  }
  return "invalid";
}

std::string_view to_string(Passthrough pass) noexcept {
  switch (pass) {
    case Passthrough::none:
      return "none";
    case Passthrough::non_ip:
      return "non_ip";
    case Passthrough::other_l4:
      return "other_l4";
  }
  return "invalid";
}

}  // namespace ctxfwd
