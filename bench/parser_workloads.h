// Header parsing per packet, over the frames of a ctxgen `churn` capture (1,024 frames,
// valid and malformed mixed as the profile has them), three ways:
//   ctxfwd_parse   ctxfwd::parse: every check, the flow key, direction, flags, payload;
//   dpdk_ptype     DPDK's software classifier rte_net_get_ptype() on an mbuf over the same
//                  bytes, then the 5-tuple read at the offsets it reports (what ctxfwd
//                  could use instead);
//   unchecked      the floor: the ethertype, addresses and ports read at fixed offsets,
//                  no length checks at all (only safe because every frame sits in a 2 KiB
//                  slot here).
// Shared by bench_parser (time) and callgrind_parser (instructions), so both measure the
// same loops.
#pragma once

#include <rte_mbuf.h>
#include <rte_net.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "generator.h"
#include "packet_parser.h"

namespace ctxalloc::bench {

inline constexpr std::size_t kParserFrames = 1024;
inline constexpr std::size_t kFrameSlot = 2048;

struct FrameSet {
  std::vector<std::byte> slots;  // frame i at i * kFrameSlot, zero-filled behind it
  std::vector<std::uint32_t> lengths;
  std::vector<rte_mbuf> mbufs;  // single-segment mbufs over the same slots
};

/// The first kParserFrames frames of a churn capture with seed 1.
inline FrameSet make_parser_frames() {
  struct Collect : ctxgen::PacketSink {
    FrameSet* fs;
    bool packet(std::span<const std::byte> f, const ctxgen::PacketRecord& r,
                std::string*) override {
      std::memcpy(fs->slots.data() + r.index * kFrameSlot, f.data(), f.size());
      fs->lengths.push_back(static_cast<std::uint32_t>(f.size()));
      return true;
    }
  };
  FrameSet fs;
  fs.slots.assign(kParserFrames * kFrameSlot, std::byte{0});
  ctxgen::Profile p = *ctxgen::find_profile("churn");
  p.packets = kParserFrames;
  p.flows = kParserFrames / 10;
  Collect sink;
  sink.fs = &fs;
  ctxgen::Manifest m;
  std::string error;
  if (!ctxgen::generate(p, 1, sink, m, &error)) std::abort();
  fs.mbufs.resize(kParserFrames);
  for (std::size_t i = 0; i < kParserFrames; ++i) {
    rte_mbuf& mb = fs.mbufs[i];
    std::memset(&mb, 0, sizeof mb);
    mb.buf_addr = fs.slots.data() + i * kFrameSlot;
    mb.buf_len = kFrameSlot;
    mb.data_off = 0;
    mb.data_len = static_cast<std::uint16_t>(fs.lengths[i]);
    mb.pkt_len = fs.lengths[i];
    mb.nb_segs = 1;
  }
  return fs;
}

inline std::uint64_t ctxfwd_parse_loop(const FrameSet& fs, std::uint64_t n) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::size_t k = i % kParserFrames;
    const ctxfwd::ParseResult r = ctxfwd::parse(fs.slots.data() + k * kFrameSlot, fs.lengths[k]);
    acc += static_cast<std::uint64_t>(r.status) + r.key.port_lo + r.key.addr_lo[3] + r.reversed;
  }
  return acc;
}

inline std::uint16_t rd16(const std::byte* p) {
  return static_cast<std::uint16_t>(static_cast<std::uint8_t>(p[0]) << 8 |
                                    static_cast<std::uint8_t>(p[1]));
}

inline std::uint64_t dpdk_ptype_loop(const FrameSet& fs, std::uint64_t n) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::size_t k = i % kParserFrames;
    const rte_mbuf& mb = fs.mbufs[k];
    rte_net_hdr_lens hl;
    const std::uint32_t pt = rte_net_get_ptype(&mb, &hl, RTE_PTYPE_ALL_MASK);
    acc += pt;
    const std::uint32_t l4 = pt & RTE_PTYPE_L4_MASK;
    if (l4 != RTE_PTYPE_L4_TCP && l4 != RTE_PTYPE_L4_UDP) continue;
    const std::byte* f = fs.slots.data() + k * kFrameSlot;
    const std::byte* ip = f + hl.l2_len;
    const bool v4 = RTE_ETH_IS_IPV4_HDR(pt);
    acc +=
        static_cast<std::uint8_t>(ip[v4 ? 15 : 23]) + static_cast<std::uint8_t>(ip[v4 ? 19 : 39]);
    acc += rd16(ip + hl.l3_len) + rd16(ip + hl.l3_len + 2);
  }
  return acc;
}

inline std::uint64_t unchecked_loop(const FrameSet& fs, std::uint64_t n) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::byte* f = fs.slots.data() + (i % kParserFrames) * kFrameSlot;
    std::size_t off = 12;
    std::uint16_t type = rd16(f + off);
    if (type == 0x88A8 || type == 0x8100) type = rd16(f + (off += 4));
    if (type == 0x8100) type = rd16(f + (off += 4));
    const std::byte* ip = f + off + 2;
    const bool v4 = type == 0x0800;
    const std::byte* l4 = ip + (v4 ? 20 : 40);
    acc +=
        static_cast<std::uint8_t>(ip[v4 ? 15 : 23]) + static_cast<std::uint8_t>(ip[v4 ? 19 : 39]);
    acc += rd16(l4) + rd16(l4 + 2) + type;
  }
  return acc;
}

}  // namespace ctxalloc::bench
