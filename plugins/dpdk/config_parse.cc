// From INI sections to a Config: known sections and keys, each value parsed and range
// checked, required keys present. Cross-section rules live in config_rules.cc.
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "ctxalloc/dpdk/config.h"
#include "detail/config_rules.h"
#include "detail/units.h"

namespace ctxalloc::dpdk {
namespace {

using detail::DiagnosticSink;
using detail::IniEntry;
using detail::IniFile;
using detail::IniSection;

// Limits on counts: far above any real machine, low enough that products stay in range.
constexpr std::uint64_t kMaxHugepages = 1 << 20;
constexpr std::uint64_t kMaxReadyBlocks = 1 << 20;
constexpr std::uint64_t kMaxFlows = 1 << 26;
// Thread allocators and global heaps take their memory in 4 MiB segments (ctxalloc's
// SegmentMap unit), so their sizes are whole segments; flow contexts are blocks of a
// context arena: powers of two from 4 KiB to one segment. The largest single region.
constexpr std::uint64_t kSegment = std::uint64_t{4} << 20;
constexpr std::uint64_t kMinThreadSize = kSegment;
constexpr std::uint64_t kMinGlobalHeap = kSegment;
constexpr std::uint64_t kMinBlockSize = 4 << 10;
constexpr std::uint64_t kMaxBlockSize = kSegment;
// Growing flows' chunks (FlowChunks): powers of two from 256 B to one 64 KiB page.
constexpr std::uint64_t kMinChunk = 256;
constexpr std::uint64_t kMaxChunk = 64 << 10;
constexpr std::uint64_t kMaxRegion = std::uint64_t{1} << 40;
constexpr std::uint64_t kMinHugepageSize = 64 << 10;
constexpr std::uint64_t kMaxHugepageSize = std::uint64_t{16} << 30;

bool is_pow2(std::uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

struct KeySpec {
  std::string_view name;
  bool required;
};

// Reads the keys of one section: reports unknown keys and missing required ones, and
// hands each known key's entry to the caller.
class SectionReader {
 public:
  SectionReader(const IniSection& s, DiagnosticSink& sink) : s_(s), sink_(sink) {}

  void expect(std::initializer_list<KeySpec> keys) {
    for (const IniEntry& e : s_.entries) {
      if (!e.valid) continue;  // reported by the reader already
      const bool known =
          std::any_of(keys.begin(), keys.end(), [&](const KeySpec& k) { return k.name == e.key; });
      if (!known) {
        std::string list;
        for (const KeySpec& k : keys)
          list += (list.empty() ? "" : ", ") + std::string(k.name);
        sink_.at_line(e.line, s_.name, e.key, "unknown key (this section takes: " + list + ")");
      }
    }
    for (const KeySpec& k : keys)
      if (k.required && s_.find(k.name) == nullptr)
        sink_.at_section(s_.name, "missing key `" + std::string(k.name) + "`");
  }

  /// The entry of a key, or null when absent or already reported as bad.
  const IniEntry* get(std::string_view key) const {
    const IniEntry* e = s_.find(key);
    return e != nullptr && e->valid ? e : nullptr;
  }

  template <class T>
  bool take(std::string_view key, const detail::Parsed<T>& p, T& out) {
    if (p.ok()) {
      out = p.value();
      return true;
    }
    sink_.at_key(s_.name, key, p.error());
    return false;
  }

  void fail(std::string_view key, std::string message) {
    sink_.at_key(s_.name, key, std::move(message));
  }

  /// A size that must be whole 4 MiB segments (what takes memory in segments: `what`).
  bool whole_segments(std::string_view key, std::uint64_t v, const char* what) {
    if (v % kSegment == 0) return true;
    fail(key, format_bytes(v) + " is not a multiple of 4 MiB (" + what +
                  " takes its memory in 4 MiB segments)");
    return false;
  }

  bool size(std::string_view key, std::uint64_t min, std::uint64_t max, std::size_t& out) {
    const IniEntry* e = get(key);
    if (e == nullptr) return false;
    std::uint64_t v = 0;
    if (!take(key, detail::parse_size(e->value), v)) return false;
    if (v < min) {
      fail(key, format_bytes(v) + " is below the minimum of " + format_bytes(min));
      return false;
    }
    if (v > max) {
      fail(key, format_bytes(v) + " is above the maximum of " + format_bytes(max));
      return false;
    }
    out = static_cast<std::size_t>(v);
    return true;
  }

  template <class T>
  bool count(std::string_view key, std::uint64_t max, T& out, bool allow_zero) {
    const IniEntry* e = get(key);
    if (e == nullptr) return false;
    std::uint64_t v = 0;
    if (!take(key, detail::parse_count(e->value, max), v)) return false;
    if (v == 0 && !allow_zero) {
      fail(key, "must be above zero");
      return false;
    }
    out = static_cast<T>(v);
    return true;
  }

  const IniSection& section() const { return s_; }

 private:
  const IniSection& s_;
  DiagnosticSink& sink_;
};

std::optional<AllocatorKind> kind_from(std::string_view s) {
  if (s == "none") return AllocatorKind::none;
  if (s == "bump") return AllocatorKind::bump;
  if (s == "bitset") return AllocatorKind::bitset;
  if (s == "tree") return AllocatorKind::tree;
  if (s == "growing") return AllocatorKind::growing;
  return std::nullopt;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ')
    s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ')
    s.remove_suffix(1);
  return s;
}

// "context -> thread -> global", optionally ending in "-> fail".
detail::Parsed<std::vector<Tier>> parse_fallback(std::string_view s) {
  std::vector<Tier> chain;
  bool failed = false;
  while (true) {
    const std::size_t arrow = s.find("->");
    const std::string_view name = trim(s.substr(0, arrow));
    if (failed) return {std::string("\"fail\" must be the last step")};
    if (name == "fail") {
      failed = true;
    } else {
      Tier t;
      if (name == "context") {
        t = Tier::context;
      } else if (name == "thread") {
        t = Tier::thread;
      } else if (name == "global") {
        t = Tier::global;
      } else {
        return {"unknown step \"" + std::string(name) +
                "\" (steps: context, thread, global, fail; joined by ->)"};
      }
      if (std::find(chain.begin(), chain.end(), t) != chain.end())
        return {"\"" + std::string(name) + "\" appears twice"};
      if (!chain.empty() && t < chain.back())
        return {"\"" + std::string(name) + "\" after \"" + to_string(chain.back()) +
                "\": the order is context -> thread -> global"};
      if (chain.empty() && t != Tier::context)
        return {std::string("the chain must start with context")};
      chain.push_back(t);
    }
    if (arrow == std::string_view::npos) break;
    s.remove_prefix(arrow + 2);
  }
  if (chain.empty()) return {std::string("the chain must start with context")};
  return {std::move(chain)};
}

class Parser {
 public:
  Parser(std::string_view file, const IniFile& ini) : ini_(ini), sink_(file, ini) {
    config_.source = std::string(file);
  }

  ConfigResult run() {
    for (const detail::IniError& e : ini_.errors)
      sink_.at_line(e.line, e.section, e.key, e.message);
    for (const IniSection& s : ini_.sections)
      dispatch(s);
    require_sections();
    std::sort(config_.sockets.begin(), config_.sockets.end(),
              [](const SocketConfig& a, const SocketConfig& b) { return a.id < b.id; });
    if (sink_.errors().empty()) fill_lcores();
    // Rules across sections only make sense once every section read cleanly.
    if (sink_.errors().empty()) detail::check_cross_section_rules(config_, sink_);
    ConfigResult r;
    r.errors = std::move(sink_.errors());
    std::stable_sort(r.errors.begin(), r.errors.end(),
                     [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; });
    if (r.errors.empty()) r.config = std::move(config_);
    return r;
  }

 private:
  void dispatch(const IniSection& s) {
    const std::string_view name = s.name;
    if (name == "ctxalloc") {
      read_ctxalloc(s);
    } else if (name == "flows") {
      read_flows(s);
    } else if (name == "lcore.default") {
      read_lcore(s, config_.lcore_default, true);
      have_lcore_default_ = true;
    } else if (name.starts_with("socket.")) {
      if (auto id = section_id(s, "socket.", kMaxSockets)) read_socket(s, *id);
    } else if (name.starts_with("lcore.")) {
      if (auto id = section_id(s, "lcore.", kMaxLcores)) {
        LcoreConfig l;
        l.id = *id;
        l.line = s.line;
        if (read_lcore(s, l, false)) explicit_lcores_.push_back(l);
      }
    } else {
      sink_.at_section(s.name,
                       "unknown section (sections: ctxalloc, socket.N, lcore.default, "
                       "lcore.N, flows)");
    }
  }

  std::optional<unsigned> section_id(const IniSection& s, std::string_view prefix, unsigned limit) {
    const std::string_view rest = std::string_view(s.name).substr(prefix.size());
    const auto id = detail::parse_count(rest, limit - 1);
    if (!id.ok()) {
      sink_.at_section(s.name, "bad id after \"" + std::string(prefix) + "\": " + id.error());
      return std::nullopt;
    }
    const auto v = static_cast<unsigned>(id.value());
    std::set<unsigned>& seen = prefix == "socket." ? socket_ids_ : lcore_ids_;
    if (!seen.insert(v).second) {
      sink_.at_section(s.name, "names the same " +
                                   std::string(prefix.substr(0, prefix.size() - 1)) +
                                   " as an earlier section");
      return std::nullopt;
    }
    return v;
  }

  void read_ctxalloc(const IniSection& s) {
    have_ctxalloc_ = true;
    SectionReader r(s, sink_);
    r.expect({{"hugepages", true}, {"fallback", true}});
    if (const IniEntry* e = r.get("hugepages")) {
      if (e->value == "require") {
        config_.hugepages = HugepagePolicy::require;
      } else if (e->value == "prefer") {
        config_.hugepages = HugepagePolicy::prefer;
      } else if (e->value == "none") {
        config_.hugepages = HugepagePolicy::none;
      } else {
        r.fail("hugepages", "\"" + e->value + "\" is not require, prefer or none");
      }
    }
    if (const IniEntry* e = r.get("fallback"))
      r.take("fallback", parse_fallback(e->value), config_.fallback);
  }

  void read_socket(const IniSection& s, unsigned id) {
    SectionReader r(s, sink_);
    r.expect(
        {{"lcores", true}, {"hugepage_size", false}, {"hugepages", true}, {"global_heap", true}});
    SocketConfig sc;
    sc.id = id;
    sc.line = s.line;
    if (const IniEntry* e = r.get("lcores")) {
      sc.lcores_line = e->line;
      r.take("lcores", detail::parse_id_list(e->value, kMaxLcores), sc.lcores);
    }
    if (const IniEntry* e = r.get("hugepage_size")) {
      sc.hugepage_size_line = e->line;
      if (r.size("hugepage_size", kMinHugepageSize, kMaxHugepageSize, sc.hugepage_size) &&
          !is_pow2(sc.hugepage_size))
        r.fail("hugepage_size", format_bytes(sc.hugepage_size) + " is not a power of two");
    }
    if (const IniEntry* e = r.get("hugepages")) {
      sc.hugepages_line = e->line;
      r.count("hugepages", kMaxHugepages, sc.hugepages, true);
    }
    // The page size matters only when there are pages.
    if (sc.hugepages > 0 && r.get("hugepage_size") == nullptr)
      sink_.at_section(s.name, "missing key `hugepage_size` (needed with hugepages > 0)");
    if (r.size("global_heap", kMinGlobalHeap, kMaxRegion, sc.global_heap))
      r.whole_segments("global_heap", sc.global_heap, "the global heap");
    config_.sockets.push_back(std::move(sc));
  }

  // [lcore.default] must name both keys; [lcore.N] may leave out either.
  bool read_lcore(const IniSection& s, LcoreConfig& l, bool is_default) {
    SectionReader r(s, sink_);
    const std::size_t errors_before = sink_.errors().size();
    r.expect({{"thread_allocator", is_default}, {"thread_size", false}});
    l.line = s.line;
    if (const IniEntry* e = r.get("thread_allocator")) {
      const auto k = kind_from(e->value);
      if (k == AllocatorKind::tree || k == AllocatorKind::none) {
        l.thread_allocator = *k;
        if (!is_default) overridden_kind_.insert(l.id);
      } else if (k) {
        // The per-lcore allocator is one design; a kind it is not would be a pretence.
        r.fail("thread_allocator", "\"" + e->value +
                                       "\" is not available: an lcore's thread allocator is "
                                       "ctxalloc's ThreadHeap (size classes + tree): use tree, "
                                       "or none");
      } else {
        r.fail("thread_allocator", "\"" + e->value + "\" is not tree or none");
      }
    }
    if (r.get("thread_size") != nullptr) {
      if (r.size("thread_size", kMinThreadSize, kMaxRegion, l.thread_size) &&
          r.whole_segments("thread_size", l.thread_size, "a thread allocator") && !is_default)
        overridden_size_.insert(l.id);
    }
    const bool says_none =
        r.get("thread_allocator") != nullptr && l.thread_allocator == AllocatorKind::none;
    if (says_none && r.get("thread_size") != nullptr)
      r.fail("thread_size", "a size for thread_allocator none");
    if (is_default && !says_none && r.get("thread_size") == nullptr)
      sink_.at_section(s.name, "missing key `thread_size`");
    return sink_.errors().size() == errors_before;
  }

  void read_flows(const IniSection& s) {
    have_flows_ = true;
    SectionReader r(s, sink_);
    r.expect({{"kind", false},
              {"block_size", false},
              {"ready_blocks", false},
              {"first_chunk", false},
              {"max_chunk", false},
              {"large_block", false},
              {"budget", false},
              {"spill", false},
              {"growth_size", false},
              {"max_flows", true},
              {"idle_timeout", true}});
    FlowConfig& f = config_.flows;
    // A kind written but not understood (or empty): its keys are not checked against it.
    bool kind_known = s.find("kind") == nullptr;
    if (const IniEntry* e = r.get("kind")) {
      const auto k = kind_from(e->value);
      if (!k || *k == AllocatorKind::none) {
        r.fail("kind", "\"" + e->value + "\" is not growing, bump, bitset or tree");
      } else {
        f.kind = *k;
        kind_known = true;
      }
    }
    if (kind_known && f.growing())
      read_growing_flows(r);
    else if (kind_known)
      read_fixed_flows(r);
    if (const IniEntry* e = r.get("max_flows")) f.max_flows_line = e->line;
    r.count("max_flows", kMaxFlows, f.max_flows, false);
    if (const IniEntry* e = r.get("idle_timeout"))
      r.take("idle_timeout", detail::parse_duration(e->value), f.idle_timeout);
  }

  // Keys of the other kind are refused (a file that sets them means something else).
  void refuse_keys(SectionReader& r, std::initializer_list<std::string_view> keys,
                   const char* why) {
    for (std::string_view k : keys)
      if (r.section().find(k) != nullptr) r.fail(k, why);
  }

  void read_fixed_flows(SectionReader& r) {
    FlowConfig& f = config_.flows;
    refuse_keys(r, {"first_chunk", "max_chunk", "large_block", "budget", "spill", "growth_size"},
                "only for kind = growing (a fixed context is one block_size block)");
    for (const char* k : {"block_size", "ready_blocks"})
      if (r.section().find(k) == nullptr)
        sink_.at_section(r.section().name, std::string("missing key `") + k +
                                               "` (needed with kind = " + to_string(f.kind) + ")");
    if (r.size("block_size", kMinBlockSize, kMaxBlockSize, f.block_size) &&
        !is_pow2(f.block_size)) {
      r.fail("block_size", format_bytes(f.block_size) +
                               " is not a power of two (flow contexts are blocks of a context "
                               "arena, aligned to their size, so that a free finds its context "
                               "by masking)");
    }
    r.count("ready_blocks", kMaxReadyBlocks, f.ready_blocks, true);
  }

  // A chunk size: a power of two from 256 B to 64 KiB (FlowChunks' sizes).
  bool chunk_size(SectionReader& r, std::string_view key, std::size_t& out) {
    if (!r.size(key, kMinChunk, kMaxChunk, out)) return false;
    if (is_pow2(out)) return true;
    r.fail(key, format_bytes(out) +
                    " is not a power of two (chunks are aligned to their size, so that a "
                    "free finds its flow by masking)");
    return false;
  }

  void read_growing_flows(SectionReader& r) {
    FlowConfig& f = config_.flows;
    refuse_keys(r, {"block_size", "ready_blocks"},
                "only for kinds bump, bitset and tree (a growing flow starts with first_chunk "
                "and grows up to max_chunk)");
    if (r.section().find("growth_size") == nullptr)
      sink_.at_section(r.section().name, "missing key `growth_size` (needed with kind = growing)");
    bool ok = true;
    if (r.get("first_chunk") != nullptr) ok &= chunk_size(r, "first_chunk", f.first_chunk);
    if (r.get("max_chunk") != nullptr) ok &= chunk_size(r, "max_chunk", f.max_chunk);
    if (ok && f.max_chunk < f.first_chunk) {
      r.fail("max_chunk", format_bytes(f.max_chunk) + " is below first_chunk (" +
                              format_bytes(f.first_chunk) + ")");
      ok = false;
    }
    if (r.get("large_block") != nullptr &&
        r.size("large_block", 16, kMaxChunk / 2, f.large_block) && ok &&
        f.large_block > f.max_chunk / 2) {
      r.fail("large_block", format_bytes(f.large_block) + " is above max_chunk / 2 (" +
                                format_bytes(f.max_chunk / 2) +
                                "): a request below it must fit a chunk");
    }
    if (r.get("budget") != nullptr && r.size("budget", 0, kMaxRegion, f.budget) && ok &&
        f.budget != 0 && f.budget < f.first_chunk) {
      r.fail("budget", format_bytes(f.budget) + " is below first_chunk (" +
                           format_bytes(f.first_chunk) + "): no flow could be made (0: no bound)");
    }
    if (const IniEntry* e = r.get("spill")) {
      if (e->value == "refuse") {
        f.spill = FlowSpill::refuse;
      } else if (e->value == "thread") {
        f.spill = FlowSpill::thread;
      } else if (e->value == "global") {
        f.spill = FlowSpill::global;
      } else {
        r.fail("spill", "\"" + e->value + "\" is not refuse, thread or global");
      }
    }
    if (r.get("growth_size") != nullptr &&
        r.size("growth_size", kSegment, kMaxRegion, f.growth_size))
      r.whole_segments("growth_size", f.growth_size, "the flows' growth memory");
  }

  void require_sections() {
    if (!have_ctxalloc_) sink_.at_file("missing section [ctxalloc]");
    if (config_.sockets.empty() && socket_ids_.empty())
      sink_.at_file("no [socket.N] section: name at least one socket");
    if (!have_lcore_default_) sink_.at_file("missing section [lcore.default]");
    if (!have_flows_) sink_.at_file("missing section [flows]");
  }

  // Every lcore a socket lists gets an entry: its own section's keys over the default's.
  void fill_lcores() {
    for (const SocketConfig& s : config_.sockets) {
      for (unsigned id : s.lcores) {
        LcoreConfig l = config_.lcore_default;
        l.id = id;
        l.socket = s.id;
        l.line = 0;
        for (const LcoreConfig& e : explicit_lcores_) {
          if (e.id != id) continue;
          l.line = e.line;
          if (overridden_kind_.count(id)) l.thread_allocator = e.thread_allocator;
          if (overridden_size_.count(id)) l.thread_size = e.thread_size;
          check_thread_size(l, overridden_size_.count(id) != 0);
        }
        config_.lcores.push_back(l);
      }
    }
    std::sort(config_.lcores.begin(), config_.lcores.end(),
              [](const LcoreConfig& a, const LcoreConfig& b) { return a.id < b.id; });
    // [lcore.N] sections for lcores no socket lists are kept for the rules to report.
    for (const LcoreConfig& e : explicit_lcores_) {
      const bool listed = std::any_of(config_.lcores.begin(), config_.lcores.end(),
                                      [&](const LcoreConfig& l) { return l.id == e.id; });
      if (!listed) unlisted_.push_back(e);
    }
    for (const LcoreConfig& e : unlisted_)
      sink_.at_section(detail::lcore_section(e.id),
                       "lcore " + std::to_string(e.id) + " is not in any socket's `lcores`");
  }

  // An [lcore.N] that mixes its own keys with [lcore.default]'s can end up with a size
  // for no allocator, or an allocator without a size.
  void check_thread_size(LcoreConfig& l, bool own_size) {
    const std::string section = detail::lcore_section(l.id);
    if (l.thread_allocator == AllocatorKind::none) {
      if (own_size) sink_.at_key(section, "thread_size", "a size for thread_allocator none");
      l.thread_size = 0;
    } else if (l.thread_size == 0) {
      sink_.at_key(section, "thread_allocator",
                   std::string("thread_allocator ") + to_string(l.thread_allocator) +
                       " needs a thread_size, and neither this section nor [lcore.default] "
                       "gives one");
    }
  }

  const IniFile& ini_;
  DiagnosticSink sink_;
  Config config_;
  bool have_ctxalloc_ = false, have_flows_ = false, have_lcore_default_ = false;
  std::set<unsigned> socket_ids_, lcore_ids_, overridden_kind_, overridden_size_;
  std::vector<LcoreConfig> explicit_lcores_, unlisted_;
};

}  // namespace

ConfigResult parse_config(std::string_view text, std::string_view file) {
  const IniFile ini = detail::read_ini(text);
  return Parser(file, ini).run();
}

ConfigResult load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ConfigResult r;
    r.errors.push_back(Diagnostic{path, 0, "", "", "cannot open the file"});
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace ctxalloc::dpdk
