// libFuzzer target: the DPDK plugin's configuration reader and validator (the INI reader
// and parse_config), which read files users write. Pure C++: it includes the plugin's
// headers and asks nothing of DPDK. Built as a fuzzer in the asan variant (clang);
// replayed over fuzz/corpus/config/ and fixed-seed inputs by the fuzz_replay_config test.
//
// Beyond "no crash, no out-of-bounds read", it checks what the reader promises:
//   - every error names a line of the input (1..lines, or 0 for the file as a whole);
//   - a configuration comes back exactly when there are no errors;
//   - reading is deterministic (the same text gives the same diagnostics);
//   - an accepted configuration can be described (describe()) without failing.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ctxalloc/dpdk/config.h"
#include "detail/ini_reader.h"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "config_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace dpdk = ctxalloc::dpdk;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t lines = 1;
  for (char c : text)
    lines += c == '\n';

  const dpdk::detail::IniFile ini = dpdk::detail::read_ini(text);
  for (const auto& e : ini.errors) {
    if (e.line > lines) violated("an INI error names a line past the end");
    if (e.message.empty()) violated("an INI error without a message");
  }
  for (const auto& s : ini.sections) {
    if (s.line == 0 || s.line > lines) violated("a section on no line of the input");
    for (const auto& e : s.entries) {
      if (e.line < s.line || e.line > lines) violated("an entry outside its section's lines");
    }
  }

  const dpdk::ConfigResult r = dpdk::parse_config(text, "fuzz.ini");
  if (r.ok() != r.errors.empty()) violated("a configuration together with errors, or neither");
  for (const auto& d : r.errors) {
    if (d.line > lines) violated("a diagnostic names a line past the end");
    if (d.message.empty() || d.to_string().empty()) violated("an empty diagnostic");
  }
  const dpdk::ConfigResult again = dpdk::parse_config(text, "fuzz.ini");
  if (again.errors.size() != r.errors.size() || again.ok() != r.ok()) violated("not deterministic");
  for (std::size_t i = 0; i < r.errors.size(); ++i) {
    if (again.errors[i].to_string() != r.errors[i].to_string()) violated("not deterministic");
  }
  if (r.ok()) {
    if (dpdk::describe(*r.config).empty())
      violated("an accepted configuration describes as nothing");
  }
  return 0;
}
