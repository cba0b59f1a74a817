#include "lcore_plan.h"

#include <algorithm>

namespace ctxfwd {

const char* to_string(Role r) noexcept {
  switch (r) {
    case Role::forward:
      return "forward";
    case Role::pipeline_rx:
      return "pipeline-rx";
    case Role::pipeline_tx:
      return "pipeline-tx";
    case Role::idle:
      return "idle";
  }
  return "?";
}

std::string pair_ports(std::span<const std::uint16_t> enabled, std::span<const PortPair> map,
                       std::vector<std::uint16_t>& dst) {
  std::uint16_t max_id = 0;
  for (std::uint16_t p : enabled)
    max_id = std::max(max_id, p);
  dst.assign(enabled.empty() ? 0 : max_id + 1u, kNoPort);
  auto is_enabled = [&](std::uint16_t p) {
    return std::find(enabled.begin(), enabled.end(), p) != enabled.end();
  };
  for (const PortPair& pp : map) {
    for (std::uint16_t p : {pp.a, pp.b})
      if (!is_enabled(p)) return "--portmap: port " + std::to_string(p) + " is not an enabled port";
    dst[pp.a] = pp.b;
    dst[pp.b] = pp.a;
  }
  std::uint16_t waiting = kNoPort;  // a port without a partner yet
  for (std::uint16_t p : enabled) {
    if (dst[p] != kNoPort) continue;
    if (waiting == kNoPort) {
      waiting = p;
    } else {
      dst[waiting] = p;
      dst[p] = waiting;
      waiting = kNoPort;
    }
  }
  if (waiting != kNoPort) dst[waiting] = waiting;
  return {};
}

namespace {

// The rx lcore for a port: fewest ports, on the port's socket when there is one.
std::size_t pick_rx_lcore(const std::vector<LcoreAssignment>& plan, int socket) {
  std::size_t best = plan.size();
  bool best_local = false;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const LcoreAssignment& a = plan[i];
    if (a.role != Role::forward && a.role != Role::pipeline_rx) continue;
    const bool local = socket < 0 || a.socket == socket;
    if (best == plan.size() || (local && !best_local) ||
        (local == best_local && a.rx_ports.size() < plan[best].rx_ports.size())) {
      best = i;
      best_local = local;
    }
  }
  return best;
}

}  // namespace

std::string plan_lcores(std::span<const LcoreInfo> workers, std::span<const PortInfo> ports,
                        bool pipeline, std::vector<LcoreAssignment>& out) {
  out.clear();
  if (ports.empty()) return "no port to forward on";
  if (workers.empty())
    return "no worker lcore: ctxfwd needs at least one besides the main lcore (e.g. -l 0,1)";
  if (pipeline && workers.size() < 2)
    return "--pipeline needs two worker lcores besides the main one (e.g. --lcores "
           "0@0,1@0,2@1)";
  for (std::size_t i = 0; i < workers.size(); ++i) {
    LcoreAssignment a;
    a.lcore = workers[i].id;
    a.socket = workers[i].socket;
    if (!pipeline) {
      a.role = Role::forward;
    } else if (i + 1 < workers.size() || i % 2 == 1) {
      a.role = i % 2 == 0 ? Role::pipeline_rx : Role::pipeline_tx;
      a.peer = static_cast<int>(i % 2 == 0 ? i + 1 : i - 1);
    }
    out.push_back(a);
  }
  for (const PortInfo& p : ports)
    out[pick_rx_lcore(out, p.socket)].rx_ports.push_back(p.id);
  // Lcores left without a port have nothing to do (a pipeline pair as a whole).
  for (LcoreAssignment& a : out) {
    if (a.role == Role::forward && a.rx_ports.empty()) a.role = Role::idle;
    if (a.role == Role::pipeline_rx && a.rx_ports.empty()) {
      a.role = Role::idle;
      out[a.peer].role = Role::idle;
    }
  }
  return {};
}

}  // namespace ctxfwd
