#include "ports.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <net/if.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

namespace ctxfwd {
namespace {

constexpr unsigned kPoolCache = 256;

std::string port_error(std::uint16_t port, const char* what, int rc) {
  return "port " + std::to_string(port) + ": " + what + ": " + rte_strerror(rc < 0 ? -rc : rc);
}

int pool_socket(int port_socket) {
  return port_socket >= 0 ? port_socket : static_cast<int>(rte_socket_id());
}

std::string configure_port(std::uint16_t port, rte_mempool* pool) {
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) return port_error(port, "info", rc);
  rte_eth_conf conf{};
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
  if (int rc = rte_eth_dev_configure(port, 1, 1, &conf); rc != 0)
    return port_error(port, "configure", rc);
  std::uint16_t rxd = kRxDesc;
  std::uint16_t txd = kTxDesc;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd); rc != 0)
    return port_error(port, "descriptors", rc);
  const int socket = rte_eth_dev_socket_id(port);
  rte_eth_rxconf rxq = info.default_rxconf;
  rxq.offloads = conf.rxmode.offloads;
  if (int rc = rte_eth_rx_queue_setup(port, 0, rxd, socket, &rxq, pool); rc != 0)
    return port_error(port, "rx queue", rc) +
           " (an infinite_rx pcap holds its whole file in mbufs: raise --mbufs)";
  rte_eth_txconf txq = info.default_txconf;
  txq.offloads = conf.txmode.offloads;
  if (int rc = rte_eth_tx_queue_setup(port, 0, txd, socket, &txq); rc != 0)
    return port_error(port, "tx queue", rc);
  if (int rc = rte_eth_dev_start(port); rc != 0) return port_error(port, "start", rc);
  // Virtual devices may not know promiscuous mode; forwarding works without it there.
  if (int rc = rte_eth_promiscuous_enable(port); rc != 0 && rc != -ENOTSUP)
    return port_error(port, "promiscuous", rc);
  return {};
}

}  // namespace

std::string mac_text(const rte_ether_addr& a) {
  char buf[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(buf, sizeof buf, &a);
  return buf;
}

std::string find_ports(const AppOptions& opts, Ports& out) {
  out = Ports{};
  const std::uint16_t avail = rte_eth_dev_count_avail();
  if (avail == 0)
    return "no ethernet port: EAL found no device (a vdev that failed to probe does not stop "
           "rte_eal_init; see its log above)";
  std::uint16_t port = 0;
  std::uint64_t seen = 0;
  RTE_ETH_FOREACH_DEV(port) {
    if (port < 64) seen |= std::uint64_t{1} << port;
    if (!opts.port_mask || (port < 64 && (*opts.port_mask >> port & 1)))
      out.enabled.push_back(port);
  }
  if (opts.port_mask && (*opts.port_mask & ~seen) != 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "0x%llx",
                  static_cast<unsigned long long>(*opts.port_mask & ~seen));
    return std::string("--portmask names ports that do not exist: ") + buf;
  }
  if (out.enabled.empty()) return "--portmask enables no port";
  if (auto e = pair_ports(out.enabled, opts.port_map, out.dst); !e.empty()) return e;
  const std::size_t n = out.dst.size();
  out.mac.resize(n);
  out.socket.assign(n, -1);
  out.name.resize(n);
  out.started.assign(n, false);
  for (std::uint16_t p : out.enabled) {
    if (int rc = rte_eth_macaddr_get(p, &out.mac[p]); rc != 0) return port_error(p, "MAC", rc);
    out.socket[p] = rte_eth_dev_socket_id(p);
    char name[RTE_ETH_NAME_MAX_LEN] = {};
    if (rte_eth_dev_get_name_by_port(p, name) == 0) out.name[p] = name;
  }
  return {};
}

std::vector<std::string> kernel_port_warnings(const Ports& ports, bool mac_updating) {
  std::vector<std::string> out;
  for (std::uint16_t p : ports.enabled) {
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(p, &info) != 0 || info.driver_name == nullptr ||
        std::string_view(info.driver_name) != "net_af_packet")
      continue;
    char ifname[IF_NAMESIZE] = {};
    const std::string iface = info.if_index != 0 && if_indextoname(info.if_index, ifname)
                                  ? std::string(ifname)
                                  : std::string("its interface");
    const std::string what = "port " + std::to_string(p) + " is net_af_packet on " + iface;
    if (mac_updating)
      out.push_back(what +
                    ": the MAC rewrite (destination 02:00:00:00:00:<port>) also rewrites ARP and "
                    "broadcast frames, so the hosts on that segment drop everything; to bridge "
                    "it, run with --no-mac-updating");
    out.push_back(what +
                  ": senders that offload checksums (veths do by default) hand the kernel "
                  "frames with partial TCP/UDP checksums, which reach the other side unfinished "
                  "and are dropped there; turn the offload off on each sending interface: "
                  "ethtool -K IFACE tx off (for veths, the end inside each namespace)");
  }
  return out;
}

std::uint32_t mbufs_needed(const Ports& ports, std::size_t workers, bool pipeline,
                           std::uint32_t ring_size, std::uint64_t extra) {
  std::uint64_t n = ports.enabled.size() * (kRxDesc + kTxDesc + 2 * kBurst);
  n += workers * (kPoolCache + 2 * kBurst * (ports.enabled.size() + 1));
  if (pipeline) n += workers / 2 * (ring_size + kBurst);
  n += extra;
  n = std::max<std::uint64_t>(n, 8191);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(n, 1u << 24));
}

std::string start_ports(Ports& ports, std::uint32_t mbufs_per_pool, const std::string& pool_ops) {
  for (std::uint16_t p : ports.enabled) {
    const int s = pool_socket(ports.socket[p]);
    if (ports.pool.size() <= static_cast<std::size_t>(s)) ports.pool.resize(s + 1, nullptr);
    if (ports.pool[s] == nullptr) {
      const std::string name = "ctxfwd_mbufs_" + std::to_string(s);
      ports.pool[s] =
          rte_pktmbuf_pool_create_by_ops(name.c_str(), mbufs_per_pool, kPoolCache, 0,
                                         RTE_MBUF_DEFAULT_BUF_SIZE, s, pool_ops.c_str());
      if (ports.pool[s] == nullptr)
        return "mbuf pool (" + pool_ops + ") of " + std::to_string(mbufs_per_pool) + " on socket " +
               std::to_string(s) + ": " + rte_strerror(rte_errno) +
               " (more memory: -m, or fewer mbufs: --mbufs)";
    }
    if (auto e = configure_port(p, ports.pool[s]); !e.empty()) return e;
    ports.started[p] = true;
  }
  return {};
}

void close_ports(Ports& ports) {
  for (std::uint16_t p : ports.enabled) {
    if (ports.started[p]) rte_eth_dev_stop(p);
    rte_eth_dev_close(p);
    ports.started[p] = false;
  }
  for (rte_mempool*& mp : ports.pool) {
    rte_mempool_free(mp);
    mp = nullptr;
  }
}

}  // namespace ctxfwd
