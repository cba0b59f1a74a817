#include "embedded_input.h"

#include <pcap/pcap.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "manifest.h"
#include "output.h"
#include "profiles.h"

namespace ctxfwd {

std::string count_pcap_packets(const std::string& path, std::uint64_t& packets) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  if (p == nullptr) return "cannot read capture '" + path + "': " + err;
  packets = 0;
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(p, &hdr, &data)) == 1)
    ++packets;
  std::string result;
  if (rc == PCAP_ERROR) result = "capture '" + path + "' is damaged: " + pcap_geterr(p);
  pcap_close(p);
  return result;
}

std::string prepare_embedded_input(const AppOptions& opts, EmbeddedInput& out) {
  out = EmbeddedInput{};
  if (!opts.rx_pcap.empty()) {
    out.rx_pcap = opts.rx_pcap;
    if (auto e = count_pcap_packets(out.rx_pcap, out.packets); !e.empty()) return e;
    if (out.packets == 0) return "capture '" + out.rx_pcap + "' holds no packet";
    out.description = out.rx_pcap + " (" + std::to_string(out.packets) + " packets)";
    return {};
  }
  const ctxgen::Profile* profile = ctxgen::find_profile(opts.gen_profile);
  if (profile == nullptr)
    return "--gen-profile: no ctxgen profile '" + opts.gen_profile +
           "' (ctxgen --list-profiles lists them)";
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  ctxgen::RunOptions run;
  run.profile = *profile;
  run.seed = 1;
  run.pcap_path = dir + "/ctxfwd-" + std::to_string(::getpid()) + "-" + opts.gen_profile + ".pcap";
  run.manifest_path = ctxgen::manifest_path_for(run.pcap_path);
  ctxgen::Manifest manifest;
  std::string error;
  if (!ctxgen::run_ctxgen(run, manifest, &error)) return "generating the input failed: " + error;
  out.rx_pcap = run.pcap_path;
  out.manifest_path = run.manifest_path;
  out.generated = true;
  out.packets = manifest.packets;
  out.description = "ctxgen profile " + opts.gen_profile +
                    ", seed 1: " + std::to_string(manifest.packets) + " packets, " +
                    std::to_string(manifest.flows) + " flows, " +
                    std::to_string(manifest.malformed_packets) + " malformed -> " + out.rx_pcap;
  return {};
}

void remove_generated(const EmbeddedInput& in) {
  if (!in.generated) return;
  std::remove(in.rx_pcap.c_str());
  if (!in.manifest_path.empty()) std::remove(in.manifest_path.c_str());
}

}  // namespace ctxfwd
