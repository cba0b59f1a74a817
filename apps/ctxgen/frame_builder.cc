#include "frame_builder.h"

#include <algorithm>
#include <cstring>

namespace ctxgen {
namespace {

// One's-complement sum of 16-bit big-endian words (RFC 1071), not yet folded.
std::uint32_t sum16(const std::byte* p, std::size_t n, std::uint32_t acc) {
  for (std::size_t i = 0; i + 1 < n; i += 2) {
    acc += static_cast<std::uint32_t>(static_cast<std::uint8_t>(p[i]) << 8 |
                                      static_cast<std::uint8_t>(p[i + 1]));
  }
  if (n % 2 != 0) acc += static_cast<std::uint32_t>(static_cast<std::uint8_t>(p[n - 1]) << 8);
  return acc;
}

std::uint16_t fold(std::uint32_t acc) {
  while (acc >> 16)
    acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<std::uint16_t>(~acc);
}

// The TCP/UDP/ICMPv6 pseudo-header sum for an upper-layer message of `len` bytes.
std::uint32_t pseudo_sum(const FrameSpec& s, std::size_t len) {
  const auto* src = reinterpret_cast<const std::byte*>(s.src.data());
  const auto* dst = reinterpret_cast<const std::byte*>(s.dst.data());
  const std::size_t alen = s.ip_version == 4 ? 4 : 16;
  std::uint32_t acc = sum16(src, alen, 0);
  acc = sum16(dst, alen, acc);
  acc += s.proto;
  acc += static_cast<std::uint32_t>(len & 0xFFFF) + static_cast<std::uint32_t>(len >> 16);
  return acc;
}

void put_mac(std::vector<std::byte>& f, std::size_t off, const Mac& m) {
  std::memcpy(f.data() + off, m.data(), m.size());
}

std::size_t write_l2(const FrameSpec& s, std::uint16_t ethertype, std::vector<std::byte>& f) {
  put_mac(f, 0, s.dst_mac);
  put_mac(f, 6, s.src_mac);
  std::size_t off = 12;
  for (std::uint8_t i = 0; i < s.vlan_count; ++i) {
    const bool outer_of_two = s.vlan_count == 2 && i == 0;
    put16(f, off, outer_of_two ? kTpid8021ad : kTpid8021Q);
    put16(f, off + 2, s.vlan_tci[i]);
    off += 4;
  }
  put16(f, off, ethertype);
  return off + 2;
}

void write_random(std::vector<std::byte>& f, std::size_t off, std::size_t n, Rng& rng) {
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 8 == 0) bits = rng.next();
    f[off + i] = static_cast<std::byte>(bits >> (8 * (i % 8)));
  }
}

void write_l4(const FrameSpec& s, const FrameLayout& lay, std::vector<std::byte>& f) {
  const std::size_t l4 = lay.l4;
  const std::size_t len = lay.ip_end - l4;
  std::size_t csum_at = 0;
  std::uint32_t acc = 0;
  switch (s.proto) {
    case kIpProtoTcp:
      put16(f, l4, s.src_port);
      put16(f, l4 + 2, s.dst_port);
      put32(f, l4 + 4, s.tcp_seq);
      put32(f, l4 + 8, s.tcp_ack);
      f[l4 + 12] = std::byte{0x50};  // data offset 5: no options
      f[l4 + 13] = static_cast<std::byte>(s.tcp_flags);
      put16(f, l4 + 14, 64240);  // window
      csum_at = l4 + 16;
      acc = pseudo_sum(s, len);
      break;
    case kIpProtoUdp:
      put16(f, l4, s.src_port);
      put16(f, l4 + 2, s.dst_port);
      put16(f, l4 + 4, static_cast<std::uint16_t>(len));
      csum_at = l4 + 6;
      acc = pseudo_sum(s, len);
      break;
    default:  // ICMP / ICMPv6 echo request
      f[l4] = std::byte{s.proto == kIpProtoIcmp ? std::uint8_t{8} : std::uint8_t{128}};
      put16(f, l4 + 4, s.src_port);
      put16(f, l4 + 6, s.dst_port);
      csum_at = l4 + 2;
      acc = s.proto == kIpProtoIcmpv6 ? pseudo_sum(s, len) : 0;
      break;
  }
  std::uint16_t csum = fold(sum16(f.data() + l4, len, acc));
  if (csum == 0 && s.proto == kIpProtoUdp) csum = 0xFFFF;  // 0 means "no checksum" in UDP
  put16(f, csum_at, csum);
}

void write_ipv4(const FrameSpec& s, const FrameLayout& lay, std::vector<std::byte>& f) {
  const std::size_t l3 = lay.l3;
  f[l3] = std::byte{0x45};
  put16(f, l3 + 2, static_cast<std::uint16_t>(lay.ip_end - l3));
  put16(f, l3 + 4, s.ip_id);
  put16(f, l3 + 6, 0x4000);  // don't fragment
  f[l3 + 8] = std::byte{64};
  f[l3 + 9] = static_cast<std::byte>(s.proto);
  std::memcpy(f.data() + l3 + 12, s.src.data(), 4);
  std::memcpy(f.data() + l3 + 16, s.dst.data(), 4);
  refresh_ipv4_checksum(f, l3);
}

