#include "malform.h"

#include <algorithm>
#include <cstring>

#include "frame_builder.h"

namespace ctxgen {
namespace {

constexpr std::array<std::string_view, kMalformedKinds> kKindNames = {
    "eth_too_short",         "vlan_truncated",          "vlan_too_many_tags",
    "unknown_ethertype",     "ip_bad_version",          "ipv4_truncated",
    "ipv4_bad_ihl",          "ip_length_exceeds_frame", "ip_length_below_header",
    "ipv4_fragment",         "ipv6_truncated",          "ipv6_ext_truncated",
    "ipv6_ext_too_many",     "ipv6_fragment",           "tcp_truncated",
    "tcp_bad_data_offset",   "udp_truncated",           "udp_length_below_header",
    "udp_length_exceeds_ip",
};

// Types no handler claims. Excludes IPv4, IPv6, ARP, RARP, slow protocols, LLDP, PTP and
// the VLAN TPIDs; 0x0101 and 0x05DC are 802.3 length values.
constexpr std::array<std::uint16_t, 8> kUnknownEthertypes = {0x88B5, 0x88B6, 0x1234, 0x0101,
                                                             0x05DC, 0x86DE, 0xFFFF, 0x0801};

// Malformed frames come from documentation address ranges (RFC 5737 / RFC 3849), so they
// are easy to tell apart from the flows in a capture viewer.
IpAddr random_addr(std::uint8_t version, Rng& rng, bool server) {
  IpAddr a{};
  if (version == 4) {
    a[0] = server ? 203 : 198;
    a[1] = server ? 0 : 51;
    a[2] = server ? 113 : 100;
    a[3] = static_cast<std::uint8_t>(rng.range(1, 254));
  } else {
    a = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, static_cast<std::uint8_t>(server ? 2 : 1)};
    for (int i = 8; i < 16; ++i)
      a[i] = static_cast<std::uint8_t>(rng.next());
  }
  return a;
}

// A random well-formed base for a malformed frame.
FrameSpec base_spec(Rng& rng, std::uint8_t version, std::uint8_t proto) {
  FrameSpec s;
  s.dst_mac = {0x02, 0xBA, 0xD0, 0, 0, 2};
  s.src_mac = {0x02, 0xBA, 0xD0, 0, 0, 1};
  s.vlan_count = static_cast<std::uint8_t>(rng.chance(0.3) ? rng.range(1, 2) : 0);
  s.vlan_tci = {static_cast<std::uint16_t>(rng.range(1, 4094)),
                static_cast<std::uint16_t>(rng.range(1, 4094))};
  s.ip_version = version;
  s.src = random_addr(version, rng, false);
  s.dst = random_addr(version, rng, true);
  s.proto = proto;
  s.ip_id = static_cast<std::uint16_t>(rng.next());
  s.src_port = static_cast<std::uint16_t>(rng.range(1024, 65535));
  s.dst_port = static_cast<std::uint16_t>(rng.range(1, 1023));
  s.tcp_flags = kTcpPsh | kTcpAck;
  s.tcp_seq = static_cast<std::uint32_t>(rng.next());
  s.tcp_ack = static_cast<std::uint32_t>(rng.next());
  s.payload = rng.range(0, 200);
  return s;
}

std::uint8_t any_version(Rng& rng) {
  return rng.chance(0.5) ? 4 : 6;
}
std::uint8_t any_l4(Rng& rng) {
  return rng.chance(0.5) ? kIpProtoTcp : kIpProtoUdp;
}

// Sets the IP datagram's length field so that it ends at `end` (IPv4 or IPv6).
void set_ip_end(std::vector<std::byte>& f, const FrameSpec& s, const FrameLayout& lay,
                std::size_t end) {
  if (s.ip_version == 4) {
    put16(f, lay.l3 + 2, static_cast<std::uint16_t>(end - lay.l3));
    refresh_ipv4_checksum(f, lay.l3);
  } else {
    put16(f, lay.l3 + 4, static_cast<std::uint16_t>(end - lay.l3 - 40));
  }
}

// Cuts the frame at `end` and pads it back to the Ethernet minimum with zeros, as a
// sender's NIC would.
void cut_and_pad(std::vector<std::byte>& f, std::size_t end) {
  f.resize(end);
  if (f.size() < kMinFrame) f.resize(kMinFrame, std::byte{0});
}

void l2_kinds(MalformedKind kind, Rng& rng, std::vector<std::byte>& f) {
  FrameSpec s = base_spec(rng, any_version(rng), any_l4(rng));
  switch (kind) {
    case MalformedKind::eth_too_short:
      build_ip_frame(s, rng, f);
      f.resize(rng.range(1, 13));
      return;
    case MalformedKind::vlan_truncated: {
      // Cut inside the first tag, or inside a second one after a whole first tag.
      s.vlan_count = static_cast<std::uint8_t>(rng.range(0, 1));
      const FrameLayout lay = build_ip_frame(s, rng, f);
      const std::size_t tpid_at = lay.l3 - 2;
      put16(f, tpid_at, kTpid8021Q);
      f.resize(tpid_at + 2 + rng.range(0, 3));  // the tag needs 4 bytes after its TPID
      return;
    }
    case MalformedKind::vlan_too_many_tags: {
      s.vlan_count = 2;
      build_ip_frame(s, rng, f);
      const std::uint16_t tci = static_cast<std::uint16_t>(rng.range(1, 4094));
      const std::byte tag[4] = {std::byte{0x81}, std::byte{0x00}, static_cast<std::byte>(tci >> 8),
                                static_cast<std::byte>(tci)};
      f.insert(f.begin() + 20, tag, tag + 4);
      return;
    }
    default: {  // unknown_ethertype
      const FrameLayout lay = build_ip_frame(s, rng, f);
      put16(f, lay.l3 - 2, kUnknownEthertypes[rng.below(kUnknownEthertypes.size())]);
      return;
    }
  }
}

void ip_kinds(MalformedKind kind, Rng& rng, std::vector<std::byte>& f) {
  const bool v4_only =
      kind == MalformedKind::ipv4_truncated || kind == MalformedKind::ipv4_bad_ihl ||
      kind == MalformedKind::ip_length_below_header || kind == MalformedKind::ipv4_fragment;
  const std::uint8_t version =
      v4_only ? 4 : (kind == MalformedKind::ipv6_truncated ? 6 : any_version(rng));
  FrameSpec s = base_spec(rng, version, any_l4(rng));
  const FrameLayout lay = build_ip_frame(s, rng, f);
  const std::size_t l3 = lay.l3;
  const std::size_t ip_header = s.ip_version == 4 ? 20 : 40;
  switch (kind) {
    case MalformedKind::ip_bad_version: {
      const std::uint8_t good = s.ip_version;
      std::uint8_t v = static_cast<std::uint8_t>(rng.range(0, 14));
      if (v >= good) ++v;  // any of the 15 other values
      f[l3] = static_cast<std::byte>((v << 4) | (static_cast<std::uint8_t>(f[l3]) & 0x0F));
      if (s.ip_version == 4) refresh_ipv4_checksum(f, l3);
      return;
    }
    case MalformedKind::ipv4_truncated:
      f.resize(l3 + rng.range(0, 19));
      return;
    case MalformedKind::ipv4_bad_ihl:
      f[l3] = static_cast<std::byte>(0x40 | rng.range(0, 4));
      refresh_ipv4_checksum(f, l3);
      return;
    case MalformedKind::ip_length_exceeds_frame:
      if (rng.chance(0.5)) {
        // The length field lies: it claims more than the frame (padding included) holds.
        set_ip_end(f, s, lay, std::min<std::size_t>(f.size() + rng.range(1, 100), 65535 + l3));
      } else {
        // The frame lies: it was cut somewhere after the fixed IP header.
        f.resize(rng.range(l3 + ip_header, lay.ip_end - 1));
      }
      return;
    case MalformedKind::ip_length_below_header:
      put16(f, l3 + 2, static_cast<std::uint16_t>(rng.range(0, 19)));
      refresh_ipv4_checksum(f, l3);
      return;
    case MalformedKind::ipv4_fragment: {
      const std::uint16_t more = rng.chance(0.5) ? 0x2000 : 0;
      put16(f, l3 + 6, static_cast<std::uint16_t>(more | rng.range(1, 0x1FFF)));
      refresh_ipv4_checksum(f, l3);
      return;
    }
    default:  // ipv6_truncated
      f.resize(l3 + rng.range(0, 39));
      return;
  }
}

void ipv6_ext_kinds(MalformedKind kind, Rng& rng, std::vector<std::byte>& f) {
  FrameSpec s = base_spec(rng, 6, any_l4(rng));
  s.ipv6_ext_headers = static_cast<std::uint8_t>(
      kind == MalformedKind::ipv6_ext_too_many ? rng.range(9, 12) : rng.range(1, 2));
  const FrameLayout lay = build_ip_frame(s, rng, f);
  if (kind == MalformedKind::ipv6_ext_truncated) {
    if (rng.chance(0.5)) {
      // The first header claims 2048 bytes, more than any payload here.
      f[lay.ext + 1] = std::byte{255};
    } else {
      // The payload length leaves fewer than the 2 bytes every extension header starts with.
      set_ip_end(f, s, lay, lay.ext + rng.range(0, 1));
    }
  } else if (kind == MalformedKind::ipv6_fragment) {
    // The first extension header becomes a fragment header with a non-zero offset.
    f[lay.l3 + 6] = std::byte{kIpv6Fragment};
    f[lay.ext + 1] = std::byte{0};
    const std::uint16_t more = rng.chance(0.5) ? 1 : 0;
    put16(f, lay.ext + 2, static_cast<std::uint16_t>(rng.range(1, 0x1FFF) << 3 | more));
    put32(f, lay.ext + 4, static_cast<std::uint32_t>(rng.next()));
  }
}

void l4_kinds(MalformedKind kind, Rng& rng, std::vector<std::byte>& f) {
  const bool tcp =
      kind == MalformedKind::tcp_truncated || kind == MalformedKind::tcp_bad_data_offset;
  FrameSpec s = base_spec(rng, any_version(rng), tcp ? kIpProtoTcp : kIpProtoUdp);
  if (s.ip_version == 6 && rng.chance(0.3)) s.ipv6_ext_headers = 1;
  const FrameLayout lay = build_ip_frame(s, rng, f);
  const std::size_t l4_len = lay.ip_end - lay.l4;
  switch (kind) {
    case MalformedKind::tcp_truncated:
    case MalformedKind::udp_truncated: {
      const std::size_t end = lay.l4 + rng.range(0, tcp ? 19 : 7);
      set_ip_end(f, s, lay, end);
      cut_and_pad(f, end);
      return;
    }
    case MalformedKind::tcp_bad_data_offset: {
      std::uint64_t doff = rng.range(0, 4);
      if (l4_len < 60 && rng.chance(0.5)) doff = rng.range(l4_len / 4 + 1, 15);  // past the end
      f[lay.l4 + 12] = static_cast<std::byte>(doff << 4);
      return;
    }
    case MalformedKind::udp_length_below_header:
      put16(f, lay.l4 + 4, static_cast<std::uint16_t>(rng.range(0, 7)));
      return;
    default:  // udp_length_exceeds_ip
      put16(f, lay.l4 + 4,
            static_cast<std::uint16_t>(std::min<std::size_t>(l4_len + rng.range(1, 200), 65535)));
      return;
  }
}

}  // namespace

