#include "json_writer.h"

#include <cmath>
#include <cstdio>

namespace ctxgen {

void JsonWriter::element(std::string_view key) {
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
    out_ += '\n';
    out_.append(2 * first_.size(), ' ');
  }
  if (!key.empty()) {
    quoted(key);
    out_ += ": ";
  }
}

void JsonWriter::quoted(std::string_view s) {
  out_ += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out_ += '\\';
      out_ += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out_ += buf;
    } else {
      out_ += ch;
    }
  }
  out_ += '"';
}

void JsonWriter::begin_object(std::string_view key) {
  element(key);
  out_ += '{';
  first_.push_back(true);
}

void JsonWriter::end_object() {
  const bool empty = first_.back();
  first_.pop_back();
  if (!empty) {
    out_ += '\n';
    out_.append(2 * first_.size(), ' ');
  }
  out_ += '}';
  if (first_.empty()) out_ += '\n';
}

void JsonWriter::begin_array(std::string_view key) {
  element(key);
  out_ += '[';
  first_.push_back(true);
}

void JsonWriter::end_array() {
  const bool empty = first_.back();
  first_.pop_back();
  if (!empty) {
    out_ += '\n';
    out_.append(2 * first_.size(), ' ');
  }
  out_ += ']';
}

void JsonWriter::value(std::string_view key, std::string_view s) {
  element(key);
  quoted(s);
}

void JsonWriter::value(std::string_view key, std::uint64_t n) {
  element(key);
  out_ += std::to_string(n);
}

void JsonWriter::value(std::string_view key, double x) {
  element(key);
  if (!std::isfinite(x)) {
    out_ += "null";  // JSON has no NaN or infinity
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", x);
  out_ += buf;
}

void JsonWriter::value(std::string_view key, bool b) {
  element(key);
  out_ += b ? "true" : "false";
}

}  // namespace ctxgen
