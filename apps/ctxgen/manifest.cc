#include "manifest.h"

#include <algorithm>
#include <cstdio>

#include "json_writer.h"

namespace ctxgen {
namespace {

constexpr const char* kFlowRule =
    "A flow is a bidirectional 5-tuple (protocol, two address:port endpoints; VLAN tags not "
    "included) from its first valid packet up to and including a TCP packet with FIN or RST; "
    "the next valid packet with that 5-tuple starts a new flow. UDP flows and TCP flows "
    "without FIN/RST go idle and their 5-tuples are never sent again. Malformed and "
    "passthrough packets belong to no flow.";

const char* proto_name(std::uint8_t proto) {
  return proto == kIpProtoTcp ? "tcp" : "udp";
}

void write_settings(JsonWriter& j, const Profile& p) {
  j.begin_object("settings");
  j.value("flows", p.flows);
  j.value("packets", p.packets);
  j.value("malformed_share", p.malformed_share);
  j.value("passthrough_share", p.passthrough_share);
  j.value("concurrency", std::uint64_t{p.concurrency});
  j.value("tcp_share", p.tcp_share);
  j.value("tcp_fin_share", p.tcp_fin_share);
  j.value("tcp_rst_share", p.tcp_rst_share);
  j.value("reuse_share", p.reuse_share);
  j.value("ipv6_share", p.ipv6_share);
  j.value("ipv6_ext_share", p.ipv6_ext_share);
  j.value("vlan_share", p.vlan_share);
  j.value("qinq_share", p.qinq_share);
  j.value("length_alpha", p.length_alpha);
  j.value("small_share", p.small_share);
  j.value("large_share", p.large_share);
  j.value("mean_gap_us", std::uint64_t{p.mean_gap_us});
  j.end_object();
}

struct FlowTotals {
  std::uint64_t tcp = 0, udp = 0, ipv4 = 0, ipv6 = 0, ipv6_ext = 0;
  std::uint64_t vlan[3] = {0, 0, 0};
  std::uint64_t fin = 0, rst = 0, idle = 0, reused = 0;
  std::uint64_t min_packets = 0, max_packets = 0;
};

FlowTotals totals(const Manifest& m) {
  FlowTotals t;
  for (const FlowSummary& f : m.flow_list) {
    (f.proto == kIpProtoTcp ? t.tcp : t.udp) += 1;
    (f.ip_version == 4 ? t.ipv4 : t.ipv6) += 1;
    t.ipv6_ext += f.ipv6_ext_headers > 0 ? 1 : 0;
    t.vlan[f.vlan_count] += 1;
    (f.end == FlowEnd::fin ? t.fin : f.end == FlowEnd::rst ? t.rst : t.idle) += 1;
    t.reused += f.reused ? 1 : 0;
    t.min_packets =
        t.min_packets == 0 ? f.packets : std::min<std::uint64_t>(t.min_packets, f.packets);
    t.max_packets = std::max<std::uint64_t>(t.max_packets, f.packets);
  }
  return t;
}

void write_flow_stats(JsonWriter& j, const Manifest& m) {
  const FlowTotals t = totals(m);
  j.begin_object("flow_stats");
  j.value("tcp", t.tcp);
  j.value("udp", t.udp);
  j.value("ipv4", t.ipv4);
  j.value("ipv6", t.ipv6);
  j.value("ipv6_with_ext_header", t.ipv6_ext);
  j.value("untagged", t.vlan[0]);
  j.value("one_vlan_tag", t.vlan[1]);
  j.value("two_vlan_tags", t.vlan[2]);
  j.value("ended_fin", t.fin);
  j.value("ended_rst", t.rst);
  j.value("idle", t.idle);
  j.value("reused_5tuple", t.reused);
  j.value("max_open", m.max_open_flows);
  j.value("open_at_end", t.idle);
  j.end_object();

  // Exact distribution: packets per flow -> number of flows, ascending.
  std::vector<std::uint64_t> hist(t.max_packets + 1, 0);
  for (const FlowSummary& f : m.flow_list)
    ++hist[f.packets];
  j.begin_object("packets_per_flow");
  j.value("min", t.min_packets);
  j.value("max", t.max_packets);
  j.value("mean", m.flows == 0 ? 0.0 : static_cast<double>(m.flow_packets) / m.flows);
  j.begin_object("histogram");
  for (std::size_t n = 0; n < hist.size(); ++n) {
    if (hist[n] != 0) j.value(std::to_string(n), hist[n]);
  }
  j.end_object();
  j.end_object();
}

void write_flow_list(JsonWriter& j, const Manifest& m) {
  j.begin_array("flow_list");
  for (const FlowSummary& f : m.flow_list) {
    j.begin_object();
    j.value("id", std::uint64_t{f.id});
    j.value("proto", proto_name(f.proto));
    j.value("ip_version", std::uint64_t{f.ip_version});
    j.value("client", address_text(f.client, f.ip_version));
    j.value("client_port", std::uint64_t{f.client_port});
    j.value("server", address_text(f.server, f.ip_version));
    j.value("server_port", std::uint64_t{f.server_port});
    j.value("vlan_tags", std::uint64_t{f.vlan_count});
    j.value("ipv6_ext_headers", std::uint64_t{f.ipv6_ext_headers});
    j.value("end", name(f.end));
    j.value("reused_5tuple", f.reused);
    j.value("packets", std::uint64_t{f.packets});
    j.value("client_packets", std::uint64_t{f.client_packets});
    j.value("bytes", f.bytes);
    j.value("first_index", f.first_index);
    j.value("last_index", f.last_index);
    j.end_object();
  }
  j.end_array();
}

}  // namespace

std::string address_text(const IpAddr& a, std::uint8_t ip_version) {
  char buf[48];
  if (ip_version == 4) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
  } else {
    std::snprintf(buf, sizeof buf, "%x:%x:%x:%x:%x:%x:%x:%x", a[0] << 8 | a[1], a[2] << 8 | a[3],
                  a[4] << 8 | a[5], a[6] << 8 | a[7], a[8] << 8 | a[9], a[10] << 8 | a[11],
                  a[12] << 8 | a[13], a[14] << 8 | a[15]);
  }
  return buf;
}