void write_ipv6(const FrameSpec& s, const FrameLayout& lay, std::vector<std::byte>& f) {
  const std::size_t l3 = lay.l3;
  put32(f, l3, 0x60000000u | (s.ip_id & 0xFFFFFu));  // version 6, flow label from ip_id
  put16(f, l3 + 4, static_cast<std::uint16_t>(lay.ip_end - l3 - 40));
  f[l3 + 6] = static_cast<std::byte>(s.ipv6_ext_headers > 0 ? kIpv6DestOpts : s.proto);
  f[l3 + 7] = std::byte{64};
  std::memcpy(f.data() + l3 + 8, s.src.data(), 16);
  std::memcpy(f.data() + l3 + 24, s.dst.data(), 16);
  for (std::uint8_t i = 0; i < s.ipv6_ext_headers; ++i) {
    const std::size_t h = lay.ext + 8u * i;
    const bool last = i + 1 == s.ipv6_ext_headers;
    f[h] = static_cast<std::byte>(last ? s.proto : kIpv6DestOpts);
    f[h + 1] = std::byte{0};  // 8 bytes
    f[h + 2] = std::byte{1};  // PadN option filling the other 4 bytes
    f[h + 3] = std::byte{4};
  }
}

}  // namespace

void put16(std::vector<std::byte>& f, std::size_t off, std::uint16_t v) {
  f[off] = static_cast<std::byte>(v >> 8);
  f[off + 1] = static_cast<std::byte>(v);
}

void put32(std::vector<std::byte>& f, std::size_t off, std::uint32_t v) {
  put16(f, off, static_cast<std::uint16_t>(v >> 16));
  put16(f, off + 2, static_cast<std::uint16_t>(v));
}

std::uint16_t get16(const std::vector<std::byte>& f, std::size_t off) {
  return static_cast<std::uint16_t>(static_cast<std::uint8_t>(f[off]) << 8 |
                                    static_cast<std::uint8_t>(f[off + 1]));
}

void refresh_ipv4_checksum(std::vector<std::byte>& f, std::size_t l3) {
  put16(f, l3 + 10, 0);
  // A deliberately bad IHL below 5 still gets a checksum over the 20 fixed bytes.
  const std::size_t ihl = std::max<std::size_t>((static_cast<std::uint8_t>(f[l3]) & 0x0F) * 4u, 20);
  if (f.size() - l3 < ihl) return;  // a truncated header has no checksum to keep right
  put16(f, l3 + 10, fold(sum16(f.data() + l3, ihl, 0)));
}

std::size_t l4_header_length(std::uint8_t proto) {
  switch (proto) {
    case kIpProtoTcp:
      return 20;
    default:  // UDP, ICMP and ICMPv6 echo
      return 8;
  }
}

FrameLayout build_ip_frame(const FrameSpec& s, Rng& rng, std::vector<std::byte>& out) {
  FrameLayout lay;
  lay.l3 = l2_length(s.vlan_count);
  const std::size_t ip_header = s.ip_version == 4 ? 20 : 40;
  lay.ext = lay.l3 + ip_header;
  lay.l4 = lay.ext + (s.ip_version == 6 ? 8u * s.ipv6_ext_headers : 0);
  lay.payload = lay.l4 + l4_header_length(s.proto);
  lay.ip_end = lay.payload + s.payload;
  out.assign(std::max(lay.ip_end, kMinFrame), std::byte{0});
  write_l2(s, s.ip_version == 4 ? kEthIpv4 : kEthIpv6, out);
  write_random(out, lay.payload, s.payload, rng);
  if (s.ip_version == 4) {
    write_ipv4(s, lay, out);
  } else {
    write_ipv6(s, lay, out);
  }
  write_l4(s, lay, out);
  return lay;
}

void build_arp_frame(const Mac& src_mac, const IpAddr& src_ip, const IpAddr& target_ip, bool reply,
                     std::vector<std::byte>& out) {
  out.assign(kMinFrame, std::byte{0});
  FrameSpec l2;
  l2.dst_mac = reply ? Mac{0x02, 0, 0, 0, 0, 1} : Mac{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  l2.src_mac = src_mac;
  const std::size_t a = write_l2(l2, kEthArp, out);
  put16(out, a, 1);  // hardware: Ethernet
  put16(out, a + 2, kEthIpv4);
  out[a + 4] = std::byte{6};
  out[a + 5] = std::byte{4};
  put16(out, a + 6, reply ? 2 : 1);
  put_mac(out, a + 8, src_mac);
  std::memcpy(out.data() + a + 14, src_ip.data(), 4);
  if (reply) put_mac(out, a + 18, l2.dst_mac);
  std::memcpy(out.data() + a + 24, target_ip.data(), 4);
}

}  // namespace ctxgen
