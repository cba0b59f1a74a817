// Numbers in configuration values: whole numbers, sizes with binary units, durations,
// lcore lists. Each parser returns the value or a sentence saying what is wrong.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ctxalloc::dpdk::detail {

/// A value or the reason it was refused.
template <class T>
struct Parsed {
  std::variant<T, std::string> v;

  bool ok() const noexcept { return v.index() == 0; }
  const T& value() const { return std::get<0>(v); }
  const std::string& error() const { return std::get<1>(v); }
};

/// A whole number in decimal: "0", "4096". Refuses signs, fractions, other bases,
/// numbers above `max`.
Parsed<std::uint64_t> parse_count(std::string_view s, std::uint64_t max);

/// A size in bytes: a whole number with an optional binary unit, K/M/G/T (or KiB, MiB,
/// GiB, TiB; case-insensitive; "B" alone for bytes): "4096", "64K", "2MiB". Refuses
/// decimal units ("2MB": say 2M or 2MiB), fractions, zero, and sizes that overflow.
Parsed<std::uint64_t> parse_size(std::string_view s);

/// A duration with a unit: ms, s, min ("500ms", "10s", "2min"). Refuses zero and bare
/// numbers (the unit is not guessed).
Parsed<std::chrono::milliseconds> parse_duration(std::string_view s);

/// A list of ids and ranges: "0", "0-3", "0,2,4-7", each below `limit`. Refuses
/// duplicates and reversed ranges; the result is sorted.
Parsed<std::vector<unsigned>> parse_id_list(std::string_view s, unsigned limit);

/// "0-3,6" for {0,1,2,3,6}.
std::string format_id_list(const std::vector<unsigned>& ids);

}  // namespace ctxalloc::dpdk::detail
