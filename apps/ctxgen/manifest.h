// The manifest: a JSON account of what the generator wrote, next to the pcap. Its
// top-level counts are what ctxfwd's tests compare with: packets, valid_packets,
// malformed_packets, flows; the rest explains them. docs/trafficgen.md lists every field.
#pragma once

#include <cstdint>
#include <string>

#include "generator.h"

namespace ctxgen {

/// Manifest format version; bump on an incompatible change.
inline constexpr std::uint64_t kManifestFormat = 1;

/// The manifest as JSON text. The per-flow list is written only up to `flow_list_limit`
/// flows (else "flow_list" is absent and "flow_list_omitted" says why).
std::string manifest_json(const Manifest& m, const std::string& pcap_name,
                          std::uint64_t flow_list_limit);

/// The conventional manifest path for a pcap: "x.pcap" -> "x.manifest.json".
std::string manifest_path_for(const std::string& pcap_path);

/// "10.0.0.1" or "fd00::1"-style text (full, uncompressed hex groups for IPv6).
std::string address_text(const IpAddr& a, std::uint8_t ip_version);

}  // namespace ctxgen