std::string_view name(MalformedKind kind) {
  return kKindNames[static_cast<std::size_t>(kind)];
}

void make_malformed(MalformedKind kind, Rng& rng, std::vector<std::byte>& out) {
  switch (kind) {
    case MalformedKind::eth_too_short:
    case MalformedKind::vlan_truncated:
    case MalformedKind::vlan_too_many_tags:
    case MalformedKind::unknown_ethertype:
      return l2_kinds(kind, rng, out);
    case MalformedKind::ipv6_ext_truncated:
    case MalformedKind::ipv6_ext_too_many:
    case MalformedKind::ipv6_fragment:
      return ipv6_ext_kinds(kind, rng, out);
    case MalformedKind::tcp_truncated:
    case MalformedKind::tcp_bad_data_offset:
    case MalformedKind::udp_truncated:
    case MalformedKind::udp_length_below_header:
    case MalformedKind::udp_length_exceeds_ip:
      return l4_kinds(kind, rng, out);
    default:
      return ip_kinds(kind, rng, out);
  }
}

std::string_view name(PassKind kind) {
  switch (kind) {
    case PassKind::arp:
      return "arp";
    case PassKind::icmp:
      return "icmp";
    case PassKind::icmpv6:
      return "icmpv6";
  }
  return "invalid";
}

void make_passthrough(PassKind kind, Rng& rng, std::vector<std::byte>& out) {
  if (kind == PassKind::arp) {
    const Mac mac = {0x02,
                     0,
                     0,
                     0,
                     static_cast<std::uint8_t>(rng.below(256)),
                     static_cast<std::uint8_t>(rng.below(256))};
    IpAddr me{10, 255, 0, static_cast<std::uint8_t>(rng.range(1, 254))};
    IpAddr target{10, 255, 0, static_cast<std::uint8_t>(rng.range(1, 254))};
    build_arp_frame(mac, me, target, rng.chance(0.5), out);
    return;
  }
  // An echo request, with its own identifier and sequence number.
  FrameSpec s = base_spec(rng, kind == PassKind::icmp ? 4 : 6,
                          kind == PassKind::icmp ? kIpProtoIcmp : kIpProtoIcmpv6);
  s.payload = rng.range(0, 56);
  build_ip_frame(s, rng, out);
}

}  // namespace ctxgen
