// ctxfwd's packet parser, header path by header path and reason by reason. Frames are
// built by hand (frame_bytes.h) and parsed from exact-size heap copies, so an
// out-of-bounds read shows under ASan.
#include "packet_parser.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "frame_bytes.h"

namespace ctxfwd {
namespace {

using testing::Bytes;

constexpr std::uint16_t kIpv4 = 0x0800;
constexpr std::uint16_t kIpv6 = 0x86DD;

ParseResult parse_bytes(const Bytes& b, std::size_t n) {
  const std::vector<std::byte> f = b.frame(n);
  return parse(f.data(), f.size());
}
ParseResult parse_bytes(const Bytes& b) {
  return parse_bytes(b, b.size());
}

Malformed reason_of(const Bytes& b) {
  const ParseResult r = parse_bytes(b);
  EXPECT_EQ(r.status, Status::malformed) << "reason " << to_string(r.reason);
  return r.reason;
}

// 10.0.0.1:1234 -> 10.0.0.2:80, TCP with `payload` bytes and `pad` bytes of L2 padding.
Bytes ipv4_tcp(std::uint8_t flags, std::size_t payload = 0, std::size_t pad = 0) {
  Bytes b;
  b.eth(kIpv4).ipv4(static_cast<std::uint16_t>(40 + payload), kIpProtoTcp, {10, 0, 0, 1},
                    {10, 0, 0, 2});
  b.tcp(1234, 80, flags).zeros(payload).zeros(pad);
  return b;
}

Bytes ipv4_udp(std::uint16_t sport, std::uint16_t dport, std::size_t payload) {
  Bytes b;
  const auto udp_len = static_cast<std::uint16_t>(8 + payload);
  b.eth(kIpv4).ipv4(static_cast<std::uint16_t>(20 + udp_len), kIpProtoUdp, {192, 168, 1, 9},
                    {10, 1, 1, 1});
  b.udp(sport, dport, udp_len).zeros(payload);
  return b;
}

Bytes ipv6_udp(std::size_t payload) {
  Bytes b;
  const auto udp_len = static_cast<std::uint16_t>(8 + payload);
  b.eth(kIpv6).ipv6(udp_len, kIpProtoUdp, 0x20, 0x10).udp(5353, 53, udp_len).zeros(payload);
  return b;
}

TEST(PacketParser, Ipv4TcpKeyFlagsAndPayload) {
  const Bytes b = ipv4_tcp(kTcpPsh | kTcpAck, 7);
  const ParseResult r = parse_bytes(b);
  ASSERT_EQ(r.status, Status::flow);
  EXPECT_EQ(r.reason, Malformed::none);
  EXPECT_EQ(r.key.ip_version, 4);
  EXPECT_EQ(r.key.proto, kIpProtoTcp);
  EXPECT_EQ(r.key.addr_lo[3], 1);  // 10.0.0.1 < 10.0.0.2
  EXPECT_EQ(r.key.addr_hi[3], 2);
  EXPECT_EQ(r.key.addr_lo[4], 0);  // IPv4 fills 4 bytes only
  EXPECT_EQ(r.key.port_lo, 1234);
  EXPECT_EQ(r.key.port_hi, 80);
  EXPECT_FALSE(r.reversed);
  EXPECT_EQ(r.tcp_flags, kTcpPsh | kTcpAck);
  EXPECT_FALSE(r.ends_flow());
  EXPECT_EQ(r.l3_offset, 14);
  EXPECT_EQ(r.l4_offset, 34u);
  EXPECT_EQ(r.payload_offset, 54u);
  EXPECT_EQ(r.payload_length, 7u);
  EXPECT_EQ(r.ethertype, kIpv4);
  EXPECT_EQ(r.l4_proto, kIpProtoTcp);
}

TEST(PacketParser, EthernetPaddingIsNotPayload) {
  const ParseResult r = parse_bytes(ipv4_tcp(kTcpSyn, 0, 6));  // 60-byte minimum frame
  ASSERT_EQ(r.status, Status::flow);
  EXPECT_EQ(r.payload_length, 0u);
  const ParseResult u = parse_bytes(ipv4_udp(1, 2, 3).zeros(15));
  ASSERT_EQ(u.status, Status::flow);
  EXPECT_EQ(u.payload_length, 3u);
}

TEST(PacketParser, FinAndRstEndTheFlowSynDoesNot) {
  EXPECT_TRUE(parse_bytes(ipv4_tcp(kTcpFin | kTcpAck)).ends_flow());
  EXPECT_TRUE(parse_bytes(ipv4_tcp(kTcpRst)).ends_flow());
  EXPECT_FALSE(parse_bytes(ipv4_tcp(kTcpSyn)).ends_flow());
  EXPECT_FALSE(parse_bytes(ipv4_udp(1, 2, 0)).ends_flow());
}

TEST(PacketParser, BothDirectionsGiveOneKey) {
  Bytes back;
  back.eth(kIpv4).ipv4(40, kIpProtoTcp, {10, 0, 0, 2}, {10, 0, 0, 1}).tcp(80, 1234, kTcpAck);
  const ParseResult fwd = parse_bytes(ipv4_tcp(kTcpAck));
  const ParseResult rev = parse_bytes(back);
  ASSERT_EQ(rev.status, Status::flow);
  EXPECT_EQ(fwd.key, rev.key);
  EXPECT_FALSE(fwd.reversed);
  EXPECT_TRUE(rev.reversed);
}

TEST(PacketParser, EqualAddressesAreOrderedByPort) {
  Bytes a, b;
  a.eth(kIpv4).ipv4(28, kIpProtoUdp, {10, 0, 0, 1}, {10, 0, 0, 1}).udp(9000, 53, 8);
  b.eth(kIpv4).ipv4(28, kIpProtoUdp, {10, 0, 0, 1}, {10, 0, 0, 1}).udp(53, 9000, 8);
  const ParseResult ra = parse_bytes(a);
  const ParseResult rb = parse_bytes(b);
  EXPECT_EQ(ra.key, rb.key);
  EXPECT_EQ(ra.key.port_lo, 53);
  EXPECT_TRUE(ra.reversed);
  EXPECT_FALSE(rb.reversed);
}

TEST(PacketParser, KeysDifferByProtocolAndVersion) {
  Bytes tcp_like_udp;
  tcp_like_udp.eth(kIpv4).ipv4(28, kIpProtoUdp, {10, 0, 0, 1}, {10, 0, 0, 2}).udp(1234, 80, 8);
  EXPECT_NE(parse_bytes(ipv4_tcp(kTcpAck)).key, parse_bytes(tcp_like_udp).key);
  const ParseResult v6 = parse_bytes(ipv6_udp(0));
  EXPECT_EQ(v6.key.ip_version, 6);
  EXPECT_EQ(v6.key.reserved[0], 0);
  EXPECT_EQ(v6.key.reserved[1], 0);
}

TEST(PacketParser, Ipv6UdpAndItsDirection) {
  const ParseResult r = parse_bytes(ipv6_udp(11));
  ASSERT_EQ(r.status, Status::flow);
  EXPECT_EQ(r.key.proto, kIpProtoUdp);
  EXPECT_EQ(r.key.addr_lo[15], 0x10);  // the destination sorts lower
  EXPECT_TRUE(r.reversed);
  EXPECT_EQ(r.key.port_lo, 53);  // ports travel with their addresses
  EXPECT_EQ(r.key.port_hi, 5353);
  EXPECT_EQ(r.l4_offset, 54u);
  EXPECT_EQ(r.payload_offset, 62u);
  EXPECT_EQ(r.payload_length, 11u);
}

TEST(PacketParser, Ipv6ExtensionHeadersAreSkipped) {
  // Hop-by-hop (8) -> routing (16) -> destination options (8) -> AH (12) -> fragment with
  // offset 0 and no more fragments (an "atomic" fragment) -> TCP.
  Bytes b;
  b.eth(kIpv6).ipv6(8 + 16 + 8 + 12 + 8 + 20, 0, 1, 2);
  b.u8(43).u8(0).raw({1, 4, 0, 0, 0, 0});
  b.u8(60).u8(1).zeros(14);
  b.u8(51).u8(0).raw({1, 4, 0, 0, 0, 0});
  b.u8(44).u8(1).zeros(10);  // AH: (1 + 2) * 4 = 12 bytes
  b.u8(kIpProtoTcp).u8(0).be16(0).be32(7);
  b.tcp(40000, 443, kTcpSyn);
  const ParseResult r = parse_bytes(b);
  ASSERT_EQ(r.status, Status::flow) << to_string(r.reason);
  EXPECT_EQ(r.l4_offset, 14u + 40 + 52);
  EXPECT_EQ(r.tcp_flags, kTcpSyn);
  EXPECT_EQ(r.l4_proto, kIpProtoTcp);
}

TEST(PacketParser, VlanTagsOneAndTwo) {
  Bytes one, two, old_qinq;
  one.eth(0x8100).vlan(100, kIpv4).ipv4(28, kIpProtoUdp, {1, 1, 1, 1}, {2, 2, 2, 2}).udp(1, 2, 8);
  two.eth(0x88A8).vlan(7, 0x8100).vlan(100, kIpv6).ipv6(8, kIpProtoUdp, 1, 2).udp(1, 2, 8);
  old_qinq.eth(0x9100).vlan(7, 0x8100).vlan(9, kIpv4);
  old_qinq.ipv4(28, kIpProtoUdp, {1, 1, 1, 1}, {2, 2, 2, 2}).udp(1, 2, 8);
  const ParseResult r1 = parse_bytes(one);
  const ParseResult r2 = parse_bytes(two);
  const ParseResult r3 = parse_bytes(old_qinq);
  ASSERT_EQ(r1.status, Status::flow);
  ASSERT_EQ(r2.status, Status::flow);
  ASSERT_EQ(r3.status, Status::flow);
  EXPECT_EQ(r1.vlan_tags, 1);
  EXPECT_EQ(r1.l3_offset, 18);
  EXPECT_EQ(r2.vlan_tags, 2);
  EXPECT_EQ(r2.l3_offset, 22);
  EXPECT_EQ(r2.ethertype, kIpv6);
  EXPECT_EQ(r3.vlan_tags, 2);
}

TEST(PacketParser, KnownNonIpTypesPassThrough) {
  for (std::uint16_t type : {0x0806, 0x8035, 0x8809, 0x88CC, 0x88F7}) {
    Bytes b;
    b.eth(type).zeros(46);
    const ParseResult r = parse_bytes(b);
    EXPECT_EQ(r.status, Status::passthrough) << std::hex << type;
    EXPECT_EQ(r.pass, Passthrough::non_ip);
    EXPECT_EQ(r.ethertype, type);
  }
  Bytes tagged_arp;
  tagged_arp.eth(0x8100).vlan(5, 0x0806).zeros(28);
  EXPECT_EQ(parse_bytes(tagged_arp).pass, Passthrough::non_ip);
}

TEST(PacketParser, OtherL4ProtocolsPassThrough) {
  Bytes icmp, icmpv6, no_next, esp_after_ext;
  icmp.eth(kIpv4).ipv4(28, 1, {1, 1, 1, 1}, {2, 2, 2, 2}).zeros(8);
  icmpv6.eth(kIpv6).ipv6(8, 58, 1, 2).zeros(8);
  no_next.eth(kIpv6).ipv6(0, 59, 1, 2);
  esp_after_ext.eth(kIpv6).ipv6(16, 60, 1, 2).u8(50).u8(0).zeros(6).zeros(8);
  for (const Bytes* b : {&icmp, &icmpv6, &no_next, &esp_after_ext}) {
    const ParseResult r = parse_bytes(*b);
    EXPECT_EQ(r.status, Status::passthrough);
    EXPECT_EQ(r.pass, Passthrough::other_l4);
  }
  EXPECT_EQ(parse_bytes(esp_after_ext).l4_proto, 50);
}

TEST(PacketParser, FirstFragmentsAreKeyed) {
  // A UDP first fragment: the UDP length counts the whole datagram, more than is here.
  Bytes v4;
  v4.eth(kIpv4).ipv4(20 + 8 + 16, kIpProtoUdp, {1, 1, 1, 1}, {2, 2, 2, 2}, 5, 0x2000);
  v4.udp(7, 9, 1000).zeros(16);
  const ParseResult r4 = parse_bytes(v4);
  ASSERT_EQ(r4.status, Status::flow) << to_string(r4.reason);
  EXPECT_EQ(r4.payload_length, 16u);
  Bytes v6;
  v6.eth(kIpv6).ipv6(8 + 8 + 16, 44, 1, 2).u8(kIpProtoUdp).u8(0).be16(1).be32(3);
  v6.udp(7, 9, 1000).zeros(16);
  const ParseResult r6 = parse_bytes(v6);
  ASSERT_EQ(r6.status, Status::flow) << to_string(r6.reason);
  EXPECT_EQ(r6.payload_length, 16u);
}

TEST(PacketParser, Ipv4OptionsAreSkipped) {
  Bytes b;
  b.eth(kIpv4).ipv4(24 + 20, kIpProtoTcp, {1, 1, 1, 1}, {2, 2, 2, 2}, 6).tcp(1, 2, kTcpAck);
  const ParseResult r = parse_bytes(b);
  ASSERT_EQ(r.status, Status::flow);
  EXPECT_EQ(r.l4_offset, 14u + 24);
}

TEST(PacketParser, TcpOptionsAreNotPayload) {
  Bytes b;
  b.eth(kIpv4).ipv4(20 + 32 + 4, kIpProtoTcp, {1, 1, 1, 1}, {2, 2, 2, 2}).tcp(1, 2, kTcpAck, 8);
  b.zeros(4);
  const ParseResult r = parse_bytes(b);
  ASSERT_EQ(r.status, Status::flow);
  EXPECT_EQ(r.payload_offset, 14u + 20 + 32);
  EXPECT_EQ(r.payload_length, 4u);
}

// ---------------------------------------------------------------- every malformed reason

TEST(PacketParserMalformed, L2Reasons) {
  Bytes short_eth;
  short_eth.zeros(13);
  EXPECT_EQ(reason_of(short_eth), Malformed::eth_too_short);
  EXPECT_EQ(parse(nullptr, 0).reason, Malformed::eth_too_short);

  Bytes cut_tag;
  cut_tag.eth(0x8100).u8(0).u8(5).u8(0x08);  // TCI, then half the next type
  EXPECT_EQ(reason_of(cut_tag), Malformed::vlan_truncated);
  Bytes cut_second_tag;
  cut_second_tag.eth(0x88A8).vlan(1, 0x8100).u8(0);
  EXPECT_EQ(reason_of(cut_second_tag), Malformed::vlan_truncated);

  Bytes three;
  three.eth(0x88A8).vlan(1, 0x8100).vlan(2, 0x8100).vlan(3, kIpv4);
  three.ipv4(28, kIpProtoUdp, {1, 1, 1, 1}, {2, 2, 2, 2}).udp(1, 2, 8);
  EXPECT_EQ(reason_of(three), Malformed::vlan_too_many_tags);

  for (std::uint16_t type : {0x88B5, 0x0101, 0x05DC, 0xFFFF}) {
    Bytes b;
    b.eth(type).zeros(46);
    EXPECT_EQ(reason_of(b), Malformed::unknown_ethertype) << std::hex << type;
  }
}

TEST(PacketParserMalformed, Ipv4Reasons) {
  Bytes cut;
  cut.eth(kIpv4).zeros(19);
  EXPECT_EQ(reason_of(cut), Malformed::ipv4_truncated);

  Bytes v6_in_v4 = ipv4_udp(1, 2, 4);
  v6_in_v4[14] = 0x65;
  EXPECT_EQ(reason_of(v6_in_v4), Malformed::ip_bad_version);

  for (std::uint8_t ihl = 0; ihl < 5; ++ihl) {
    Bytes b = ipv4_udp(1, 2, 4);
    b[14] = static_cast<std::uint8_t>(0x40 | ihl);
    EXPECT_EQ(reason_of(b), Malformed::ipv4_bad_ihl) << int{ihl};
  }

  Bytes too_long = ipv4_udp(1, 2, 4).zeros(10);  // padding does not count as datagram
  too_long[16] = 0;
  too_long[17] = static_cast<std::uint8_t>(too_long.size() - 14 + 1);
  EXPECT_EQ(reason_of(too_long), Malformed::ip_length_exceeds_frame);

  Bytes below = ipv4_udp(1, 2, 4);
  below[17] = 19;
  EXPECT_EQ(reason_of(below), Malformed::ip_length_below_header);
  Bytes options_beyond = ipv4_udp(1, 2, 4);  // IHL 15 = 60 bytes > total length 32
  options_beyond[14] = 0x4F;
  EXPECT_EQ(reason_of(options_beyond), Malformed::ip_length_below_header);

  Bytes frag;
  frag.eth(kIpv4).ipv4(28, kIpProtoUdp, {1, 1, 1, 1}, {2, 2, 2, 2}, 5, 0x2000 | 185).udp(1, 2, 8);
  EXPECT_EQ(reason_of(frag), Malformed::ipv4_fragment);
  Bytes last_frag;
  last_frag.eth(kIpv4).ipv4(28, kIpProtoUdp, {1, 1, 1, 1}, {2, 2, 2, 2}, 5, 1).zeros(8);
  EXPECT_EQ(reason_of(last_frag), Malformed::ipv4_fragment);
}

TEST(PacketParserMalformed, Ipv6Reasons) {
  Bytes cut;
  cut.eth(kIpv6).zeros(39);
  EXPECT_EQ(reason_of(cut), Malformed::ipv6_truncated);

  Bytes v4_in_v6 = ipv6_udp(0);
  v4_in_v6[14] = 0x40;
  EXPECT_EQ(reason_of(v4_in_v6), Malformed::ip_bad_version);

  Bytes too_long = ipv6_udp(4);
  too_long[19] = 13;  // payload length 13 > 12 present
  EXPECT_EQ(reason_of(too_long), Malformed::ip_length_exceeds_frame);

  Bytes ext_past_end;
  ext_past_end.eth(kIpv6).ipv6(16, 60, 1, 2).u8(kIpProtoUdp).u8(2).zeros(6).zeros(8);
  EXPECT_EQ(reason_of(ext_past_end), Malformed::ipv6_ext_truncated);
  Bytes ext_no_room;
  ext_no_room.eth(kIpv6).ipv6(1, 0, 1, 2).u8(kIpProtoUdp).zeros(20);
  EXPECT_EQ(reason_of(ext_no_room), Malformed::ipv6_ext_truncated);
  Bytes frag_cut;
  frag_cut.eth(kIpv6).ipv6(6, 44, 1, 2).u8(kIpProtoUdp).zeros(5);
  EXPECT_EQ(reason_of(frag_cut), Malformed::ipv6_ext_truncated);

  for (unsigned n : {kMaxIpv6ExtHeaders, kMaxIpv6ExtHeaders + 1}) {
    Bytes b;
    b.eth(kIpv6).ipv6(static_cast<std::uint16_t>(8 * n + 8), 60, 1, 2);
    for (unsigned i = 0; i < n; ++i)
      b.u8(i + 1 == n ? kIpProtoUdp : 60).u8(0).raw({1, 4, 0, 0, 0, 0});
    b.udp(1, 2, 8);
    const ParseResult r = parse_bytes(b);
    if (n == kMaxIpv6ExtHeaders) {
      EXPECT_EQ(r.status, Status::flow) << to_string(r.reason);
    } else {
      EXPECT_EQ(r.reason, Malformed::ipv6_ext_too_many);
    }
  }

  Bytes frag;
  frag.eth(kIpv6).ipv6(16, 44, 1, 2).u8(kIpProtoUdp).u8(0).be16(8 << 3).be32(1).zeros(8);
  EXPECT_EQ(reason_of(frag), Malformed::ipv6_fragment);
}

TEST(PacketParserMalformed, TcpReasons) {
  Bytes cut;
  cut.eth(kIpv4).ipv4(20 + 19, kIpProtoTcp, {1, 1, 1, 1}, {2, 2, 2, 2}).zeros(19);
  EXPECT_EQ(reason_of(cut), Malformed::tcp_truncated);
  // The IP length, not the frame, bounds the segment: padding is no TCP header.
  Bytes cut_padded;
  cut_padded.eth(kIpv4).ipv4(20 + 10, kIpProtoTcp, {1, 1, 1, 1}, {2, 2, 2, 2}).zeros(30);
  EXPECT_EQ(reason_of(cut_padded), Malformed::tcp_truncated);
  Bytes v6_cut;
  v6_cut.eth(kIpv6).ipv6(8, kIpProtoTcp, 1, 2).zeros(20);
  EXPECT_EQ(reason_of(v6_cut), Malformed::tcp_truncated);

  Bytes doff_small = ipv4_tcp(kTcpAck);
  doff_small[14 + 20 + 12] = 0x40;
  EXPECT_EQ(reason_of(doff_small), Malformed::tcp_bad_data_offset);
  Bytes doff_large = ipv4_tcp(kTcpAck, 0, 40);  // padding after does not make room
  doff_large[14 + 20 + 12] = 0x60;
  EXPECT_EQ(reason_of(doff_large), Malformed::tcp_bad_data_offset);
}

TEST(PacketParserMalformed, UdpReasons) {
  Bytes cut;
  cut.eth(kIpv4).ipv4(20 + 7, kIpProtoUdp, {1, 1, 1, 1}, {2, 2, 2, 2}).zeros(7);
  EXPECT_EQ(reason_of(cut), Malformed::udp_truncated);

  Bytes below = ipv4_udp(1, 2, 4);
  below[14 + 20 + 5] = 7;
  EXPECT_EQ(reason_of(below), Malformed::udp_length_below_header);

  Bytes beyond = ipv4_udp(1, 2, 4).zeros(20);
  beyond[14 + 20 + 5] = 13;  // 12 in the datagram; the padding does not count
  EXPECT_EQ(reason_of(beyond), Malformed::udp_length_exceeds_ip);

  Bytes shorter = ipv4_udp(1, 2, 4);  // a UDP length below the datagram's is accepted
  shorter[14 + 20 + 5] = 10;
  const ParseResult r = parse_bytes(shorter);
  ASSERT_EQ(r.status, Status::flow);
  EXPECT_EQ(r.payload_length, 2u);
}

TEST(PacketParserMalformed, EveryReasonHasAUniqueName) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kMalformedCount; ++i) {
    const auto m = static_cast<Malformed>(i);
    const std::string_view n = to_string(m);
    EXPECT_TRUE(names.insert(n).second) << n;
    EXPECT_EQ(malformed_from_string(n), m);
  }
  EXPECT_EQ(to_string(static_cast<Malformed>(kMalformedCount)), "invalid");
  EXPECT_FALSE(malformed_from_string("bogus").has_value());
  EXPECT_EQ(to_string(Status::passthrough), "passthrough");
  EXPECT_EQ(to_string(Passthrough::other_l4), "other_l4");
}

