// ctxgen: writes a pcap of generated traffic and its manifest. See docs/trafficgen.md.
//   ctxgen --profile mixed --seed 7 --out /tmp/mixed.pcap
// Exit status: 0 written, 1 generation or I/O failed, 2 bad command line.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "manifest.h"
#include "output.h"

namespace {

using ctxgen::Profile;

// Options that override one field of the chosen profile.
struct CountOption {
  const char* name;
  std::uint64_t Profile::*field;
};
struct ShareOption {
  const char* name;
  double Profile::*field;
};

constexpr CountOption kCountOptions[] = {{"--flows", &Profile::flows},
                                         {"--packets", &Profile::packets}};
constexpr ShareOption kShareOptions[] = {
    {"--malformed-share", &Profile::malformed_share},
    {"--passthrough-share", &Profile::passthrough_share},
    {"--tcp-share", &Profile::tcp_share},
    {"--ipv6-share", &Profile::ipv6_share},
    {"--vlan-share", &Profile::vlan_share},
    {"--reuse-share", &Profile::reuse_share},
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: ctxgen [options] --out FILE.pcap\n"
               "Writes generated Ethernet traffic (classic pcap) and a JSON manifest of it.\n"
               "  --profile NAME           default | churn | flood | mixed (default: default)\n"
               "  --flows N                flow instances\n"
               "  --packets N              records in the pcap, all classes together\n"
               "  --malformed-share X      share of malformed packets, 0..1\n"
               "  --passthrough-share X    share of ARP/ICMP/ICMPv6 packets, 0..1\n"
               "  --tcp-share X, --ipv6-share X, --vlan-share X, --reuse-share X\n"
               "  --concurrency N          flows interleaved at once\n"
               "  --seed N                 same seed, same bytes (default: 1)\n"
               "  --out FILE               the pcap to write (required)\n"
               "  --manifest FILE          default: FILE.pcap -> FILE.manifest.json\n"
               "  --packet-log FILE        one line per packet: what the generator wrote\n"
               "  --flow-list-limit N      list flows in the manifest up to N (default 10000)\n"
               "  --list-profiles          print the profiles and exit\n");
}

bool parse_count(std::string_view text, std::uint64_t& out) {
  if (text.empty() || text[0] == '-' || text[0] == '+') return false;
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  out = v;
  return true;
}

bool parse_share(std::string_view text, double& out) {
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v) || v < 0 || v > 1) {
    return false;
  }
  out = v;
  return true;
}

int bad(const std::string& why) {
  std::fprintf(stderr, "ctxgen: %s (see --help)\n", why.c_str());
  return 2;
}

void list_profiles() {
  for (const Profile& p : ctxgen::profiles()) {
    std::printf("%-8s %7llu flows %8llu packets  %s\n", p.name.c_str(),
                static_cast<unsigned long long>(p.flows),
                static_cast<unsigned long long>(p.packets), p.description.c_str());
  }
}

// Applies "--name value" to the options; returns an error text, or "" when applied.
std::string apply(std::string_view opt, std::string_view val, ctxgen::RunOptions& run) {
  for (const auto& c : kCountOptions) {
    if (opt == c.name) {
      return parse_count(val, run.profile.*c.field) ? "" : "bad count for " + std::string(opt);
    }
  }
  for (const auto& s : kShareOptions) {
    if (opt == s.name) {
      return parse_share(val, run.profile.*s.field) ? "" : "bad share for " + std::string(opt);
    }
  }
  std::uint64_t n = 0;
  if (opt == "--concurrency") {
    if (!parse_count(val, n) || n == 0 || n > UINT32_MAX) return "bad count for --concurrency";
    run.profile.concurrency = static_cast<std::uint32_t>(n);
  } else if (opt == "--seed") {
    if (!parse_count(val, run.seed)) return "bad seed";
  } else if (opt == "--out") {
    run.pcap_path = val;
  } else if (opt == "--manifest") {
    run.manifest_path = val;
  } else if (opt == "--packet-log") {
    run.packet_log_path = val;
  } else if (opt == "--flow-list-limit") {
    if (!parse_count(val, run.flow_list_limit)) return "bad count for --flow-list-limit";
  } else {
    return "unknown option " + std::string(opt);
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  ctxgen::RunOptions run;
  // The profile comes first, whatever the order on the command line, so that the other
  // options override its fields.
  std::string_view profile_name = "default";
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string_view(argv[i]) == "--profile") profile_name = argv[i + 1];
  }
  const Profile* profile = ctxgen::find_profile(profile_name);
  if (profile == nullptr) return bad("unknown profile '" + std::string(profile_name) + "'");
  run.profile = *profile;

  for (int i = 1; i < argc; ++i) {
    const std::string_view opt = argv[i];
    if (opt == "--help" || opt == "-h") {
      usage(stdout);
      return 0;
    }
    if (opt == "--list-profiles") {
      list_profiles();
      return 0;
    }
    if (i + 1 >= argc) return bad("option " + std::string(opt) + " needs a value");
    const std::string_view val = argv[++i];
    if (opt == "--profile") continue;
    if (std::string why = apply(opt, val, run); !why.empty()) return bad(why);
  }
  if (run.pcap_path.empty()) return bad("--out FILE is required");

  ctxgen::Manifest m;
  std::string error;
  if (!ctxgen::run_ctxgen(run, m, &error)) {
    std::fprintf(stderr, "ctxgen: %s\n", error.c_str());
    return 1;
  }
  const std::string manifest =
      run.manifest_path.empty() ? ctxgen::manifest_path_for(run.pcap_path) : run.manifest_path;
  std::printf(
      "ctxgen: profile %s, seed %llu: %llu packets (%llu in %llu flows, %llu passthrough, "
      "%llu malformed), %llu bytes -> %s, manifest %s\n",
      m.profile.c_str(), static_cast<unsigned long long>(m.seed),
      static_cast<unsigned long long>(m.packets), static_cast<unsigned long long>(m.flow_packets),
      static_cast<unsigned long long>(m.flows),
      static_cast<unsigned long long>(m.passthrough_packets),
      static_cast<unsigned long long>(m.malformed_packets),
      static_cast<unsigned long long>(m.bytes), run.pcap_path.c_str(), manifest.c_str());
  return 0;
}
