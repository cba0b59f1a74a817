// Parsers of numbers, sizes, durations and id lists for configuration values.
#include <algorithm>
#include <cctype>

#include "detail/units.h"

namespace ctxalloc::dpdk::detail {
namespace {

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The leading digits of s as a number, and what follows them. Fails on no digits, a
// sign, a fraction and overflow.
Parsed<std::uint64_t> leading_number(std::string_view s, std::string_view& rest) {
  if (s.empty()) return {std::string("empty value")};
  if (s.front() == '-') return {quoted(s) + " is negative"};
  if (s.front() == '+') return {quoted(s) + ": no sign allowed"};
  std::uint64_t v = 0;
  std::size_t i = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    const std::uint64_t d = static_cast<std::uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return {quoted(s) + " is too large"};
    v = v * 10 + d;
  }
  if (i == 0) return {quoted(s) + " is not a number"};
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) return {quoted(s) + " is not a whole number"};
  if (i + 1 < s.size() && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    return {quoted(s) + ": write numbers in decimal"};
  rest = s.substr(i);
  while (!rest.empty() && rest.front() == ' ')
    rest.remove_prefix(1);
  return {v};
}

}  // namespace

Parsed<std::uint64_t> parse_count(std::string_view s, std::uint64_t max) {
  std::string_view rest;
  Parsed<std::uint64_t> n = leading_number(s, rest);
  if (!n.ok()) return n;
  if (!rest.empty()) return {quoted(s) + " is not a whole number"};
  if (n.value() > max) return {quoted(s) + " is above the limit of " + std::to_string(max)};
  return n;
}

Parsed<std::uint64_t> parse_size(std::string_view s) {
  std::string_view rest;
  Parsed<std::uint64_t> n = leading_number(s, rest);
  if (!n.ok()) return n;
  const std::string unit = lower(rest);
  unsigned shift = 0;
  if (unit.empty() || unit == "b") {
    shift = 0;
  } else if (unit == "k" || unit == "kib") {
    shift = 10;
  } else if (unit == "m" || unit == "mib") {
    shift = 20;
  } else if (unit == "g" || unit == "gib") {
    shift = 30;
  } else if (unit == "t" || unit == "tib") {
    shift = 40;
  } else if (unit == "kb" || unit == "mb" || unit == "gb" || unit == "tb") {
    return {quoted(s) + ": decimal unit; write " + std::string(1, rest[0]) + " or " +
            std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(rest[0])))) +
            "iB (binary)"};
  } else {
    return {quoted(s) + ": unknown unit \"" + std::string(rest) + "\" (use K, M, G or T)"};
  }
  if (n.value() == 0) return {quoted(s) + ": size must be above zero"};
  if (n.value() > (UINT64_MAX >> shift)) return {quoted(s) + " is too large"};
  return {n.value() << shift};
}

Parsed<std::chrono::milliseconds> parse_duration(std::string_view s) {
  std::string_view rest;
  Parsed<std::uint64_t> n = leading_number(s, rest);
  if (!n.ok()) return {n.error()};
  const std::string unit = lower(rest);
  std::uint64_t ms_per = 0;
  if (unit == "ms") {
    ms_per = 1;
  } else if (unit == "s") {
    ms_per = 1000;
  } else if (unit == "min") {
    ms_per = 60'000;
  } else if (unit.empty()) {
    return {quoted(s) + ": give a unit (ms, s or min)"};
  } else {
    return {quoted(s) + ": unknown unit \"" + std::string(rest) + "\" (use ms, s or min)"};
  }
  if (n.value() == 0) return {quoted(s) + ": duration must be above zero"};
  // A day is plenty for an idle timeout, and keeps the product far from overflow.
  if (n.value() * ms_per > 86'400'000) return {quoted(s) + " is longer than a day"};
  return {std::chrono::milliseconds(n.value() * ms_per)};
}

Parsed<std::vector<unsigned>> parse_id_list(std::string_view s, unsigned limit) {
  std::vector<unsigned> ids;
  while (true) {
    const std::size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    const std::size_t dash = item.find('-', 1);
    const std::string_view lo_s = item.substr(0, dash);
    const std::string_view hi_s = dash == std::string_view::npos ? lo_s : item.substr(dash + 1);
    const Parsed<std::uint64_t> lo = parse_count(lo_s, limit - 1);
    if (!lo.ok()) return {"in list: " + lo.error()};
    const Parsed<std::uint64_t> hi = parse_count(hi_s, limit - 1);
    if (!hi.ok()) return {"in list: " + hi.error()};
    if (hi.value() < lo.value()) return {"range " + quoted(item) + " is reversed"};
    for (std::uint64_t i = lo.value(); i <= hi.value(); ++i) {
      if (std::find(ids.begin(), ids.end(), i) != ids.end())
        return {std::to_string(i) + " is listed twice"};
      ids.push_back(static_cast<unsigned>(i));
    }
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  std::sort(ids.begin(), ids.end());
  return {std::move(ids)};
}

std::string format_id_list(const std::vector<unsigned>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1)
      ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(ids[i]);
    if (j > i) out += "-" + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace ctxalloc::dpdk::detail
