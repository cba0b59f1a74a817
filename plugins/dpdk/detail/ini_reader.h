// A reader of rte_cfgfile's INI syntax that keeps line numbers and refuses what
// rte_cfgfile lets through silently. Both read a valid file the same way (a test checks
// it for every shipped file); on top of that this one reports, with the line:
//  - lines that are neither a [section] nor `key = value` (rte_cfgfile skips them),
//  - text after a section's closing `]` (ignored by rte_cfgfile),
//  - duplicate sections and duplicate keys (rte_cfgfile keeps both, and finds the first),
//  - names of CFG_NAME_LEN (64) characters or more and values of CFG_VALUE_LEN (256) or
//    more (rte_cfgfile truncates them),
//  - empty keys,
// and, like rte_cfgfile, empty values, keys before the first section, a section without
// `]` and lines of 323 characters or more.
//
// Syntax shared with rte_cfgfile: ';' starts a comment unless escaped as "\;" (only the
// first ';' of a line is looked at), "\;" in a value becomes ';', names and values are
// stripped of surrounding white space, and a key ends at the first '='.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ctxalloc::dpdk::detail {

/// rte_cfgfile's limits (rte_cfgfile.h); a test checks that they agree.
inline constexpr std::size_t kCfgNameLen = 64;
inline constexpr std::size_t kCfgValueLen = 256;
/// fgets() buffer of rte_cfgfile_load: CFG_NAME_LEN + CFG_VALUE_LEN + 4 bytes, so a line
/// of this many characters or more (without its newline) is refused.
inline constexpr std::size_t kCfgMaxLine = kCfgNameLen + kCfgValueLen + 3;

struct IniEntry {
  std::string key;
  std::string value;
  unsigned line = 0;
  bool valid = true;  ///< false: an error was reported for it (the key still counts as given)
};

struct IniSection {
  std::string name;
  unsigned line = 0;
  std::vector<IniEntry> entries;

  /// The entry with this key, or null.
  const IniEntry* find(std::string_view key) const noexcept;
};

struct IniError {
  unsigned line = 0;
  std::string section;  ///< the section the line is in (empty before the first)
  std::string key;
  std::string message;
};

struct IniFile {
  std::vector<IniSection> sections;  ///< in file order; duplicates are reported, not kept
  std::vector<IniError> errors;

  /// The section with this name, or null.
  const IniSection* find(std::string_view name) const noexcept;
};

/// Reads INI text. Errors do not stop the reader: every bad line is reported.
IniFile read_ini(std::string_view text);

}  // namespace ctxalloc::dpdk::detail
