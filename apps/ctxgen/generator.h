// ctxgen's engine: plans flows from a profile and a seed, interleaves their packets with
// malformed and passthrough frames, hands every frame to a sink and keeps the books the
// manifest is written from. The same profile and seed give the same frames, in the same
// order, with the same timestamps.
//
// The flow rule (what `Manifest::flows` counts; ctxfwd counts the same way):
//   a flow is a bidirectional 5-tuple (protocol, {address, port} x 2; VLAN tags are not
//   part of it) from its first valid packet up to and including a TCP packet with FIN or
//   RST. The next valid packet with that 5-tuple starts a NEW flow. UDP flows and TCP
//   flows without FIN/RST just stop ("idle"); the generator never sends on their 5-tuples
//   again. A closing flow sends exactly one FIN or RST, as its last packet, so the rule
//   never splits a flow (real TCP would answer a FIN with FIN/ACK). Malformed and
//   passthrough frames belong to no flow.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "frame_builder.h"
#include "malform.h"
#include "profiles.h"

namespace ctxgen {

/// What a frame is, in the generator's own bookkeeping.
enum class PacketClass : std::uint8_t { flow, passthrough, malformed };

/// How a flow ends.
enum class FlowEnd : std::uint8_t { fin, rst, idle };

/// The generator's account of one frame.
struct PacketRecord {
  std::uint64_t index = 0;  ///< position in the pcap, from 0
  std::uint64_t ts_us = 0;
  PacketClass cls = PacketClass::flow;
  MalformedKind malformed{};  ///< cls == malformed
  PassKind pass{};            ///< cls == passthrough
  // cls == flow:
  std::uint32_t flow_id = 0;  ///< flows are numbered by their first packet, from 0
  bool from_client = true;    ///< the first packet of a flow is from its client
  std::uint8_t ip_version = 0;
  std::uint8_t proto = 0;
  IpAddr src{};
  IpAddr dst{};
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint8_t tcp_flags = 0;
  std::uint32_t payload = 0;  ///< L4 payload bytes
};

/// Receives every frame in order.
class PacketSink {
 public:
  virtual ~PacketSink() = default;
  /// false stops the generator; `error` says why.
  virtual bool packet(std::span<const std::byte> frame, const PacketRecord& rec,
                      std::string* error) = 0;
};

/// One flow instance as written.
struct FlowSummary {
  std::uint32_t id = 0;
  std::uint8_t ip_version = 0;
  std::uint8_t proto = 0;
  std::uint8_t vlan_count = 0;
  std::uint8_t ipv6_ext_headers = 0;
  IpAddr client{};
  IpAddr server{};
  std::uint16_t client_port = 0;
  std::uint16_t server_port = 0;
  FlowEnd end = FlowEnd::idle;
  bool reused = false;  ///< its 5-tuple belonged to an earlier flow that ended
  std::uint32_t packets = 0;
  std::uint32_t client_packets = 0;
  std::uint64_t bytes = 0;
  std::uint64_t first_index = 0;
  std::uint64_t last_index = 0;
};

/// The books, kept while writing.
struct Manifest {
  std::string profile;
  std::uint64_t seed = 0;
  Profile settings;  ///< the profile with the command line's overrides
  std::uint64_t packets = 0;
  std::uint64_t flow_packets = 0;
  std::uint64_t passthrough_packets = 0;
  std::uint64_t malformed_packets = 0;
  std::uint64_t bytes = 0;
  std::uint64_t valid_bytes = 0;  ///< flow + passthrough frames
  std::uint64_t malformed_bytes = 0;
  std::array<std::uint64_t, kMalformedKinds> malformed_by_kind{};
  std::array<std::uint64_t, kPassKinds> passthrough_by_kind{};
  std::uint64_t flows = 0;
  std::uint64_t distinct_5tuples = 0;
  std::uint64_t max_open_flows = 0;  ///< most flows started and not ended at one time
  std::uint64_t tcp_syn = 0;
  std::uint64_t tcp_fin = 0;
  std::uint64_t tcp_rst = 0;
  std::uint64_t min_frame = 0;  ///< over valid frames, bytes in the pcap (no FCS)
  std::uint64_t max_frame = 0;
  std::array<std::uint64_t, 8> frame_size_histogram{};  ///< see kFrameBuckets
  std::uint64_t first_ts_us = 0;
  std::uint64_t last_ts_us = 0;
  std::vector<FlowSummary> flow_list;  ///< by id
};

/// Upper bounds (inclusive, wire bytes = pcap bytes + 4 for the FCS) of the frame size
/// histogram's buckets; the last bucket is everything larger.
inline constexpr std::array<std::uint32_t, 7> kFrameBuckets = {63, 64, 127, 255, 511, 1023, 1518};
/// Bucket labels, in order: "<64", "64", "65-127", ... ">1518".
std::span<const char* const> frame_bucket_names();

/// Generates the traffic of `profile` with `seed` into `sink`. false with `error` set when
/// the profile is invalid (see validate()), when its packet budget cannot carry its flows
/// (each flow needs 2 packets, a FIN-ended one 3), or when the sink fails.
bool generate(const Profile& profile, std::uint64_t seed, PacketSink& sink, Manifest& manifest,
              std::string* error);

/// "fin", "rst", "idle".
const char* name(FlowEnd end);

}  // namespace ctxgen
