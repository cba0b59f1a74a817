// A small hand-rolled frame writer for the parser's unit tests, independent of ctxgen's
// builder: tests state every header byte they depend on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace ctxfwd::testing {

class Bytes {
 public:
  Bytes& u8(std::uint8_t v) {
    b_.push_back(v);
    return *this;
  }
  Bytes& be16(std::uint16_t v) { return u8(static_cast<std::uint8_t>(v >> 8)).u8(v & 0xFF); }
  Bytes& be32(std::uint32_t v) {
    return be16(static_cast<std::uint16_t>(v >> 16)).be16(v & 0xFFFF);
  }
  Bytes& raw(std::initializer_list<std::uint8_t> bytes) {
    b_.insert(b_.end(), bytes);
    return *this;
  }
  Bytes& zeros(std::size_t n) {
    b_.insert(b_.end(), n, 0);
    return *this;
  }
  /// Ethernet header with fixed MACs and one ethertype (or a TPID, then call vlan()).
  Bytes& eth(std::uint16_t type) { return zeros(5).u8(2).zeros(5).u8(1).be16(type); }
  Bytes& vlan(std::uint16_t tci, std::uint16_t next) { return be16(tci).be16(next); }
  /// IPv4 header (no options unless ihl > 5: zero option bytes follow).
  Bytes& ipv4(std::uint16_t total, std::uint8_t proto, std::initializer_list<std::uint8_t> src,
              std::initializer_list<std::uint8_t> dst, std::uint8_t ihl = 5,
              std::uint16_t frag = 0) {
    u8(static_cast<std::uint8_t>(0x40 | ihl)).u8(0).be16(total).be16(1).be16(frag);
    u8(64).u8(proto).be16(0).raw(src).raw(dst);
    return ihl > 5 ? zeros((ihl - 5) * 4u) : *this;
  }
  /// IPv6 header; src and dst differ in their last byte only.
  Bytes& ipv6(std::uint16_t payload, std::uint8_t next, std::uint8_t src_last,
              std::uint8_t dst_last) {
    be32(0x60000000).be16(payload).u8(next).u8(64);
    raw({0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}).u8(src_last);
    raw({0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}).u8(dst_last);
    return *this;
  }
  Bytes& tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags, std::uint8_t doff = 5) {
    be16(sport).be16(dport).be32(1000).be32(2000);
    u8(static_cast<std::uint8_t>(doff << 4)).u8(flags).be16(8192).be16(0).be16(0);
    return doff > 5 ? zeros((doff - 5) * 4u) : *this;
  }
  Bytes& udp(std::uint16_t sport, std::uint16_t dport, std::uint16_t len) {
    return be16(sport).be16(dport).be16(len).be16(0);
  }

  std::size_t size() const { return b_.size(); }
  std::uint8_t& operator[](std::size_t i) { return b_[i]; }
  /// An exact-size heap copy of the first n bytes (ASan sees a read past it).
  std::vector<std::byte> frame(std::size_t n) const {
    std::vector<std::byte> f(n);
    for (std::size_t i = 0; i < n; ++i)
      f[i] = static_cast<std::byte>(b_[i]);
    return f;
  }
  std::vector<std::byte> frame() const { return frame(b_.size()); }

 private:
  std::vector<std::uint8_t> b_;
};

}  // namespace ctxfwd::testing
