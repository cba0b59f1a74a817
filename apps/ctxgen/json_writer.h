// A minimal streaming JSON writer: objects, arrays, strings, integers, doubles, booleans,
// two-space indentation and keys in the order written (so manifests diff well). Enough
// for the manifest; not a general library.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ctxgen {

class JsonWriter {
 public:
  /// Starts an object or array; `key` only inside an object.
  void begin_object(std::string_view key = {});
  void end_object();
  void begin_array(std::string_view key = {});
  void end_array();
  void value(std::string_view key, std::string_view s);
  void value(std::string_view key, const char* s) { value(key, std::string_view(s)); }
  void value(std::string_view key, std::uint64_t n);
  void value(std::string_view key, double x);
  void value(std::string_view key, bool b);
  /// The document so far.
  const std::string& text() const { return out_; }

 private:
  void element(std::string_view key);  // comma, newline, indentation and "key": as needed
  void quoted(std::string_view s);

  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written into it yet
};

}  // namespace ctxgen
