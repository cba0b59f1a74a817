// Rules across sections: the topology a file describes must hold together.
#include <algorithm>
#include <map>

#include "detail/config_rules.h"

namespace ctxalloc::dpdk::detail {

void DiagnosticSink::at_line(unsigned line, std::string section, std::string key,
                             std::string message) {
  errors_.push_back(
      Diagnostic{file_, line, std::move(section), std::move(key), std::move(message)});
}

void DiagnosticSink::at_key(std::string_view section, std::string_view key, std::string message) {
  unsigned line = line_of(section, key);
  if (line == 0)
    if (const IniSection* s = ini_.find(section)) line = s->line;
  at_line(line, std::string(section), std::string(key), std::move(message));
}

void DiagnosticSink::at_section(std::string_view section, std::string message) {
  const IniSection* s = ini_.find(section);
  at_line(s ? s->line : 0, std::string(section), "", std::move(message));
}

void DiagnosticSink::at_file(std::string message) {
  at_line(0, "", "", std::move(message));
}

unsigned DiagnosticSink::line_of(std::string_view section, std::string_view key) const noexcept {
  const IniSection* s = ini_.find(section);
  if (s == nullptr) return 0;
  const IniEntry* e = s->find(key);
  return e ? e->line : 0;
}

std::string socket_section(unsigned id) {
  return "socket." + std::to_string(id);
}

std::string lcore_section(unsigned id) {
  return "lcore." + std::to_string(id);
}

namespace {

void each_lcore_in_one_socket(const Config& c, DiagnosticSink& sink) {
  std::map<unsigned, unsigned> owner;  // lcore -> socket
  for (const SocketConfig& s : c.sockets) {
    for (unsigned l : s.lcores) {
      auto [it, fresh] = owner.emplace(l, s.id);
      if (!fresh) {
        sink.at_key(
            socket_section(s.id), "lcores",
            "lcore " + std::to_string(l) + " is already on socket " + std::to_string(it->second));
      }
    }
  }
}

void hugepage_policy_matches_sockets(const Config& c, DiagnosticSink& sink) {
  for (const SocketConfig& s : c.sockets) {
    if (c.hugepages == HugepagePolicy::none && s.hugepages > 0) {
      sink.at_key(socket_section(s.id), "hugepages",
                  std::to_string(s.hugepages) + " hugepages, but [ctxalloc] hugepages = none");
    }
    if (c.hugepages == HugepagePolicy::require && s.hugepages == 0) {
      sink.at_key(socket_section(s.id), "hugepages",
                  "0 hugepages, but [ctxalloc] hugepages = require");
    }
  }
}

void fallback_matches_thread_allocators(const Config& c, DiagnosticSink& sink) {
  if (!c.falls_back_to(Tier::thread)) return;
  const std::string why =
      " cannot fall back to a thread allocator ([ctxalloc] fallback names thread)";
  for (const LcoreConfig& l : c.lcores) {
    if (l.thread_allocator != AllocatorKind::none) continue;
    // Report where `none` was written: the lcore's own section, else the default.
    const std::string own = lcore_section(l.id);
    if (sink.line_of(own, "thread_allocator") != 0)
      sink.at_key(own, "thread_allocator", "lcore " + std::to_string(l.id) + why);
    else
      sink.at_key("lcore.default", "thread_allocator",
                  "lcore " + std::to_string(l.id) + " (from [lcore.default])" + why);
  }
  if (c.lcore_default.thread_allocator == AllocatorKind::none &&
      sink.line_of("lcore.default", "thread_allocator") != 0 &&
      std::none_of(c.lcores.begin(), c.lcores.end(),
                   [](const LcoreConfig& l) { return l.line == 0; })) {
    // The default still serves lcores no socket lists.
    sink.at_key("lcore.default", "thread_allocator", "unlisted lcores" + why);
  }
}

void sockets_fit_their_hugepages(const Config& c, DiagnosticSink& sink) {
  if (c.hugepages == HugepagePolicy::none) return;
  for (const SocketConfig& s : c.sockets) {
    if (s.hugepages == 0) continue;
    const std::uint64_t need = c.socket_demand(s);
    if (need <= s.hugepage_bytes()) continue;
    sink.at_key(socket_section(s.id), "hugepages",
                "socket " + std::to_string(s.id) + " needs " + format_bytes(need) +
                    " (global_heap + thread allocators + flow memory of " +
                    std::to_string(s.lcores.size()) + " lcores) but " +
                    std::to_string(s.hugepages) + " x " + format_bytes(s.hugepage_size) +
                    " hugepages give " + format_bytes(s.hugepage_bytes()));
  }
}

void ready_blocks_fit_max_flows(const Config& c, DiagnosticSink& sink) {
  if (c.flows.growing()) return;
  const std::uint64_t ready = std::uint64_t{c.flows.ready_blocks} * c.lcores.size();
  if (ready <= c.flows.max_flows) return;
  sink.at_key("flows", "ready_blocks",
              std::to_string(c.flows.ready_blocks) + " ready blocks on each of " +
                  std::to_string(c.lcores.size()) + " lcores make " + std::to_string(ready) +
                  ", more than max_flows = " + std::to_string(c.flows.max_flows));
}

// Sizing: max_flows counts flows of the whole process; with the lcores' even shares
// (ctxfwd's split, docs/ctxfwd.md) every lcore must hold its share of blocks, else a
// config that can never serve max_flows passes.
void max_flows_fit_lcore_memory(const Config& c, DiagnosticSink& sink) {
  if (std::string e = c.flow_sizing_error(c.flows.max_flows); !e.empty())
    sink.at_key("flows", "max_flows", std::move(e));
}

// A growing flow's spill must name a tier the fallback chain has (the lcore heap has one
// set of tiers: its flows' spills and its thread allocator's fallback share it).
void spill_matches_fallback(const Config& c, DiagnosticSink& sink) {
  if (!c.flows.growing()) return;
  const FlowSpill s = c.flows.spill;
  if (s == FlowSpill::thread && !c.falls_back_to(Tier::thread))
    sink.at_key("flows", "spill", "thread, but [ctxalloc] fallback has no thread step");
  if (s == FlowSpill::global && !c.falls_back_to(Tier::global))
    sink.at_key("flows", "spill", "global, but [ctxalloc] fallback has no global step");
}

}  // namespace

void check_cross_section_rules(const Config& c, DiagnosticSink& sink) {
  each_lcore_in_one_socket(c, sink);
  hugepage_policy_matches_sockets(c, sink);
  fallback_matches_thread_allocators(c, sink);
  sockets_fit_their_hugepages(c, sink);
  ready_blocks_fit_max_flows(c, sink);
  max_flows_fit_lcore_memory(c, sink);
  spill_matches_fallback(c, sink);
}

}  // namespace ctxalloc::dpdk::detail
