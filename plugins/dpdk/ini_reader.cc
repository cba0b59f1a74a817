// The line-tracking INI reader (see detail/ini_reader.h for what it adds to rte_cfgfile).
#include "detail/ini_reader.h"

#include <cctype>

namespace ctxalloc::dpdk::detail {
namespace {

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string_view strip(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

// rte_cfgfile looks only at the first ';' of a line: it starts a comment unless a
// backslash precedes it, in which case nothing on the line is a comment.
std::string_view drop_comment(std::string_view line) {
  const std::size_t pos = line.find(';');
  if (pos == std::string_view::npos) return line;
  if (pos > 0 && line[pos - 1] == '\\') return line;
  return line.substr(0, pos);
}

// "\;" in a value stands for ';' (rte_cfgfile removes the backslash).
std::string unescape_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size() && v[i + 1] == ';') continue;
    out += v[i];
  }
  return out;
}

class Reader {
 public:
  IniFile run(std::string_view text) {
    unsigned line_no = 0;
    while (!text.empty()) {
      const std::size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      ++line_no;
      read_line(line, line_no);
    }
    return std::move(file_);
  }

 private:
  void read_line(std::string_view raw, unsigned line_no) {
    if (raw.size() >= kCfgMaxLine) {
      error(line_no, "",
            "line of " + std::to_string(raw.size()) + " characters: rte_cfgfile reads at most " +
                std::to_string(kCfgMaxLine - 1));
      return;
    }
    const std::string_view line = strip(drop_comment(raw));
    if (line.empty()) return;
    if (line.front() == '[') {
      read_section(line, line_no);
    } else if (line.find('=') != std::string_view::npos) {
      read_entry(line, line_no);
    } else {
      error(line_no, "", "not `key = value` and not a [section] (rte_cfgfile would skip it)");
    }
  }

  void read_section(std::string_view line, unsigned line_no) {
    std::size_t close = line.find(']');
    if (close == std::string_view::npos) {
      // rte_cfgfile refuses the whole file; this reader goes on as if the ']' were there,
      // so that the keys below are not reported as well.
      close = line.size();
      error_in(line_no, std::string(strip(line.substr(1))), "",
               "section heading without a closing ']'");
    }
    const std::string name(strip(line.substr(1, close - 1)));
    if (close + 1 < line.size()) {
      error_in(
          line_no, name, "",
          "text after the section heading's ']': \"" + std::string(line.substr(close + 1)) + "\"");
    }
    if (name.empty()) {
      error(line_no, "", "empty section name");
      current_ = nullptr;
      return;
    }
    if (name.size() >= kCfgNameLen) {
      error_in(line_no, name, "",
               "section name of " + std::to_string(name.size()) +
                   " characters: rte_cfgfile keeps only " + std::to_string(kCfgNameLen - 1));
    }
    if (const IniSection* first = file_.find(name)) {
      error_in(line_no, name, "",
               "duplicate section (first at line " + std::to_string(first->line) + ")");
      current_ = nullptr;  // its keys are not read into the first one
      skipping_ = name;
      return;
    }
    file_.sections.push_back(IniSection{name, line_no, {}});
    current_ = &file_.sections.back();
    skipping_.clear();
  }

  void read_entry(std::string_view line, unsigned line_no) {
    const std::size_t eq = line.find('=');
    const std::string key(strip(line.substr(0, eq)));
    const std::string value = unescape_value(strip(line.substr(eq + 1)));
    const std::string section = current_ ? current_->name : skipping_;
    if (current_ == nullptr && skipping_.empty()) {
      error_in(line_no, "", key, "key before the first [section]");
      return;
    }
    bool ok = true;
    if (key.empty()) ok = error_in(line_no, section, key, "empty key");
    if (key.size() >= kCfgNameLen) {
      ok = error_in(line_no, section, key,
                    "key of " + std::to_string(key.size()) +
                        " characters: rte_cfgfile keeps only " + std::to_string(kCfgNameLen - 1));
    }
    if (value.empty()) ok = error_in(line_no, section, key, "empty value");
    if (value.size() >= kCfgValueLen) {
      ok = error_in(line_no, section, key,
                    "value of " + std::to_string(value.size()) +
                        " characters: rte_cfgfile keeps only " + std::to_string(kCfgValueLen - 1));
    }
    if (current_ == nullptr) return;  // in a duplicate section: reported there
    if (const IniEntry* first = current_->find(key); first != nullptr && !key.empty()) {
      error_in(line_no, section, key,
               "duplicate key (first at line " + std::to_string(first->line) + ")");
      return;
    }
    // Kept even when bad, so that the key does not also read as missing.
    current_->entries.push_back(IniEntry{key, value, line_no, ok});
  }

  void error(unsigned line_no, const std::string& key, std::string message) {
    error_in(line_no, current_ ? current_->name : skipping_, key, std::move(message));
  }
  bool error_in(unsigned line_no, const std::string& section, const std::string& key,
                std::string message) {
    file_.errors.push_back(IniError{line_no, section, key, std::move(message)});
    return false;
  }

  IniFile file_;
  // Pointers into file_.sections stay valid: sections are only appended, and the
  // vector's reallocation would move them, so current_ is refreshed on every append.
  IniSection* current_ = nullptr;
  std::string skipping_;  // name of a duplicate section whose keys are being skipped
};

}  // namespace

const IniEntry* IniSection::find(std::string_view key) const noexcept {
  for (const IniEntry& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

const IniSection* IniFile::find(std::string_view name) const noexcept {
  for (const IniSection& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

IniFile read_ini(std::string_view text) {
  return Reader{}.run(text);
}

}  // namespace ctxalloc::dpdk::detail
