#include "output.h"

#include <cerrno>
#include <cstring>
#include <memory>

#include "manifest.h"

namespace ctxgen {
namespace {

std::string tcp_flag_text(std::uint8_t flags) {
  static constexpr struct {
    std::uint8_t bit;
    char letter;
  } kLetters[] = {{kTcpSyn, 'S'}, {kTcpFin, 'F'}, {kTcpRst, 'R'}, {kTcpPsh, 'P'}, {kTcpAck, 'A'}};
  std::string s;
  for (const auto& l : kLetters) {
    if ((flags & l.bit) != 0) s += l.letter;
  }
  return s.empty() ? "-" : s;
}

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Writes frames to the pcap and lines to the optional packet log.
class FileSink : public PacketSink {
 public:
  bool open(const std::string& pcap, const std::string& log, std::string* error) {
    if (!pcap_.open(pcap, error)) return false;
    if (!log.empty()) {
      log_.reset(std::fopen(log.c_str(), "w"));
      if (!log_) return *error = errno_text("cannot create", log), false;
      std::fprintf(log_.get(), "%s\n", packet_log_header());
      log_path_ = log;
    }
    return true;
  }

  bool packet(std::span<const std::byte> frame, const PacketRecord& rec,
              std::string* error) override {
    if (!pcap_.write(rec.ts_us, frame, error)) return false;
    if (log_ && std::fprintf(log_.get(), "%s\n", packet_log_line(rec, frame.size()).c_str()) < 0) {
      return *error = errno_text("cannot write", log_path_), false;
    }
    return true;
  }

  bool close(std::string* error) {
    if (!pcap_.close(error)) return false;
    if (log_) {
      std::FILE* f = log_.release();
      const bool ok = std::fflush(f) == 0;
      if (std::fclose(f) != 0 || !ok) return *error = errno_text("cannot finish", log_path_), false;
    }
    return true;
  }

 private:
  PcapWriter pcap_;
  File log_;
  std::string log_path_;
};

bool write_text(const std::string& path, const std::string& text, std::string* error) {
  File f(std::fopen(path.c_str(), "w"));
  if (!f) return *error = errno_text("cannot create", path), false;
  if (std::fwrite(text.data(), 1, text.size(), f.get()) != text.size()) {
    return *error = errno_text("cannot write", path), false;
  }
  std::FILE* raw = f.release();
  const bool flushed = std::fflush(raw) == 0;
  if (std::fclose(raw) != 0 || !flushed) return *error = errno_text("cannot finish", path), false;
  return true;
}

std::string base_name(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

const char* packet_log_header() {
  return "# index\tts_us\tlength\tclass\tdetail\tflow\tdirection";
}

std::string packet_log_line(const PacketRecord& rec, std::size_t length) {
  std::string detail = "-";
  std::string flow = "-";
  std::string dir = "-";
  const char* cls = "flow";
  switch (rec.cls) {
    case PacketClass::malformed:
      cls = "malformed";
      detail = std::string(name(rec.malformed));
      break;
    case PacketClass::passthrough:
      cls = "passthrough";
      detail = std::string(name(rec.pass));
      break;
    case PacketClass::flow:
      detail = rec.proto == kIpProtoTcp ? tcp_flag_text(rec.tcp_flags) : "udp";
      flow = std::to_string(rec.flow_id);
      dir = rec.from_client ? "c2s" : "s2c";
      break;
  }
  return std::to_string(rec.index) + '\t' + std::to_string(rec.ts_us) + '\t' +
         std::to_string(length) + '\t' + cls + '\t' + detail + '\t' + flow + '\t' + dir;
}

bool run_ctxgen(const RunOptions& opts, Manifest& manifest, std::string* error) {
  const std::string manifest_path =
      opts.manifest_path.empty() ? manifest_path_for(opts.pcap_path) : opts.manifest_path;
  const std::string tmp = ".tmp";
  const std::string pcap_tmp = opts.pcap_path + tmp;
  const std::string log_tmp = opts.packet_log_path.empty() ? "" : opts.packet_log_path + tmp;
  const std::string manifest_tmp = manifest_path + tmp;
  auto discard = [&] {
    std::remove(pcap_tmp.c_str());
    if (!log_tmp.empty()) std::remove(log_tmp.c_str());
    std::remove(manifest_tmp.c_str());
  };

  FileSink sink;
  bool ok =
      sink.open(pcap_tmp, log_tmp, error) &&
      generate(opts.profile, opts.seed, sink, manifest, error) && sink.close(error) &&
      write_text(manifest_tmp,
                 manifest_json(manifest, base_name(opts.pcap_path), opts.flow_list_limit), error);
  const std::pair<const std::string*, const std::string*> renames[] = {
      {&pcap_tmp, &opts.pcap_path},
      {&log_tmp, &opts.packet_log_path},
      {&manifest_tmp, &manifest_path}};
  for (const auto& [from, to] : renames) {
    if (!ok || from->empty()) continue;
    if (std::rename(from->c_str(), to->c_str()) != 0) {
      *error = errno_text("cannot rename to", *to);
      ok = false;
    }
  }
  if (!ok) discard();
  return ok;
}

}  // namespace ctxgen
