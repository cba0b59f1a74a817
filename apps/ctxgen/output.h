// Files ctxgen writes: the pcap, the manifest and, on request, a packet log with the
// generator's account of every frame (one tab-separated line each). Each file is written
// under a temporary name and renamed when complete, so a failed run leaves no file that
// looks finished.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "generator.h"
#include "pcap_writer.h"

namespace ctxgen {

/// What to generate and where to write it.
struct RunOptions {
  Profile profile;
  std::uint64_t seed = 1;
  std::string pcap_path;
  std::string manifest_path;    ///< empty: manifest_path_for(pcap_path)
  std::string packet_log_path;  ///< empty: none
  std::uint64_t flow_list_limit = 10000;
};

/// Generates and writes all files; `manifest` gets the books. false with `error` set on
/// an invalid profile or an I/O failure (no final file is left behind then).
bool run_ctxgen(const RunOptions& opts, Manifest& manifest, std::string* error);

/// The packet log's line for one frame (without the newline):
/// index, timestamp (us), length, class, detail, flow id, direction. The detail is the
/// malformed kind, the passthrough kind, or the TCP flags ("SA", "FA", "PA"...) / "udp".
std::string packet_log_line(const PacketRecord& rec, std::size_t length);

/// The packet log's header line (starts with '#').
const char* packet_log_header();

}  // namespace ctxgen