std::string manifest_path_for(const std::string& pcap_path) {
  const std::string ext = ".pcap";
  if (pcap_path.size() > ext.size() &&
      pcap_path.compare(pcap_path.size() - ext.size(), ext.size(), ext) == 0) {
    return pcap_path.substr(0, pcap_path.size() - ext.size()) + ".manifest.json";
  }
  return pcap_path + ".manifest.json";
}

std::string manifest_json(const Manifest& m, const std::string& pcap_name,
                          std::uint64_t flow_list_limit) {
  JsonWriter j;
  j.begin_object();
  j.value("generator", "ctxgen");
  j.value("format", kManifestFormat);
  j.value("pcap", pcap_name);
  j.value("profile", m.profile);
  j.value("seed", m.seed);
  j.value("flow_rule", kFlowRule);
  j.value("packets", m.packets);
  j.value("valid_packets", m.flow_packets + m.passthrough_packets);
  j.value("flow_packets", m.flow_packets);
  j.value("passthrough_packets", m.passthrough_packets);
  j.value("malformed_packets", m.malformed_packets);
  j.value("bytes", m.bytes);
  j.value("valid_bytes", m.valid_bytes);
  j.value("malformed_bytes", m.malformed_bytes);
  j.value("flows", m.flows);
  j.value("distinct_5tuples", m.distinct_5tuples);
  j.begin_object("malformed_by_kind");
  for (std::size_t k = 0; k < kMalformedKinds; ++k) {
    j.value(name(static_cast<MalformedKind>(k)), m.malformed_by_kind[k]);
  }
  j.end_object();
  j.begin_object("passthrough_by_kind");
  for (std::size_t k = 0; k < kPassKinds; ++k) {
    j.value(name(static_cast<PassKind>(k)), m.passthrough_by_kind[k]);
  }
  j.end_object();
  write_flow_stats(j, m);
  j.begin_object("tcp_flags");
  j.value("syn", m.tcp_syn);
  j.value("fin", m.tcp_fin);
  j.value("rst", m.tcp_rst);
  j.end_object();
  j.begin_object("valid_frame_sizes");
  j.value("min_bytes", m.min_frame);
  j.value("max_bytes", m.max_frame);
  j.begin_object("wire_histogram");
  const auto names = frame_bucket_names();
  for (std::size_t b = 0; b < names.size(); ++b)
    j.value(names[b], m.frame_size_histogram[b]);
  j.end_object();
  j.end_object();
  j.value("first_ts_us", m.first_ts_us);
  j.value("last_ts_us", m.last_ts_us);
  write_settings(j, m.settings);
  if (m.flow_list.size() <= flow_list_limit) {
    write_flow_list(j, m);
  } else {
    j.value("flow_list_omitted", std::to_string(m.flow_list.size()) + " flows > limit " +
                                     std::to_string(flow_list_limit) + " (--flow-list-limit)");
  }
  j.end_object();
  return j.text();
}

}  // namespace ctxgen
