// The traffic generator: determinism, pcap files that libpcap reads, a manifest that an
// independent reading of the pcap confirms, ctxfwd's parser agreeing with the generator's
// own account of every frame, and the command line.
#include <gtest/gtest.h>
#include <jansson.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "generator.h"
#include "independent_check.h"
#include "manifest.h"
#include "output.h"
#include "packet_parser.h"
#include "support/test_scale.h"

namespace ctxgen {
namespace {

using ctxalloc::testing::test_seed;

// ---------------------------------------------------------------- helpers

struct MemorySink : PacketSink {
  std::vector<std::vector<std::byte>> frames;
  std::vector<PacketRecord> records;
  bool packet(std::span<const std::byte> frame, const PacketRecord& rec, std::string*) override {
    frames.emplace_back(frame.begin(), frame.end());
    records.push_back(rec);
    return true;
  }
};

struct Generated {
  MemorySink sink;
  Manifest manifest;
};

Profile profile(const char* name) {
  const Profile* p = find_profile(name);
  EXPECT_NE(p, nullptr) << name;
  return p != nullptr ? *p : Profile{};
}

// The big profiles shrunk tenfold, so that every variant's test stays quick.
Profile quick(const char* name) {
  Profile p = profile(name);
  if (p.packets > 20000) {
    p.packets /= 10;
    p.flows /= 10;
  }
  return p;
}

std::unique_ptr<Generated> generate_in_memory(const Profile& p, std::uint64_t seed) {
  auto g = std::make_unique<Generated>();
  std::string error;
  EXPECT_TRUE(generate(p, seed, g->sink, g->manifest, &error)) << error;
  return g;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "ctxgen_test_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << std::strerror(errno);
    path_ = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool exists(const std::string& path) {
  return access(path.c_str(), F_OK) == 0;
}

struct JsonDeleter {
  void operator()(json_t* j) const { json_decref(j); }
};
using Json = std::unique_ptr<json_t, JsonDeleter>;

Json load_json(const std::string& path) {
  json_error_t err;
  Json j(json_load_file(path.c_str(), 0, &err));
  EXPECT_TRUE(j) << path << ":" << err.line << ": " << err.text;
  return j;
}

// An integer member (nested with "a/b"), -1 when missing or not an integer.
long long jint(json_t* root, const std::string& path) {
  json_t* cur = root;
  std::size_t start = 0;
  while (cur != nullptr) {
    const std::size_t slash = path.find('/', start);
    cur = json_object_get(cur, path.substr(start, slash - start).c_str());
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return json_is_integer(cur) ? json_integer_value(cur) : -1;
}

// Every record of a pcap file, read with libpcap.
struct PcapContents {
  int link_type = -1;
  int snaplen = -1;
  int major = -1;
  int minor = -1;
  std::vector<std::vector<std::uint8_t>> frames;
  std::vector<std::uint64_t> ts_us;
  bool whole = true;  // every record's captured length equals its original length
};

PcapContents read_pcap(const std::string& path) {
  PcapContents c;
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  if (p == nullptr) {
    ADD_FAILURE() << "pcap_open_offline: " << err;
    return c;
  }
  c.link_type = pcap_datalink(p);
  c.snaplen = pcap_snapshot(p);
  c.major = pcap_major_version(p);
  c.minor = pcap_minor_version(p);
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
    c.frames.emplace_back(data, data + h->caplen);
    c.ts_us.push_back(static_cast<std::uint64_t>(h->ts.tv_sec) * 1000000 + h->ts.tv_usec);
    c.whole = c.whole && h->caplen == h->len;
  }
  EXPECT_EQ(rc, PCAP_ERROR_BREAK) << "pcap_next_ex: " << pcap_geterr(p);
  pcap_close(p);
  return c;
}

bool write_files(const Profile& p, std::uint64_t seed, const std::string& pcap,
                 const std::string& log = "") {
  RunOptions o;
  o.profile = p;
  o.seed = seed;
  o.pcap_path = pcap;
  o.packet_log_path = log;
  Manifest m;
  std::string error;
  const bool ok = run_ctxgen(o, m, &error);
  EXPECT_TRUE(ok) << error;
  return ok;
}

// ---------------------------------------------------------------- determinism

TEST(CtxgenDeterminism, SameSeedSameFramesAndFiles) {
  const std::uint64_t seed = test_seed(7);
  for (const char* name : {"default", "churn", "flood", "mixed"}) {
    const Profile p = quick(name);
    auto a = generate_in_memory(p, seed);
    auto b = generate_in_memory(p, seed);
    ASSERT_EQ(a->sink.frames.size(), p.packets) << name;
    EXPECT_TRUE(a->sink.frames == b->sink.frames) << name;
    auto c = generate_in_memory(p, seed + 1);
    EXPECT_FALSE(a->sink.frames == c->sink.frames) << name << ": the seed changes nothing";
  }
  TempDir dir;
  const Profile p = profile("mixed");
  ASSERT_TRUE(write_files(p, seed, dir / "a.pcap", dir / "a.log"));
  ASSERT_TRUE(write_files(p, seed, dir / "b.pcap", dir / "b.log"));
  EXPECT_EQ(read_file(dir / "a.pcap"), read_file(dir / "b.pcap"));
  EXPECT_EQ(read_file(dir / "a.log"), read_file(dir / "b.log"));
  // The manifests differ only in the "pcap" name they carry.
  std::string ma = read_file(dir / "a.manifest.json");
  std::string mb = read_file(dir / "b.manifest.json");
  ma.replace(ma.find("\"a.pcap\""), 8, "\"b.pcap\"");
  EXPECT_EQ(ma, mb);
}

// ---------------------------------------------------------------- pcap format

TEST(CtxgenPcap, LibpcapReadsEveryRecord) {
  TempDir dir;
  const Profile p = profile("mixed");
  const std::uint64_t seed = test_seed(11);
  ASSERT_TRUE(write_files(p, seed, dir / "m.pcap"));
  auto mem = generate_in_memory(p, seed);
  const PcapContents c = read_pcap(dir / "m.pcap");
  EXPECT_EQ(c.link_type, DLT_EN10MB);
  EXPECT_EQ(c.snaplen, 65535);
  EXPECT_EQ(c.major, 2);
  EXPECT_EQ(c.minor, 4);
  EXPECT_TRUE(c.whole);
  ASSERT_EQ(c.frames.size(), p.packets);
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < c.frames.size(); ++i) {
    const auto& want = mem->sink.frames[i];
    ASSERT_EQ(c.frames[i].size(), want.size()) << i;
    ASSERT_EQ(std::memcmp(c.frames[i].data(), want.data(), want.size()), 0) << i;
    EXPECT_EQ(c.ts_us[i], mem->sink.records[i].ts_us);
    if (i > 0) {
      EXPECT_LE(c.ts_us[i - 1], c.ts_us[i]) << "timestamps go back at " << i;
    }
    bytes += c.frames[i].size();
  }
  // Nothing else in the file: the 24-byte header and a 16-byte header per record.
  EXPECT_EQ(read_file(dir / "m.pcap").size(), 24 + 16 * p.packets + bytes);
}

TEST(CtxgenPcap, FileHeaderBytes) {
  std::byte h[kPcapFileHeader];
  encode_pcap_file_header(h);
  const std::uint8_t want[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2,    0,    4, 0, 0, 0, 0, 0,
                                 0,    0,    0,    0,    0xff, 0xff, 0, 0, 1, 0, 0, 0};
  EXPECT_EQ(std::memcmp(h, want, sizeof want), 0);
  std::byte r[kPcapRecordHeader];
  encode_pcap_record_header(r, 3'000'007ull, 60);
  const std::uint8_t rwant[16] = {3, 0, 0, 0, 7, 0, 0, 0, 60, 0, 0, 0, 60, 0, 0, 0};
  EXPECT_EQ(std::memcmp(r, rwant, sizeof rwant), 0);
}

// ---------------------------------------------------------------- manifest vs read-back

// What the independent reading of a pcap finds, in the manifest's terms.
struct ReadBack {
  std::uint64_t packets = 0, flow_packets = 0, passthrough = 0, malformed = 0;
  std::uint64_t bytes = 0, valid_bytes = 0, malformed_bytes = 0, shorter_than_eth = 0;
  std::uint64_t syn = 0, fin = 0, rst = 0;
  std::uint64_t tcp = 0, udp = 0, ipv4 = 0, ipv6 = 0, vlan[3] = {0, 0, 0};
  std::uint64_t ended_fin = 0, ended_rst = 0, max_open = 0;
  std::uint64_t min_frame = 0, max_frame = 0;
  std::vector<std::uint64_t> per_flow;  // packets, by flow number in order of appearance
  std::set<std::string> keys;
};

ReadBack read_back(const PcapContents& c) {
  ReadBack r;
  std::map<std::string, std::size_t> live;  // 5-tuple -> its open flow's number
  for (const auto& f : c.frames) {
    ++r.packets;
    r.bytes += f.size();
    const testing::Seen s = testing::look_at(f.data(), f.size());
    if (s.cls == testing::Seen::malformed) {
      ++r.malformed;
      r.malformed_bytes += f.size();
      r.shorter_than_eth += f.size() < 14 ? 1 : 0;
      continue;
    }
    r.valid_bytes += f.size();
    r.min_frame = r.min_frame == 0 ? f.size() : std::min<std::uint64_t>(r.min_frame, f.size());
    r.max_frame = std::max<std::uint64_t>(r.max_frame, f.size());
    if (s.cls == testing::Seen::passthrough) {
      ++r.passthrough;
      continue;
    }
    ++r.flow_packets;
    auto it = live.find(s.key);
    if (it == live.end()) {  // the rule: an unknown or ended 5-tuple starts a flow
      it = live.emplace(s.key, r.per_flow.size()).first;
      r.per_flow.push_back(0);
      r.keys.insert(s.key);
      (s.proto == 6 ? r.tcp : r.udp) += 1;
      (s.ip_version == 4 ? r.ipv4 : r.ipv6) += 1;
      r.vlan[s.vlans] += 1;
      r.max_open = std::max<std::uint64_t>(r.max_open, live.size());
    }
    ++r.per_flow[it->second];
    r.syn += (s.tcp_flags & 0x02) ? 1 : 0;
    r.fin += (s.tcp_flags & 0x01) ? 1 : 0;
    r.rst += (s.tcp_flags & 0x04) ? 1 : 0;
    if (s.proto == 6 && (s.tcp_flags & 0x05) != 0) {
      ((s.tcp_flags & 0x01) ? r.ended_fin : r.ended_rst) += 1;
      live.erase(it);
    }
  }
  return r;
}

void expect_manifest_matches(const std::string& pcap, const std::string& manifest) {
  const PcapContents c = read_pcap(pcap);
  const ReadBack r = read_back(c);
  Json j = load_json(manifest);
  ASSERT_TRUE(j);
  json_t* m = j.get();
  const auto flows = static_cast<long long>(r.per_flow.size());
  EXPECT_EQ(jint(m, "packets"), static_cast<long long>(r.packets));
  EXPECT_EQ(jint(m, "valid_packets"), static_cast<long long>(r.flow_packets + r.passthrough));
  EXPECT_EQ(jint(m, "flow_packets"), static_cast<long long>(r.flow_packets));
  EXPECT_EQ(jint(m, "passthrough_packets"), static_cast<long long>(r.passthrough));
  EXPECT_EQ(jint(m, "malformed_packets"), static_cast<long long>(r.malformed));
  EXPECT_EQ(jint(m, "bytes"), static_cast<long long>(r.bytes));
  EXPECT_EQ(jint(m, "valid_bytes"), static_cast<long long>(r.valid_bytes));
  EXPECT_EQ(jint(m, "malformed_bytes"), static_cast<long long>(r.malformed_bytes));
  EXPECT_EQ(jint(m, "flows"), flows);
  EXPECT_EQ(jint(m, "distinct_5tuples"), static_cast<long long>(r.keys.size()));
  EXPECT_EQ(jint(m, "malformed_by_kind/eth_too_short"), static_cast<long long>(r.shorter_than_eth));
  long long by_kind = 0;
  const char* key = nullptr;
  json_t* v = nullptr;
  json_object_foreach(json_object_get(m, "malformed_by_kind"), key, v) {
    by_kind += json_integer_value(v);
  }
  EXPECT_EQ(by_kind, static_cast<long long>(r.malformed));
  EXPECT_EQ(jint(m, "tcp_flags/syn"), static_cast<long long>(r.syn));
  EXPECT_EQ(jint(m, "tcp_flags/fin"), static_cast<long long>(r.fin));
  EXPECT_EQ(jint(m, "tcp_flags/rst"), static_cast<long long>(r.rst));
  EXPECT_EQ(jint(m, "flow_stats/tcp"), static_cast<long long>(r.tcp));
  EXPECT_EQ(jint(m, "flow_stats/udp"), static_cast<long long>(r.udp));
  EXPECT_EQ(jint(m, "flow_stats/ipv4"), static_cast<long long>(r.ipv4));
  EXPECT_EQ(jint(m, "flow_stats/ipv6"), static_cast<long long>(r.ipv6));
  EXPECT_EQ(jint(m, "flow_stats/untagged"), static_cast<long long>(r.vlan[0]));
  EXPECT_EQ(jint(m, "flow_stats/one_vlan_tag"), static_cast<long long>(r.vlan[1]));
  EXPECT_EQ(jint(m, "flow_stats/two_vlan_tags"), static_cast<long long>(r.vlan[2]));
  EXPECT_EQ(jint(m, "flow_stats/ended_fin"), static_cast<long long>(r.ended_fin));
  EXPECT_EQ(jint(m, "flow_stats/ended_rst"), static_cast<long long>(r.ended_rst));
  EXPECT_EQ(jint(m, "flow_stats/idle"), flows - static_cast<long long>(r.ended_fin + r.ended_rst));
  EXPECT_EQ(jint(m, "flow_stats/max_open"), static_cast<long long>(r.max_open));
  EXPECT_EQ(jint(m, "valid_frame_sizes/min_bytes"), static_cast<long long>(r.min_frame));
  EXPECT_EQ(jint(m, "valid_frame_sizes/max_bytes"), static_cast<long long>(r.max_frame));
  EXPECT_EQ(jint(m, "first_ts_us"), static_cast<long long>(c.ts_us.front()));
  EXPECT_EQ(jint(m, "last_ts_us"), static_cast<long long>(c.ts_us.back()));
  std::map<std::uint64_t, long long> hist;
  for (std::uint64_t n : r.per_flow)
    ++hist[n];
  json_t* jhist = json_object_get(json_object_get(m, "packets_per_flow"), "histogram");
  EXPECT_EQ(json_object_size(jhist), hist.size());
  for (const auto& [n, count] : hist) {
    EXPECT_EQ(jint(jhist, std::to_string(n)), count) << "flows of " << n << " packets";
  }
  json_t* list = json_object_get(m, "flow_list");
  if (list != nullptr) {
    ASSERT_EQ(json_array_size(list), r.per_flow.size());
    for (std::size_t i = 0; i < r.per_flow.size(); ++i) {
      json_t* f = json_array_get(list, i);
      EXPECT_EQ(jint(f, "id"), static_cast<long long>(i));
      EXPECT_EQ(jint(f, "packets"), static_cast<long long>(r.per_flow[i])) << "flow " << i;
    }
  }
}

TEST(CtxgenManifest, MatchesAnIndependentReadBack) {
  TempDir dir;
  for (const char* name : {"default", "churn", "flood", "mixed"}) {
    SCOPED_TRACE(name);
    const std::string pcap = dir / (std::string(name) + ".pcap");
    ASSERT_TRUE(write_files(quick(name), test_seed(3), pcap));
    expect_manifest_matches(pcap, dir / (std::string(name) + ".manifest.json"));
  }
}

TEST(CtxgenManifest, FlowListIsBoundedAndPathsFollowThePcap) {
  EXPECT_EQ(manifest_path_for("/x/a.pcap"), "/x/a.manifest.json");
  EXPECT_EQ(manifest_path_for("/x/a.cap"), "/x/a.cap.manifest.json");
  auto g = generate_in_memory(profile("default"), 1);
  const std::string full = manifest_json(g->manifest, "d.pcap", 1000);
  const std::string cut = manifest_json(g->manifest, "d.pcap", 10);
  EXPECT_NE(full.find("\"flow_list\""), std::string::npos);
  EXPECT_EQ(cut.find("\"flow_list\""), std::string::npos);
  EXPECT_NE(cut.find("\"flow_list_omitted\""), std::string::npos);
  json_error_t err;
  Json parsed(json_loads(cut.c_str(), 0, &err));
  EXPECT_TRUE(parsed) << err.text;
}

// ---------------------------------------------------------------- the parser against the books

ctxfwd::FlowKey expected_key(const PacketRecord& r) {
  ctxfwd::FlowKey k;
  std::array<std::uint8_t, 16> src{}, dst{};
  const std::size_t alen = r.ip_version == 4 ? 4 : 16;
  std::copy_n(r.src.begin(), alen, src.begin());
  std::copy_n(r.dst.begin(), alen, dst.begin());
  const bool src_lower = src < dst || (src == dst && r.src_port <= r.dst_port);
  k.addr_lo = src_lower ? src : dst;
  k.addr_hi = src_lower ? dst : src;
  k.port_lo = src_lower ? r.src_port : r.dst_port;
  k.port_hi = src_lower ? r.dst_port : r.src_port;
  k.ip_version = r.ip_version;
  k.proto = r.proto;
  return k;
}

std::uint64_t check_parser_against(const Generated& g) {
  using ctxfwd::Status;
  std::map<std::string, std::uint32_t> live;  // raw key bytes -> flow id, by the rule
  std::uint64_t flows = 0;
  for (std::size_t i = 0; i < g.sink.frames.size(); ++i) {
    const auto& f = g.sink.frames[i];
    const PacketRecord& rec = g.sink.records[i];
    const ctxfwd::ParseResult r = ctxfwd::parse(f.data(), f.size());
    if (rec.cls == PacketClass::malformed) {
      EXPECT_EQ(r.status, Status::malformed) << "packet " << i << " " << name(rec.malformed);
      EXPECT_EQ(ctxfwd::to_string(r.reason), name(rec.malformed)) << "packet " << i;
      continue;
    }
    if (rec.cls == PacketClass::passthrough) {
      EXPECT_EQ(r.status, Status::passthrough) << "packet " << i;
      EXPECT_EQ(r.pass, rec.pass == PassKind::arp ? ctxfwd::Passthrough::non_ip
                                                  : ctxfwd::Passthrough::other_l4);
      continue;
    }
    EXPECT_EQ(r.status, Status::flow) << "packet " << i << ": " << ctxfwd::to_string(r.reason);
    if (r.status != Status::flow) continue;
    const ctxfwd::FlowKey want = expected_key(rec);
    EXPECT_EQ(r.key, want) << "packet " << i;
    const bool src_is_lo =
        std::equal(rec.src.begin(), rec.src.begin() + 16, want.addr_lo.begin()) &&
        rec.src_port == want.port_lo;
    EXPECT_EQ(r.reversed, !src_is_lo) << "packet " << i;
    EXPECT_EQ(r.tcp_flags, rec.proto == kIpProtoTcp ? rec.tcp_flags : 0) << "packet " << i;
    EXPECT_EQ(r.payload_length, rec.payload) << "packet " << i;
    EXPECT_LE(r.payload_offset + r.payload_length, f.size());
    // The rule, applied to the parser's keys, gives back the generator's flow ids.
    const std::string k(reinterpret_cast<const char*>(&r.key), sizeof r.key);
    auto it = live.find(k);
    if (it == live.end()) {
      it = live.emplace(k, static_cast<std::uint32_t>(flows++)).first;
      EXPECT_EQ(rec.flow_id, it->second) << "packet " << i << " starts a flow";
    }
    EXPECT_EQ(rec.flow_id, it->second) << "packet " << i;
    if (r.ends_flow()) live.erase(it);
  }
  return flows;
}

TEST(CtxgenParser, AgreesWithTheGeneratorOnEveryFrame) {
  for (const char* name : {"default", "churn", "flood", "mixed"}) {
    SCOPED_TRACE(name);
    Profile p = quick(name);
    auto g = generate_in_memory(p, test_seed(5));
    EXPECT_EQ(check_parser_against(*g), g->manifest.flows);
  }
}

TEST(CtxgenParser, EveryMalformedKindManyTimes) {
  Profile p = profile("mixed");
  p.malformed_share = 0.5;
  p.passthrough_share = 0.1;
  p.packets = 20000;
  auto g = generate_in_memory(p, test_seed(9));
  for (std::size_t k = 0; k < kMalformedKinds; ++k) {
    EXPECT_GE(g->manifest.malformed_by_kind[k], 500u) << name(static_cast<MalformedKind>(k));
  }
  EXPECT_EQ(check_parser_against(*g), g->manifest.flows);
}

// ---------------------------------------------------------------- the traffic's shape

TEST(CtxgenProfiles, MixedHasEveryFeature) {
  auto g = generate_in_memory(profile("mixed"), test_seed(1));
  const Manifest& m = g->manifest;
  std::set<std::uint8_t> versions, vlans, protos;
  std::set<FlowEnd> ends;
  std::uint64_t reused = 0, ext = 0;
  for (const FlowSummary& f : m.flow_list) {
    versions.insert(f.ip_version);
    vlans.insert(f.vlan_count);
    protos.insert(f.proto);
    ends.insert(f.end);
    reused += f.reused;
    ext += f.ipv6_ext_headers > 0;
    EXPECT_GT(f.client_packets, 0u) << "flow " << f.id;
    EXPECT_LT(f.client_packets, f.packets) << "flow " << f.id << " has one direction only";
  }
  EXPECT_EQ(versions.size(), 2u);
  EXPECT_EQ(vlans.size(), 3u);
  EXPECT_EQ(protos.size(), 2u);
  EXPECT_EQ(ends.size(), 3u);
  EXPECT_GT(reused, 0u);
  EXPECT_GT(ext, 0u);
  EXPECT_EQ(m.distinct_5tuples + reused, m.flows);
  for (std::size_t k = 0; k < kMalformedKinds; ++k)
    EXPECT_GT(m.malformed_by_kind[k], 0u);
  for (std::size_t k = 0; k < kPassKinds; ++k)
    EXPECT_GT(m.passthrough_by_kind[k], 0u);
  EXPECT_GE(m.min_frame, 60u);               // 64 on the wire
  EXPECT_LE(m.max_frame, 1514u);             // 1518 on the wire, tags included
  EXPECT_GT(m.frame_size_histogram[1], 0u);  // exactly 64
  EXPECT_GT(m.frame_size_histogram[6], 0u);  // 1024..1518
}

TEST(CtxgenProfiles, TcpFlowsOpenWithSynAndCloseOnlyAtTheirEnd) {
  auto g = generate_in_memory(profile("churn"), test_seed(2));
  std::vector<std::uint32_t> seen(g->manifest.flows, 0);
  for (const PacketRecord& r : g->sink.records) {
    if (r.cls != PacketClass::flow) continue;
    const FlowSummary& f = g->manifest.flow_list[r.flow_id];
    const std::uint32_t k = seen[r.flow_id]++;
    if (k < 2) {
      EXPECT_EQ(r.from_client, k == 0) << "the second packet answers the first";
    }
    if (f.proto != kIpProtoTcp) continue;
    EXPECT_EQ(k == 0, r.tcp_flags == 0x02) << "only the first packet is a bare SYN";
    const bool closing = (r.tcp_flags & 0x05) != 0;
    EXPECT_EQ(closing, k + 1 == f.packets && f.end != FlowEnd::idle) << "flow " << r.flow_id;
  }
}

TEST(CtxgenProfiles, FloodNeverClosesAFlow) {
  auto g = generate_in_memory(quick("flood"), test_seed(4));
  EXPECT_EQ(g->manifest.max_open_flows, g->manifest.flows);
  EXPECT_EQ(g->manifest.flows, quick("flood").flows);
  EXPECT_EQ(g->manifest.tcp_fin + g->manifest.tcp_rst, 0u);
}

TEST(CtxgenProfiles, ExactCountsAsAsked) {
  Profile p = profile("default");
  p.flows = 37;
  p.packets = 1001;
  p.malformed_share = 0.1;
  p.passthrough_share = 0.02;
  auto g = generate_in_memory(p, 1);
  EXPECT_EQ(g->manifest.packets, 1001u);
  EXPECT_EQ(g->manifest.flows, 37u);
  EXPECT_EQ(g->manifest.malformed_packets, 100u);
  EXPECT_EQ(g->manifest.passthrough_packets, 20u);
  EXPECT_EQ(g->manifest.flow_packets, 881u);
}

TEST(CtxgenProfiles, ImpossibleRequestsAreRefused) {
  MemorySink sink;
  Manifest m;
  std::string error;
  Profile p = profile("default");
  p.flows = 1000;
  p.packets = 100;
  EXPECT_FALSE(generate(p, 1, sink, m, &error));
  EXPECT_NE(error.find("1000 flows need"), std::string::npos) << error;
  EXPECT_TRUE(sink.frames.empty());
  p = profile("default");
  p.malformed_share = 1.5;
  EXPECT_FALSE(generate(p, 1, sink, m, &error));
  EXPECT_NE(error.find("malformed share"), std::string::npos) << error;
  p = profile("default");
  p.flows = 0;
  EXPECT_FALSE(generate(p, 1, sink, m, &error));
  p.malformed_share = 1;
  p.passthrough_share = 0;
  EXPECT_TRUE(generate(p, 1, sink, m, &error)) << "no flows, all malformed: " << error;
  EXPECT_EQ(m.malformed_packets, p.packets);
}

// ---------------------------------------------------------------- the command

int run(const std::string& args, std::string* out = nullptr) {
  const char* bin = std::getenv("CTXGEN_BIN");
  if (bin == nullptr) {
    ADD_FAILURE() << "CTXGEN_BIN is not set (meson test sets it)";
    return -1;
  }
  const std::string cmd = std::string(bin) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[512];
  std::string text;
  while (std::fgets(buf, sizeof buf, p) != nullptr)
    text += buf;
  const int status = pclose(p);
  if (out != nullptr) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CtxgenCli, WritesWhatTheLibraryWrites) {
  TempDir dir;
  std::string out;
  ASSERT_EQ(run("--profile mixed --seed 21 --out " + (dir / "cli.pcap") + " --packet-log " +
                    (dir / "cli.log"),
                &out),
            0)
      << out;
  EXPECT_NE(out.find("10000 packets"), std::string::npos) << out;
  ASSERT_EQ(mkdir((dir / "lib").c_str(), 0700), 0);
  ASSERT_TRUE(write_files(profile("mixed"), 21, dir / "lib/cli.pcap", dir / "lib/cli.log"));
  EXPECT_EQ(read_file(dir / "cli.pcap"), read_file(dir / "lib/cli.pcap"));
  EXPECT_EQ(read_file(dir / "cli.log"), read_file(dir / "lib/cli.log"));
  EXPECT_EQ(read_file(dir / "cli.manifest.json"), read_file(dir / "lib/cli.manifest.json"));
  expect_manifest_matches(dir / "cli.pcap", dir / "cli.manifest.json");
}

TEST(CtxgenCli, OptionsOverrideTheProfile) {
  TempDir dir;
  std::string out;
  ASSERT_EQ(run("--out " + (dir / "o.pcap") + " --flows 10 --packets 300 --malformed-share 0.2 " +
                    "--passthrough-share 0 --manifest " + (dir / "m.json") + " --profile churn",
                &out),
            0)
      << out;
  Json j = load_json(dir / "m.json");
  ASSERT_TRUE(j);
  EXPECT_EQ(jint(j.get(), "flows"), 10);
  EXPECT_EQ(jint(j.get(), "packets"), 300);
  EXPECT_EQ(jint(j.get(), "malformed_packets"), 60);
  EXPECT_EQ(jint(j.get(), "passthrough_packets"), 0);
  EXPECT_EQ(json_string_value(json_object_get(j.get(), "profile")), std::string("churn"));
}

TEST(CtxgenCli, BadCommandLinesFailClearly) {
  TempDir dir;
  const std::string out_opt = " --out " + (dir / "x.pcap");
  const struct {
    std::string args;
    int status;
    const char* says;
  } cases[] = {
      {"--profile nope" + out_opt, 2, "unknown profile 'nope'"},
      {"--flows 10", 2, "--out FILE is required"},
      {"--malformed-share 1.5" + out_opt, 2, "bad share for --malformed-share"},
      {"--packets -3" + out_opt, 2, "bad count for --packets"},
      {"--packets 12x" + out_opt, 2, "bad count for --packets"},
      {"--concurrency 0" + out_opt, 2, "bad count for --concurrency"},
      {"--frobnicate 1" + out_opt, 2, "unknown option --frobnicate"},
      {out_opt + " --seed", 2, "needs a value"},
      {"--flows 1000 --packets 10" + out_opt, 1, "1000 flows need"},
      {"--out " + (dir / "no/such/dir/x.pcap"), 1, "cannot create"},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(run(c.args, &out), c.status) << c.args << "\n" << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << c.args << "\n" << out;
  }
  // A failed run leaves no file that looks complete.
  EXPECT_FALSE(exists(dir / "x.pcap"));
  EXPECT_FALSE(exists(dir / "x.pcap.tmp"));
  EXPECT_FALSE(exists(dir / "x.manifest.json"));
  std::string out;
  EXPECT_EQ(run("--help", &out), 0);
  EXPECT_NE(out.find("usage: ctxgen"), std::string::npos);
  EXPECT_EQ(run("--list-profiles", &out), 0);
  for (const char* name : {"default", "churn", "flood", "mixed"}) {
    EXPECT_NE(out.find(name), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace ctxgen
