// libFuzzer target for ctxfwd::parse. Built as a fuzzer only by clang with
// -fsanitize=fuzzer (the asan variant); the same function is replayed over the committed
// corpus with fixed-seed mutations by tests/app/parser_fuzz_replay_test.cc in every variant.
//
// Beyond "no out-of-bounds read" (ASan sees it: the input is an exact-size heap copy), it
// checks what the parser promises and aborts on a violation:
//   - the verdict's fields agree (a reason only when malformed, a key only for flows);
//   - every offset and the payload span lie inside the frame, in header order;
//   - swapping source and destination (addresses and ports) gives the same key with the
//     direction bit flipped: both directions of a flow are one flow.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "packet_parser.h"

namespace {

[[noreturn]] void violated(const char* what, std::size_t len) {
  std::fprintf(stderr, "packet_parser_fuzz: %s (frame of %zu bytes)\n", what, len);
  std::abort();
}

void check_fields(const ctxfwd::ParseResult& r, std::size_t len) {
  using ctxfwd::Status;
  if (r.vlan_tags > 2) violated("more than two VLAN tags parsed", len);
  if ((r.status == Status::malformed) != (r.reason != ctxfwd::Malformed::none)) {
    violated("a reason without malformed status or the reverse", len);
  }
  if ((r.status == Status::passthrough) != (r.pass != ctxfwd::Passthrough::none)) {
    violated("a passthrough kind without passthrough status or the reverse", len);
  }
  if (r.status != Status::flow) return;
  const auto& k = r.key;
  if (k.proto != ctxfwd::kIpProtoTcp && k.proto != ctxfwd::kIpProtoUdp) violated("key proto", len);
  if (k.ip_version != 4 && k.ip_version != 6) violated("key IP version", len);
  if (k.reserved[0] != 0 || k.reserved[1] != 0) violated("key padding not zero", len);
  if (!(r.l3_offset < r.l4_offset && r.l4_offset < r.payload_offset)) {
    violated("offsets out of header order", len);
  }
  if (r.payload_offset > len || r.payload_length > len - r.payload_offset) {
    violated("payload span outside the frame", len);
  }
}

// Swaps n bytes at a and b.
void swap_bytes(std::byte* a, std::byte* b, std::size_t n) {
  std::byte tmp[16];
  std::memcpy(tmp, a, n);
  std::memcpy(a, b, n);
  std::memcpy(b, tmp, n);
}

void check_symmetry(const ctxfwd::ParseResult& r, const std::byte* frame, std::size_t len) {
  std::vector<std::byte> mirror(frame, frame + len);
  const bool v4 = r.key.ip_version == 4;
  std::byte* ip = mirror.data() + r.l3_offset;
  swap_bytes(ip + (v4 ? 12 : 8), ip + (v4 ? 16 : 24), v4 ? 4 : 16);
  swap_bytes(mirror.data() + r.l4_offset, mirror.data() + r.l4_offset + 2, 2);
  const ctxfwd::ParseResult m = ctxfwd::parse(mirror.data(), mirror.size());
  if (m.status != ctxfwd::Status::flow) violated("the mirrored packet is no flow packet", len);
  if (!(m.key == r.key)) violated("the mirrored packet has another key", len);
  const bool same_endpoints = r.key.addr_lo == r.key.addr_hi && r.key.port_lo == r.key.port_hi;
  if (!same_endpoints && m.reversed == r.reversed) violated("direction bit not flipped", len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exact-size copy, so that ASan flags a read one byte past the frame.
  std::vector<std::byte> frame(size);
  if (size != 0) std::memcpy(frame.data(), data, size);
  const ctxfwd::ParseResult r = ctxfwd::parse(frame.data(), frame.size());
  check_fields(r, size);
  if (r.status == ctxfwd::Status::flow) check_symmetry(r, frame.data(), frame.size());
  return 0;
}
