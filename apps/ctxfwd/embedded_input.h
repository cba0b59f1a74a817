// The embedded default's input: a pcap given with --rx-pcap, or one that ctxgen's library
// writes at start-up into a temporary file (removed at exit), so that `ctxfwd` runs with
// no device and no file at all. No DPDK header.
#pragma once

#include <cstdint>
#include <string>

#include "options.h"

namespace ctxfwd {

/// The input capture of the embedded default.
struct EmbeddedInput {
  std::string rx_pcap;        ///< the file the pcap vdev reads
  std::string manifest_path;  ///< the generated manifest (empty unless generated)
  bool generated = false;     ///< written by us: removed by remove_generated()
  std::uint64_t packets = 0;  ///< records in the capture
  std::string description;    ///< for the log
};

/// Uses --rx-pcap (counting its records) or generates `--gen-profile` traffic into a new
/// file under $TMPDIR (default /tmp). Empty string on success, else what failed.
std::string prepare_embedded_input(const AppOptions& opts, EmbeddedInput& out);

/// Removes the files prepare_embedded_input generated (nothing for a given --rx-pcap).
void remove_generated(const EmbeddedInput& in);

/// Counts the records of a capture with libpcap. Empty string on success.
std::string count_pcap_packets(const std::string& path, std::uint64_t& packets);

}  // namespace ctxfwd
