// Shared by the config parser and its cross-section rules: where diagnostics go and how
// to find the line of a key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ctxalloc/dpdk/config.h"
#include "detail/ini_reader.h"

namespace ctxalloc::dpdk::detail {

/// Collects diagnostics for one file.
class DiagnosticSink {
 public:
  DiagnosticSink(std::string_view file, const IniFile& ini) : file_(file), ini_(ini) {}

  /// An error at a key of a section; the line is the key's, else the section's.
  void at_key(std::string_view section, std::string_view key, std::string message);
  /// An error at a section heading.
  void at_section(std::string_view section, std::string message);
  /// An error about the file as a whole (a missing section): line 0.
  void at_file(std::string message);
  void at_line(unsigned line, std::string section, std::string key, std::string message);

  /// The line of a key (0 when absent).
  unsigned line_of(std::string_view section, std::string_view key) const noexcept;

  const std::string& file() const noexcept { return file_; }
  std::vector<Diagnostic>& errors() noexcept { return errors_; }

 private:
  std::string file_;
  const IniFile& ini_;
  std::vector<Diagnostic> errors_;
};

/// The section names of the config: "socket.3", "lcore.5".
std::string socket_section(unsigned id);
std::string lcore_section(unsigned id);

/// Checks what no single section can: each lcore in one socket, [lcore.N] for listed
/// lcores only, hugepage policy against the sockets, fallback against the thread
/// allocators, each socket's memory against its hugepages, ready blocks against max flows.
void check_cross_section_rules(const Config& c, DiagnosticSink& sink);

}  // namespace ctxalloc::dpdk::detail
