// Which worker lcore does what, and which port forwards to which: pure functions of the
// lcores and ports EAL found, so they are unit-tested without EAL.
//
// Each enabled port has one rx queue, polled by exactly one lcore, and one tx queue. A
// port's tx queue is written only by the lcore that handles its partner's packets (the
// forwarding lcore, or with --pipeline the rx lcore's tx partner), and pairs are
// disjoint, so every tx queue has a single writer, as in l2fwd.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "options.h"

namespace ctxfwd {

inline constexpr std::uint16_t kNoPort = 0xFFFF;

/// What a worker lcore does.
enum class Role : std::uint8_t {
  forward,      ///< rx, flow work, MAC rewrite, tx: run to completion
  pipeline_rx,  ///< rx, flow work, a record per packet onto its ring
  pipeline_tx,  ///< records off the ring, MAC rewrite, tx, frees the records
  idle,         ///< nothing to do (more lcores than ports)
};
const char* to_string(Role r) noexcept;

struct LcoreInfo {
  unsigned id = 0;
  int socket = 0;
};
struct PortInfo {
  std::uint16_t id = 0;
  int socket = 0;  ///< -1 when the device has no NUMA affinity (virtual devices)
};

struct LcoreAssignment {
  unsigned lcore = 0;
  int socket = 0;
  Role role = Role::idle;
  std::vector<std::uint16_t> rx_ports;  ///< forward / pipeline_rx
  int peer = -1;                        ///< index (in the plan) of the pipeline partner
};

/// Destination of each port: dst[port] (kNoPort for ports not enabled). --portmap pairs
/// first, then the remaining enabled ports in order, (0,1), (2,3), ...; an odd last port
/// forwards to itself. Empty string, or what is wrong with the map.
std::string pair_ports(std::span<const std::uint16_t> enabled, std::span<const PortPair> map,
                       std::vector<std::uint16_t>& dst);

/// Roles for the worker lcores (the main lcore only prints stats). Each port goes to the
/// rx lcore with the fewest ports, preferring one on the port's socket. --pipeline pairs
/// the workers in order (rx, tx), (rx, tx), ...; an odd last worker stays idle.
std::string plan_lcores(std::span<const LcoreInfo> workers, std::span<const PortInfo> ports,
                        bool pipeline, std::vector<LcoreAssignment>& out);

}  // namespace ctxfwd
