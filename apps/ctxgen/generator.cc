#include "generator.h"

#include <algorithm>
#include <cmath>

namespace ctxgen {
namespace {

// 2023-11-14T22:13:20Z: a fixed start, so timestamps are part of "same seed, same bytes".
constexpr std::uint64_t kFirstTimestampUs = 1'700'000'000'000'000ull;

// Independent streams, so that e.g. a different payload size never shifts the flow plan.
constexpr std::uint64_t kPlanStream = 0x706C616E;
constexpr std::uint64_t kMixStream = 0x6D6978;
constexpr std::uint64_t kFrameStream = 0x6672616D65;

// The endpoints and the encapsulation of a 5-tuple; a reused 5-tuple keeps all of it.
struct Conversation {
  std::uint8_t ip_version = 4;
  std::uint8_t vlan_count = 0;
  std::uint8_t ipv6_ext_headers = 0;
  std::array<std::uint16_t, 2> vlan_tci{};
  IpAddr client{};
  IpAddr server{};
  std::uint16_t client_port = 0;
  std::uint16_t server_port = 0;
  Mac client_mac{};
  Mac server_mac{};
};

struct FlowState {
  // The plan.
  std::uint8_t proto = kIpProtoUdp;
  FlowEnd end = FlowEnd::idle;
  std::uint8_t ip_version = 4;
  std::uint8_t vlan_count = 0;
  std::uint8_t ipv6_ext_headers = 0;
  std::uint32_t length = 0;
  // The run.
  Conversation conv;
  bool reused = false;
  std::uint32_t sent = 0;
  std::uint32_t id = 0;
  std::uint32_t client_seq = 0;
  std::uint32_t server_seq = 0;
};

// One packet of a flow, before it becomes a frame.
struct Segment {
  bool from_client = true;
  std::uint8_t flags = 0;
  std::size_t payload = 0;
};

constexpr std::array<std::uint16_t, 5> kTcpServerPorts = {80, 443, 8080, 22, 5201};
constexpr std::array<std::uint16_t, 5> kUdpServerPorts = {53, 123, 443, 4789, 5353};
constexpr std::uint32_t kServers = 16;

class Engine {
 public:
  Engine(const Profile& p, std::uint64_t seed, PacketSink& sink, Manifest& m)
      : p_(p),
        sink_(sink),
        m_(m),
        plan_rng_(seed ^ kPlanStream),
        mix_rng_(seed ^ kMixStream),
        frame_rng_(seed ^ kFrameStream) {}

  bool run(std::string* error);

 private:
  bool plan(std::string* error);
  void plan_lengths(std::uint64_t flow_packets);
  void start_next_flow();
  Conversation new_conversation(const FlowState& f);
  std::size_t data_payload(const Conversation& c, std::uint8_t proto);
  Segment next_segment(const FlowState& f);
  void book_flow_packet(FlowState& f, const Segment& seg, std::size_t len);
  bool emit_flow_packet(std::size_t slot, std::string* error);
  bool emit_malformed(std::string* error);
  bool emit_passthrough(std::string* error);
  bool deliver(PacketRecord& rec, std::string* error);
  void count_valid_frame(std::size_t len);