// ---------------------------------------------------------------- truncation at every length

// Frames without padding: any cut loses bytes the headers promise, so every shorter
// length must be malformed, and the reason must name the layer the cut is in.
TEST(PacketParserTruncation, EveryLengthOfEveryPath) {
  std::vector<Bytes> frames;
  frames.push_back(ipv4_tcp(kTcpPsh | kTcpAck, 9));
  frames.push_back(ipv4_udp(1, 2, 5));
  frames.push_back(ipv6_udp(3));
  Bytes ext;
  ext.eth(0x88A8).vlan(1, 0x8100).vlan(2, kIpv6).ipv6(8 + 20 + 2, 60, 1, 2);
  ext.u8(kIpProtoTcp).u8(0).raw({1, 4, 0, 0, 0, 0}).tcp(1, 2, kTcpAck).zeros(2);
  frames.push_back(ext);
  Bytes opts;
  opts.eth(0x8100).vlan(3, kIpv4).ipv4(40 + 28, kIpProtoUdp, {1, 1, 1, 1}, {2, 2, 2, 2}, 10);
  opts.udp(1, 2, 28).zeros(20);
  frames.push_back(opts);

  for (std::size_t f = 0; f < frames.size(); ++f) {
    const Bytes& b = frames[f];
    const ParseResult full = parse_bytes(b);
    ASSERT_EQ(full.status, Status::flow) << "frame " << f << ": " << to_string(full.reason);
    for (std::size_t n = 0; n < b.size(); ++n) {
      const ParseResult r = parse_bytes(b, n);
      ASSERT_EQ(r.status, Status::malformed) << "frame " << f << " cut at " << n;
      if (n < 14) {
        EXPECT_EQ(r.reason, Malformed::eth_too_short);
      } else if (n < full.l3_offset) {
        EXPECT_EQ(r.reason, Malformed::vlan_truncated) << n;
      } else {
        // Past L2 the IP length field promises more than is there (or the IP header
        // itself is cut).
        const std::set<Malformed> ip_level = {Malformed::ipv4_truncated, Malformed::ipv6_truncated,
                                              Malformed::ip_length_exceeds_frame};
        EXPECT_TRUE(ip_level.count(r.reason))
            << "frame " << f << " cut at " << n << ": " << to_string(r.reason);
      }
    }
  }
}

