// The ports: which are enabled, where each forwards, their MAC addresses, the mbuf pools
// (one per socket that has a port) and the queue set-up: one rx and one tx queue per
// port, as in l2fwd.
#pragma once

#include <rte_ether.h>
#include <rte_mempool.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lcore_plan.h"
#include "options.h"

namespace ctxfwd {

inline constexpr std::uint16_t kRxDesc = 1024;
inline constexpr std::uint16_t kTxDesc = 1024;

struct Ports {
  std::vector<std::uint16_t> enabled;  ///< port ids, ascending
  std::vector<std::uint16_t> dst;      ///< by port id: where its packets go
  std::vector<rte_ether_addr> mac;     ///< by port id
  std::vector<int> socket;             ///< by port id; a port without affinity gets -1
  std::vector<std::string> name;       ///< by port id: the device name
  std::vector<rte_mempool*> pool;      ///< by socket id (nullptr where none is needed)
  std::vector<bool> started;           ///< by port id
};

/// The enabled ports (port mask, every available port by default) and their pairs.
std::string find_ports(const AppOptions& opts, Ports& out);

/// Warnings for ports that are kernel interfaces on a real L2 segment (net_af_packet):
/// what the MAC rewrite does to ARP and broadcasts there, and the partial checksums of
/// offloading senders, each with its fix. Empty when no enabled port is one.
std::vector<std::string> kernel_port_warnings(const Ports& ports, bool mac_updating);

/// Mbufs each pool needs when --mbufs is not given: descriptors, bursts in flight,
/// pipeline rings, and `extra` (an infinite_rx pcap keeps its whole file in mbufs).
std::uint32_t mbufs_needed(const Ports& ports, std::size_t workers, bool pipeline,
                           std::uint32_t ring_size, std::uint64_t extra);

/// Creates the pools and configures and starts every enabled port.
std::string start_ports(Ports& ports, std::uint32_t mbufs_per_pool, const std::string& pool_ops);

/// Stops and closes the ports, frees the pools.
void close_ports(Ports& ports);

/// "aa:bb:cc:dd:ee:ff".
std::string mac_text(const rte_ether_addr& a);

}  // namespace ctxfwd