  const Profile& p_;
  PacketSink& sink_;
  Manifest& m_;
  Rng plan_rng_;   // flow plan, conversations
  Rng mix_rng_;    // which record comes next, directions, sizes
  Rng frame_rng_;  // frame contents
  std::vector<FlowState> flows_;
  std::vector<std::uint32_t> active_;
  std::vector<Conversation> ended_;  // 5-tuples of FIN/RST-ended flows, free for reuse
  std::uint64_t next_start_ = 0;
  std::uint64_t new_conversations_ = 0;
  std::uint64_t open_flows_ = 0;
  std::uint64_t malformed_target_ = 0;
  std::uint64_t passthrough_target_ = 0;
  std::array<MalformedKind, kMalformedKinds> kind_order_{};
  std::uint64_t ts_us_ = kFirstTimestampUs;
  std::vector<std::byte> frame_;
};

std::uint32_t min_length(const FlowState& f) {
  return f.proto == kIpProtoTcp && f.end == FlowEnd::fin ? 3 : 2;
}

bool Engine::plan(std::string* error) {
  const std::uint64_t P = p_.packets;
  malformed_target_ = static_cast<std::uint64_t>(std::llround(P * p_.malformed_share));
  passthrough_target_ = static_cast<std::uint64_t>(std::llround(P * p_.passthrough_share));
  malformed_target_ = std::min(malformed_target_, P);
  passthrough_target_ = std::min(passthrough_target_, P - malformed_target_);
  const std::uint64_t flow_packets = P - malformed_target_ - passthrough_target_;

  flows_.resize(p_.flows);
  std::uint64_t needed = 0;
  for (FlowState& f : flows_) {
    f.proto = plan_rng_.chance(p_.tcp_share) ? kIpProtoTcp : kIpProtoUdp;
    if (f.proto == kIpProtoTcp) {
      const double u = plan_rng_.unit();
      f.end = u < p_.tcp_fin_share                      ? FlowEnd::fin
              : u < p_.tcp_fin_share + p_.tcp_rst_share ? FlowEnd::rst
                                                        : FlowEnd::idle;
    }
    f.ip_version = plan_rng_.chance(p_.ipv6_share) ? 6 : 4;
    const double v = plan_rng_.unit();
    f.vlan_count = v < p_.vlan_share ? 1 : v < p_.vlan_share + p_.qinq_share ? 2 : 0;
    f.ipv6_ext_headers = f.ip_version == 6 && plan_rng_.chance(p_.ipv6_ext_share) ? 1 : 0;
    f.length = min_length(f);
    needed += f.length;
  }
  if (flow_packets < needed || (p_.flows == 0 && flow_packets > 0)) {
    *error = "profile '" + p_.name + "': " + std::to_string(p_.flows) + " flows need " +
             (p_.flows == 0 ? std::string("no packets") : std::to_string(needed) + " packets") +
             " (2 each, 3 for a FIN-ended TCP flow), but " + std::to_string(P) + " packets less " +
             std::to_string(malformed_target_) + " malformed and " +
             std::to_string(passthrough_target_) + " passthrough leave " +
             std::to_string(flow_packets) + " for flows";
    return false;
  }
  plan_lengths(flow_packets - needed);
  for (std::size_t i = 0; i < kMalformedKinds; ++i)
    kind_order_[i] = static_cast<MalformedKind>(i);
  return true;
}

// Shares `extra` packets among the flows by heavy-tailed weights (Lomax, i.e. Pareto
// shifted to start at 0): many flows stay at their minimum, a few are long, and the total
// is exact.
void Engine::plan_lengths(std::uint64_t extra) {
  if (flows_.empty()) return;
  std::vector<double> weight(flows_.size());
  double total = 0;
  for (double& w : weight) {
    w = std::min(std::pow(1.0 - plan_rng_.unit(), -1.0 / p_.length_alpha) - 1.0, 1e4);
    total += w;
  }
  std::uint64_t given = 0;
  for (std::size_t i = 0; i < flows_.size() && total > 0; ++i) {
    const auto share = static_cast<std::uint64_t>(std::floor(extra * (weight[i] / total)));
    flows_[i].length += static_cast<std::uint32_t>(share);
    given += share;
  }
  // Rounding leaves fewer than one packet per flow: one each, from a random flow on.
  const std::uint64_t start = plan_rng_.below(flows_.size());
  for (std::uint64_t k = 0; given < extra; ++k, ++given) {
    ++flows_[(start + k) % flows_.size()].length;
  }
}

Conversation Engine::new_conversation(const FlowState& f) {
  // Client endpoints are unique by construction: the address from the counter's high
  // bits, the port's range from its low 4 bits. Servers are few and shared.
  const std::uint64_t c = new_conversations_++;
  const auto host = static_cast<std::uint32_t>((c >> 4) + 1);
  Conversation v;
  v.ip_version = f.ip_version;
  v.vlan_count = f.vlan_count;
  v.ipv6_ext_headers = f.ipv6_ext_headers;
  v.vlan_tci = {static_cast<std::uint16_t>(plan_rng_.range(1, 4094)),
                static_cast<std::uint16_t>(plan_rng_.range(1, 4094))};
  const auto server = static_cast<std::uint8_t>(plan_rng_.below(kServers));
  if (f.ip_version == 4) {
    v.client = {10, static_cast<std::uint8_t>(host >> 16), static_cast<std::uint8_t>(host >> 8),
                static_cast<std::uint8_t>(host)};
    // Half the servers sort below the clients, half above: both key orders occur.
    v.server = server % 2 == 0 ? IpAddr{172, 16, 0, static_cast<std::uint8_t>(server + 1)}
                               : IpAddr{9, 9, 9, static_cast<std::uint8_t>(server + 1)};
  } else {
    v.client = {0xfd, 0x00, 0xc0, 0xde};
    v.server = {0xfd, 0x00, static_cast<std::uint8_t>(server % 2 == 0 ? 0x5e : 0xf0), 0x00};
    for (int i = 0; i < 4; ++i)
      v.client[12 + i] = static_cast<std::uint8_t>(host >> (24 - 8 * i));
    v.server[15] = static_cast<std::uint8_t>(server + 1);
  }
  v.client_port = static_cast<std::uint16_t>(1024 + (c & 15) * 4000 + plan_rng_.below(4000));
  const auto& ports = f.proto == kIpProtoTcp ? kTcpServerPorts : kUdpServerPorts;
  v.server_port = ports[plan_rng_.below(ports.size())];
  v.client_mac = {0x02,
                  0xC1,
                  static_cast<std::uint8_t>(host >> 24),
                  static_cast<std::uint8_t>(host >> 16),
                  static_cast<std::uint8_t>(host >> 8),
                  static_cast<std::uint8_t>(host)};
  v.server_mac = {0x02, 0x5E, 0, 0, 0, static_cast<std::uint8_t>(server + 1)};
  return v;
}

void Engine::start_next_flow() {
  FlowState& f = flows_[next_start_];
  active_.push_back(static_cast<std::uint32_t>(next_start_++));
  if (f.proto == kIpProtoTcp && !ended_.empty() && plan_rng_.chance(p_.reuse_share)) {
    const std::size_t i = plan_rng_.below(ended_.size());
    f.conv = ended_[i];
    ended_[i] = ended_.back();
    ended_.pop_back();
    f.reused = true;
  } else {
    f.conv = new_conversation(f);
  }
  f.client_seq = static_cast<std::uint32_t>(plan_rng_.next());
  f.server_seq = static_cast<std::uint32_t>(plan_rng_.next());
}

// L4 payload for a data packet whose whole frame, tags included, is drawn from the size
// mix in wire bytes (64..1518, FCS included): the IP datagram is what is left.
std::size_t Engine::data_payload(const Conversation& c, std::uint8_t proto) {
  const double u = mix_rng_.unit();
  const std::uint64_t wire = u < p_.small_share                    ? mix_rng_.range(64, 127)
                             : u < p_.small_share + p_.large_share ? mix_rng_.range(1024, 1518)
                                                                   : mix_rng_.range(128, 1023);
  const std::size_t ip_len = wire - 4 - l2_length(c.vlan_count);
  const std::size_t headers =
      (c.ip_version == 4 ? 20 : 40 + 8u * c.ipv6_ext_headers) + l4_header_length(proto);
  return ip_len > headers ? ip_len - headers : 0;
}

// The next packet of a flow: its direction, TCP flags and payload size. TCP: SYN, SYN/ACK,
// data and ACKs, then one FIN/ACK or RST/ACK (or nothing: idle). UDP: client, server, then
// either way.
Segment Engine::next_segment(const FlowState& f) {
  const std::uint32_t k = f.sent;
  const bool last = k + 1 == f.length;
  Segment seg;
  seg.from_client = mix_rng_.chance(0.5);
  if (f.proto != kIpProtoTcp) {
    if (k < 2) seg.from_client = k == 0;  // both directions in every flow
    seg.payload = data_payload(f.conv, f.proto);
  } else if (k == 0) {
    seg.from_client = true;
    seg.flags = kTcpSyn;
  } else if (last && f.end != FlowEnd::idle) {
    if (k == 1) seg.from_client = false;  // a refused connection: the server resets
    seg.flags = (f.end == FlowEnd::fin ? kTcpFin : kTcpRst) | kTcpAck;
  } else if (k == 1) {
    seg.from_client = false;
    seg.flags = kTcpSyn | kTcpAck;
  } else {
    seg.payload = data_payload(f.conv, f.proto);
    seg.flags = seg.payload > 0 ? kTcpPsh | kTcpAck : kTcpAck;
  }
  return seg;
}

// The frame for `seg`; advances the sender's sequence number.
FrameSpec frame_spec(FlowState& f, const Segment& seg) {
  const Conversation& c = f.conv;
  const bool fc = seg.from_client;
  FrameSpec s;
  s.dst_mac = fc ? c.server_mac : c.client_mac;
  s.src_mac = fc ? c.client_mac : c.server_mac;
  s.vlan_count = c.vlan_count;
  s.vlan_tci = c.vlan_tci;
  s.ip_version = c.ip_version;
  s.src = fc ? c.client : c.server;
  s.dst = fc ? c.server : c.client;
  s.proto = f.proto;
  s.ip_id = static_cast<std::uint16_t>(f.sent);
  s.ipv6_ext_headers = c.ipv6_ext_headers;
  s.src_port = fc ? c.client_port : c.server_port;
  s.dst_port = fc ? c.server_port : c.client_port;
  s.tcp_flags = seg.flags;
  std::uint32_t& own_seq = fc ? f.client_seq : f.server_seq;
  s.tcp_seq = own_seq;
  s.tcp_ack = (seg.flags & kTcpAck) != 0 ? (fc ? f.server_seq : f.client_seq) : 0;
  s.payload = seg.payload;
  own_seq +=
      static_cast<std::uint32_t>(seg.payload) + ((seg.flags & (kTcpSyn | kTcpFin)) != 0 ? 1 : 0);
  return s;
}

FlowSummary new_summary(const FlowState& f, std::uint64_t first_index) {
  const Conversation& c = f.conv;
  FlowSummary sum;
  sum.id = f.id;
  sum.ip_version = c.ip_version;
  sum.proto = f.proto;
  sum.vlan_count = c.vlan_count;
  sum.ipv6_ext_headers = c.ipv6_ext_headers;
  sum.client = c.client;
  sum.server = c.server;
  sum.client_port = c.client_port;
  sum.server_port = c.server_port;
  sum.end = f.end;
  sum.reused = f.reused;
  sum.first_index = first_index;
  return sum;
}

// The books for one flow packet of `len` bytes; a flow gets its id at its first packet.
void Engine::book_flow_packet(FlowState& f, const Segment& seg, std::size_t len) {
  if (f.sent == 0) {
    f.id = static_cast<std::uint32_t>(m_.flows++);
    m_.distinct_5tuples += f.reused ? 0 : 1;
    m_.max_open_flows = std::max(m_.max_open_flows, ++open_flows_);
    m_.flow_list.push_back(new_summary(f, m_.packets));
  }
  FlowSummary& sum = m_.flow_list[f.id];
  ++sum.packets;
  sum.client_packets += seg.from_client ? 1 : 0;
  sum.bytes += len;
  sum.last_index = m_.packets;
  m_.tcp_syn += (seg.flags & kTcpSyn) != 0 ? 1 : 0;
  m_.tcp_fin += (seg.flags & kTcpFin) != 0 ? 1 : 0;
  m_.tcp_rst += (seg.flags & kTcpRst) != 0 ? 1 : 0;
  ++m_.flow_packets;
  count_valid_frame(len);
}

bool Engine::emit_flow_packet(std::size_t slot, std::string* error) {
  FlowState& f = flows_[active_[slot]];
  const Segment seg = next_segment(f);
  const FrameSpec s = frame_spec(f, seg);
  build_ip_frame(s, frame_rng_, frame_);
  book_flow_packet(f, seg, frame_.size());

  PacketRecord rec;
  rec.cls = PacketClass::flow;
  rec.flow_id = f.id;
  rec.from_client = seg.from_client;
  rec.ip_version = s.ip_version;
  rec.proto = s.proto;
  rec.src = s.src;
  rec.dst = s.dst;
  rec.src_port = s.src_port;
  rec.dst_port = s.dst_port;
  rec.tcp_flags = seg.flags;
  rec.payload = static_cast<std::uint32_t>(seg.payload);

  if (++f.sent == f.length) {  // the flow is done: free its slot, offer its 5-tuple
    if (f.end != FlowEnd::idle) {
      --open_flows_;
      ended_.push_back(f.conv);
    }
    active_[slot] = active_.back();
    active_.pop_back();
  }
  return deliver(rec, error);
}

bool Engine::emit_malformed(std::string* error) {
  // Kinds in a freshly shuffled order every round, so every kind appears once the
  // malformed count reaches the number of kinds.
  const std::uint64_t n = m_.malformed_packets;
  if (n % kMalformedKinds == 0) {
    for (std::size_t i = kMalformedKinds - 1; i > 0; --i) {
      std::swap(kind_order_[i], kind_order_[mix_rng_.below(i + 1)]);
    }
  }
  PacketRecord rec;
  rec.cls = PacketClass::malformed;
  rec.malformed = kind_order_[n % kMalformedKinds];
  make_malformed(rec.malformed, frame_rng_, frame_);
  ++m_.malformed_packets;
  ++m_.malformed_by_kind[static_cast<std::size_t>(rec.malformed)];
  m_.malformed_bytes += frame_.size();
  return deliver(rec, error);
}

bool Engine::emit_passthrough(std::string* error) {
  PacketRecord rec;
  rec.cls = PacketClass::passthrough;
  const double u = mix_rng_.unit();
  rec.pass = u < 0.4 ? PassKind::arp : u < 0.7 ? PassKind::icmp : PassKind::icmpv6;
  make_passthrough(rec.pass, frame_rng_, frame_);
  ++m_.passthrough_packets;
  ++m_.passthrough_by_kind[static_cast<std::size_t>(rec.pass)];
  count_valid_frame(frame_.size());
  return deliver(rec, error);
}

void Engine::count_valid_frame(std::size_t len) {
  m_.valid_bytes += len;
  m_.min_frame = m_.min_frame == 0 ? len : std::min<std::uint64_t>(m_.min_frame, len);
  m_.max_frame = std::max<std::uint64_t>(m_.max_frame, len);
  std::size_t b = 0;
  while (b < kFrameBuckets.size() && len + 4 > kFrameBuckets[b])
    ++b;
  ++m_.frame_size_histogram[b];
}

bool Engine::deliver(PacketRecord& rec, std::string* error) {
  rec.index = m_.packets++;
  rec.ts_us = ts_us_;
  if (rec.index == 0) m_.first_ts_us = ts_us_;
  m_.last_ts_us = ts_us_;
  m_.bytes += frame_.size();
  if (p_.mean_gap_us > 0) ts_us_ += mix_rng_.range(1, 2ull * p_.mean_gap_us - 1);
  return sink_.packet(frame_, rec, error);
}

bool Engine::run(std::string* error) {
  if (!plan(error)) return false;
  m_.flow_list.reserve(flows_.size());
  std::uint64_t left = p_.packets;
  std::uint64_t malformed_left = malformed_target_;
  std::uint64_t passthrough_left = passthrough_target_;
  // Selection sampling: each class keeps its exact count, at uniformly random positions.
  for (; left > 0; --left) {
    const std::uint64_t r = mix_rng_.below(left);
    bool ok = false;
    if (r < malformed_left) {
      --malformed_left;
      ok = emit_malformed(error);
    } else if (r < malformed_left + passthrough_left) {
      --passthrough_left;
      ok = emit_passthrough(error);
    } else {
      while (active_.size() < p_.concurrency && next_start_ < flows_.size())
        start_next_flow();
      ok = emit_flow_packet(mix_rng_.below(active_.size()), error);
    }
    if (!ok) return false;
  }
  return true;
}

constexpr const char* kBucketNames[] = {"<64",     "64",       "65-127",    "128-255",
                                        "256-511", "512-1023", "1024-1518", ">1518"};
static_assert(std::size(kBucketNames) == kFrameBuckets.size() + 1);

}  // namespace

std::span<const char* const> frame_bucket_names() {
  return kBucketNames;
}

const char* name(FlowEnd end) {
  switch (end) {
    case FlowEnd::fin:
      return "fin";
    case FlowEnd::rst:
      return "rst";
    case FlowEnd::idle:
      return "idle";
  }
  return "invalid";
}

bool generate(const Profile& profile, std::uint64_t seed, PacketSink& sink, Manifest& manifest,
              std::string* error) {
  manifest = Manifest{};
  manifest.profile = profile.name;
  manifest.seed = seed;
  manifest.settings = profile;
  if (std::string why = validate(profile); !why.empty()) {
    *error = "profile '" + profile.name + "': " + why;
    return false;
  }
  Engine engine(profile, seed, sink, manifest);
  return engine.run(error);
}

}  // namespace ctxgen