// Frames whose IP length is cut to every value: the L4 reasons, never a read past it.
TEST(PacketParserTruncation, EveryIpLength) {
  for (std::uint8_t proto : {kIpProtoTcp, kIpProtoUdp}) {
    const Bytes full = proto == kIpProtoTcp ? ipv4_tcp(kTcpAck, 6) : ipv4_udp(1, 2, 18);
    const std::size_t header = proto == kIpProtoTcp ? 20 : 8;
    for (std::size_t l4 = 0; l4 <= full.size() - 34; ++l4) {
      Bytes b = full;
      b[16] = 0;
      b[17] = static_cast<std::uint8_t>(20 + l4);
      const ParseResult r = parse_bytes(b);
      if (l4 < header) {
        EXPECT_EQ(r.reason,
                  proto == kIpProtoTcp ? Malformed::tcp_truncated : Malformed::udp_truncated);
      } else if (proto == kIpProtoUdp && l4 < full.size() - 34) {
        EXPECT_EQ(r.reason, Malformed::udp_length_exceeds_ip) << l4;
      } else {
        ASSERT_EQ(r.status, Status::flow) << l4 << " " << to_string(r.reason);
        EXPECT_EQ(r.payload_offset + r.payload_length, 14 + 20 + l4);
      }
    }
  }
}

}  // namespace
}  // namespace ctxfwd
