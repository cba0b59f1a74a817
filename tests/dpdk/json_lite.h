// A small JSON reader for the telemetry tests: objects, arrays, strings (with the
// escapes DPDK emits), numbers, true/false/null. Throws std::runtime_error on bad input.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ctxalloc::testing {

struct Json {
  enum class Type { null, boolean, number, string, object, array } type = Type::null;
  bool b = false;
  double num = 0;
  std::string str;
  std::map<std::string, Json> obj;
  std::vector<Json> arr;

  bool is_null() const { return type == Type::null; }
  bool has(const std::string& k) const { return type == Type::object && obj.count(k) != 0; }
  /// Member access that fails loudly: a missing key throws with its name.
  const Json& operator[](const std::string& k) const {
    auto it = obj.find(k);
    if (type != Type::object || it == obj.end()) throw std::runtime_error("no key " + k);
    return it->second;
  }
  std::uint64_t u64() const {
    if (type != Type::number) throw std::runtime_error("not a number");
    return static_cast<std::uint64_t>(num);
  }

  static Json parse(std::string_view s) {
    std::size_t i = 0;
    Json v = value(s, i);
    skip(s, i);
    if (i != s.size()) throw std::runtime_error("trailing text in JSON");
    return v;
  }

 private:
  static void skip(std::string_view s, std::size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r'))
      ++i;
  }
  static void expect(std::string_view s, std::size_t& i, char c) {
    skip(s, i);
    if (i >= s.size() || s[i] != c) throw std::runtime_error(std::string("expected ") + c);
    ++i;
  }
  static std::string string(std::string_view s, std::size_t& i) {
    expect(s, i, '"');
    std::string out;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\' && i + 1 < s.size()) {
        const char e = s[++i];
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        out += s[i];
      }
      ++i;
    }
    expect(s, i, '"');
    return out;
  }
  static Json value(std::string_view s, std::size_t& i) {
    skip(s, i);
    if (i >= s.size()) throw std::runtime_error("unexpected end of JSON");
    Json v;
    const char c = s[i];
    if (c == '{') {
      v.type = Type::object;
      ++i;
      skip(s, i);
      if (i < s.size() && s[i] == '}') return ++i, v;
      while (true) {
        std::string k = string(s, i);
        expect(s, i, ':');
        v.obj.emplace(std::move(k), value(s, i));
        skip(s, i);
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        expect(s, i, '}');
        return v;
      }
    }
    if (c == '[') {
      v.type = Type::array;
      ++i;
      skip(s, i);
      if (i < s.size() && s[i] == ']') return ++i, v;
      while (true) {
        v.arr.push_back(value(s, i));
        skip(s, i);
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        expect(s, i, ']');
        return v;
      }
    }
    if (c == '"') {
      v.type = Type::string;
      v.str = string(s, i);
      return v;
    }
    if (s.substr(i, 4) == "true" || s.substr(i, 5) == "false") {
      v.type = Type::boolean;
      v.b = s[i] == 't';
      i += v.b ? 4 : 5;
      return v;
    }
    if (s.substr(i, 4) == "null") {
      i += 4;
      return v;
    }
    std::size_t used = 0;
    v.num = std::stod(std::string(s.substr(i, 32)), &used);
    v.type = Type::number;
    i += used;
    return v;
  }
};

}  // namespace ctxalloc::testing
