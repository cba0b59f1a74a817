// What ctxfwd's end-to-end tests share: running ctxgen and ctxfwd as processes (with a
// time limit and an optional signal), reading pcaps with libpcap, the generator's packet
// log and JSON files with jansson.
#pragma once

#include <gtest/gtest.h>
#include <jansson.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ctxfwd::testing {

using Frame = std::vector<std::uint8_t>;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "ctxfwd_e2e_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << std::strerror(errno);
    path_ = tmpl;
  }
  ~TempDir() {
    if (std::getenv("CTXFWD_KEEP_TEMP") == nullptr) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// A finished process: exit status (or -signal) and what it printed.
struct ProcessResult {
  int status = -1000;
  std::string output;  ///< stdout and stderr together
  bool timed_out = false;
};

/// Runs `argv` with stdout+stderr to `log`; kills it after `limit`. When `signal_after`
/// is set, sends `sig` once that much time has passed.
inline ProcessResult run_process(const std::vector<std::string>& argv, const std::string& log,
                                 std::chrono::milliseconds limit,
                                 std::chrono::milliseconds signal_after = {}, int sig = 0) {
  ProcessResult r;
  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return r;
  }
  if (pid == 0) {
    if (!freopen(log.c_str(), "w", stdout)) _exit(126);
    dup2(fileno(stdout), STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  const auto start = std::chrono::steady_clock::now();
  bool signalled = false;
  int wstatus = 0;
  for (;;) {
    const pid_t w = waitpid(pid, &wstatus, WNOHANG);
    if (w == pid) break;
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (sig != 0 && !signalled && elapsed >= signal_after) {
      kill(pid, sig);
      signalled = true;
    }
    if (elapsed >= limit) {
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -WTERMSIG(wstatus);
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

/// Removes the runtime folder EAL leaves for `prefix` (/var/run/dpdk/PREFIX as root,
/// else under $XDG_RUNTIME_DIR or /tmp), so that test runs leave nothing behind.
inline void remove_eal_runtime_dir(const std::string& prefix) {
  std::string base = "/var/run";
  if (getuid() != 0) {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    base = xdg != nullptr ? xdg : "/tmp";
  }
  std::error_code ec;
  std::filesystem::remove_all(base + "/dpdk/" + prefix, ec);
}

inline std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) {
    ADD_FAILURE() << name << " is not set (meson test sets it)";
    return "/nonexistent";
  }
  return v;
}

/// Runs ctxgen with `args`; true when it wrote its files.
inline bool run_ctxgen(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv{env_or_fail("CTXGEN_BIN")};
  argv.insert(argv.end(), args.begin(), args.end());
  const ProcessResult r = run_process(argv, log, std::chrono::seconds(120));
  EXPECT_EQ(r.status, 0) << r.output;
  return r.status == 0;
}

/// Every frame of a capture, in order.
inline std::vector<Frame> read_pcap(const std::string& path) {
  std::vector<Frame> frames;
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  if (p == nullptr) {
    ADD_FAILURE() << "pcap_open_offline " << path << ": " << err;
    return frames;
  }
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(p, &hdr, &data) == 1)
    frames.emplace_back(data, data + hdr->caplen);
  pcap_close(p);
  return frames;
}

/// One line of ctxgen's --packet-log: the generator's own account of a frame.
struct LogLine {
  std::uint64_t index = 0;
  std::string cls;     ///< flow, passthrough, malformed
  std::string detail;  ///< flags, kind
  long flow = -1;      ///< flow id, -1 for none
};

inline std::vector<LogLine> read_packet_log(const std::string& path) {
  std::vector<LogLine> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream ss(line);
    LogLine l;
    std::string ts, len, flow, dir;
    std::getline(ss, ts, '\t');
    l.index = std::stoull(ts);
    std::getline(ss, ts, '\t');
    std::getline(ss, len, '\t');
    std::getline(ss, l.cls, '\t');
    std::getline(ss, l.detail, '\t');
    std::getline(ss, flow, '\t');
    l.flow = flow == "-" ? -1 : std::stol(flow);
    lines.push_back(l);
  }
  return lines;
}

struct JsonDeleter {
  void operator()(json_t* j) const { json_decref(j); }
};
using Json = std::unique_ptr<json_t, JsonDeleter>;

inline Json read_json(const std::string& path) {
  json_error_t err;
  Json j(json_load_file(path.c_str(), 0, &err));
  if (!j) ADD_FAILURE() << "JSON " << path << ": " << err.text << " at line " << err.line;
  return j;
}

/// An integer member (a path of object keys); fails the test when it is missing.
inline std::uint64_t json_u64(const json_t* j, std::initializer_list<const char*> path) {
  const json_t* v = j;
  std::string where;
  for (const char* key : path) {
    where += std::string("/") + key;
    v = v == nullptr ? nullptr : json_object_get(v, key);
  }
  if (v == nullptr || !json_is_integer(v)) {
    ADD_FAILURE() << "no integer at " << where;
    return ~std::uint64_t{0};
  }
  return static_cast<std::uint64_t>(json_integer_value(v));
}

inline std::string json_str(const json_t* j, const char* key) {
  const json_t* v = j == nullptr ? nullptr : json_object_get(j, key);
  if (v == nullptr || !json_is_string(v)) {
    ADD_FAILURE() << "no string at " << key;
    return {};
  }
  return json_string_value(v);
}

inline bool json_bool(const json_t* j, const char* key) {
  const json_t* v = j == nullptr ? nullptr : json_object_get(j, key);
  if (v == nullptr || !json_is_boolean(v)) {
    ADD_FAILURE() << "no boolean at " << key;
    return false;
  }
  return json_is_true(v);
}

/// "02:70:63:61:70:00" -> bytes.
inline std::vector<std::uint8_t> parse_mac(const std::string& text) {
  std::vector<std::uint8_t> mac;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ':'))
    mac.push_back(static_cast<std::uint8_t>(std::stoul(part, nullptr, 16)));
  return mac;
}

}  // namespace ctxfwd::testing
