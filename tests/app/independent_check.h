// An independent, minimal reading of ctxgen's frames for the manifest test: written apart
// from ctxfwd's parser (no shared code, simpler rules: it only needs valid / passthrough /
// malformed, the 5-tuple and the TCP flags), so that the manifest is checked against
// something that is neither the generator nor the parser under test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ctxgen::testing {

struct Seen {
  enum Class { flow, passthrough, malformed } cls = malformed;
  std::string key;  // "proto|lo-endpoint|hi-endpoint" as text
  std::uint8_t proto = 0;
  std::uint8_t ip_version = 0;
  unsigned vlans = 0;
  std::uint8_t tcp_flags = 0;
};

inline Seen look_at(const std::uint8_t* p, std::size_t n) {
  Seen s;
  auto rd16 = [&](std::size_t at) { return static_cast<unsigned>(p[at] << 8 | p[at + 1]); };
  if (n < 14) return s;
  std::size_t at = 12;
  unsigned type = rd16(at);
  while (type == 0x8100 || type == 0x88A8 || type == 0x9100) {
    if (s.vlans == 2 || at + 6 > n) return s;
    at += 4;
    ++s.vlans;
    type = rd16(at);
  }
  at += 2;
  if (type == 0x0806 || type == 0x8035 || type == 0x8809 || type == 0x88CC || type == 0x88F7) {
    s.cls = Seen::passthrough;
    return s;
  }
  std::size_t l4 = 0, end = 0, alen = 0, src = 0, dst = 0;
  unsigned proto = 0;
  if (type == 0x0800) {
    if (at + 20 > n || (p[at] >> 4) != 4) return s;
    const std::size_t hl = (p[at] & 15u) * 4u;
    const std::size_t total = rd16(at + 2);
    if (hl < 20 || at + total > n || total < hl || (rd16(at + 6) & 0x1FFF) != 0) return s;
    proto = p[at + 9];
    src = at + 12;
    dst = at + 16;
    alen = 4;
    l4 = at + hl;
    end = at + total;
    s.ip_version = 4;
  } else if (type == 0x86DD) {
    if (at + 40 > n || (p[at] >> 4) != 6) return s;
    end = at + 40 + rd16(at + 4);
    if (end > n) return s;
    proto = p[at + 6];
    src = at + 8;
    dst = at + 24;
    alen = 16;
    l4 = at + 40;
    for (int count = 0; proto == 0 || proto == 43 || proto == 44 || proto == 51 || proto == 60;) {
      if (++count > 8 || l4 + 2 > end) return s;
      const std::size_t len = proto == 44   ? 8
                              : proto == 51 ? (p[l4 + 1] + 2u) * 4
                                            : (p[l4 + 1] + 1u) * 8;
      if (l4 + len > end || (proto == 44 && (rd16(l4 + 2) >> 3) != 0)) return s;
      proto = p[l4];
      l4 += len;
    }
    s.ip_version = 6;
  } else {
    return s;
  }
  if (proto == 6) {
    if (l4 + 20 > end) return s;
    const std::size_t doff = (p[l4 + 12] >> 4) * 4u;
    if (doff < 20 || l4 + doff > end) return s;
    s.tcp_flags = p[l4 + 13];
  } else if (proto == 17) {
    if (l4 + 8 > end) return s;
    const std::size_t ulen = rd16(l4 + 4);
    if (ulen < 8 || l4 + ulen > end) return s;
  } else {
    s.cls = Seen::passthrough;
    return s;
  }
  auto endpoint = [&](std::size_t addr, std::size_t port) {
    std::string e;
    for (std::size_t i = 0; i < alen; ++i)
      e += std::to_string(p[addr + i]) + ".";
    return e + ":" + std::to_string(rd16(port) + 100000);  // fixed width: compares as a number
  };
  std::string a = endpoint(src, l4);
  std::string b = endpoint(dst, l4 + 2);
  if (b < a) std::swap(a, b);
  s.key = std::to_string(proto) + "|" + a + "|" + b;
  s.proto = static_cast<std::uint8_t>(proto);
  s.cls = Seen::flow;
  return s;
}

}  // namespace ctxgen::testing
