// Unmodified Debian programs under libctxalloc_preload.so: each runs once normally and
// once preloaded, the outputs must be identical, and the exit report (CTXALLOC_STATS)
// must show that ctxalloc served the allocations -- a mistyped LD_PRELOAD path only
// makes ld.so warn and run the program on glibc, which the first test shows this check
// catches. Also: a program that forks while threads allocate, and memcheck.
//
// The paths come from meson: CTXALLOC_PRELOAD_LIB (the library), CTXALLOC_FORK_STRESS.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "report.h"

extern char** environ;

namespace {

using ctxalloc::testing::Report;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

bool executable_file(const std::string& path) {
  return access(path.c_str(), X_OK) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (env_or_empty("TMPDIR").empty() ? "/tmp" : env_or_empty("TMPDIR")) +
                       "/ctxalloc-preload-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    path_ = mkdtemp(buf.data()) != nullptr ? std::string(buf.data()) : std::string();
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

struct Exec {
  pid_t pid = -1;
  int status = -1;
  bool timed_out = false;
  bool exited_ok() const { return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string describe() const {
    if (timed_out) return "timed out (a deadlock?)";
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "exit status " + std::to_string(WEXITSTATUS(status));
  }
};

// Runs argv with the environment of this process minus the allocator variables, plus
// `extra`, stdin/stdout/stderr redirected to files, killed after timeout_s.
Exec run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra,
         const std::string& in, const std::string& out, const std::string& err,
         int timeout_s = 180) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (key == "LD_PRELOAD" || key == "CTXALLOC_STATS" || key == "CTXALLOC_MODE" ||
        extra.count(key) != 0) {
      continue;
    }
    env.push_back(kv);
  }
  for (const auto& [k, v] : extra)
    env.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv)
    cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env)
    cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in.empty() ? "/dev/null" : in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  Exec r;
  if (posix_spawn(&r.pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data()) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return r;
  }
  posix_spawn_file_actions_destroy(&fa);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    const pid_t w = waitpid(r.pid, &r.status, WNOHANG);
    if (w == r.pid) return r;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(r.pid, SIGKILL);
      waitpid(r.pid, &r.status, 0);
      r.timed_out = true;
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The checks every preloaded run must pass: ctxalloc wrote its report, served at least
// min_allocations from min_threads threads, and saw no misuse, failure or recursion.
void expect_served(const Report& r, std::uint64_t min_allocations, std::uint64_t min_threads) {
  ASSERT_TRUE(r.found()) << "no ctxalloc report: the program did not run on ctxalloc";
  EXPECT_EQ(r.mode(), "thread");
  EXPECT_GE(r.get("total", "allocations"), min_allocations);
  EXPECT_GE(r.get("process", "threads"), min_threads);
  EXPECT_EQ(r.get("total", "misuses"), 0u);
  EXPECT_EQ(r.get("total", "failures"), 0u);
  EXPECT_EQ(r.get("front", "nested_calls"), 0u);
  EXPECT_EQ(r.get("front", "dropped_frees"), 0u);
}

class Programs : public ::testing::Test {
 protected:
  void SetUp() override {
    lib_ = env_or_empty("CTXALLOC_PRELOAD_LIB");
    ASSERT_FALSE(lib_.empty()) << "CTXALLOC_PRELOAD_LIB is not set (run through meson test)";
    ASSERT_TRUE(executable_file(lib_) || access(lib_.c_str(), R_OK) == 0) << lib_;
    ASSERT_TRUE(dir_.ok());
  }
  // The environment of a preloaded run writing its report to `stats`.
  std::map<std::string, std::string> preloaded(const std::string& stats) const {
    return {{"LD_PRELOAD", lib_}, {"CTXALLOC_STATS", stats}};
  }
  std::string lib_;
  TempDir dir_;
};

TEST_F(Programs, AMistypedPreloadPathIsCaughtByTheReportCheck) {
  const std::string stats = dir_ / "stats";
  // printf leaves through exit() (dash's builtin echo would leave through _exit, which
  // runs no exit report).
  const Exec r =
      run({"/usr/bin/printf", "hello\\n"},
          {{"LD_PRELOAD", dir_ / "no-such-dir/libctxalloc_preload.so"}, {"CTXALLOC_STATS", stats}},
          "", dir_ / "out", dir_ / "err");
  ASSERT_TRUE(r.exited_ok()) << r.describe();  // ld.so only warns...
  EXPECT_EQ(read_file(dir_ / "out"), "hello\n");
  EXPECT_NE(read_file(dir_ / "err").find("cannot be preloaded"), std::string::npos);
  EXPECT_FALSE(Report::from_file(stats, r.pid).found());  // ...and the check sees it
  // The same program with the right path has its report.
  const Exec good =
      run({"/usr/bin/printf", "hello\\n"}, preloaded(stats), "", dir_ / "out", dir_ / "err");
  ASSERT_TRUE(good.exited_ok()) << good.describe();
  EXPECT_TRUE(Report::from_file(stats, good.pid).found());
}

// Threads building and dropping dicts, lists and strings, and a producer/consumer queue
// (objects made by one thread, freed by another). PYTHONMALLOC=malloc sends every
// object to malloc instead of Python's own small-object arenas.
constexpr const char* kPythonScript = R"PY(
import hashlib, json, queue, random, threading

def work(seed, out):
    rnd = random.Random(seed)
    d, acc = {}, []
    for i in range(40000):
        k = "k%d" % rnd.randrange(4000)
        d[k] = [rnd.random() for _ in range(rnd.randrange(1, 8))]
        if i % 7 == 0:
            d.pop("k%d" % rnd.randrange(4000), None)
        acc.append(str(i) * (i % 5))
        if len(acc) > 1000:
            acc = acc[500:]
    out[seed] = hashlib.sha256(json.dumps(sorted(d.items())).encode()).hexdigest()

out = {}
threads = [threading.Thread(target=work, args=(s, out)) for s in range(4)]
for t in threads: t.start()
for t in threads: t.join()

q = queue.Queue(maxsize=1000)
def producer():
    for i in range(40000):
        q.put({"i": i, "s": "x" * (i % 300), "l": list(range(i % 20))})
    q.put(None)
total = [0]
def consumer():
    while True:
        item = q.get()
        if item is None: break
        total[0] += len(item["s"]) + sum(item["l"])
p, c = threading.Thread(target=producer), threading.Thread(target=consumer)
p.start(); c.start(); p.join(); c.join()
print(sorted(out.items()), total[0])
)PY";

TEST_F(Programs, Python3ThreadsAllocatingHeavily) {
  const std::string python = "/usr/bin/python3";
  if (!executable_file(python)) GTEST_SKIP() << python << " is not installed (scripts/setup.sh)";
  const std::string script = dir_ / "work.py";
  write_file(script, kPythonScript);
  const std::map<std::string, std::string> pymalloc{{"PYTHONMALLOC", "malloc"}};
  const Exec plain = run({python, script}, pymalloc, "", dir_ / "plain.out", dir_ / "plain.err");
  ASSERT_TRUE(plain.exited_ok()) << plain.describe() << read_file(dir_ / "plain.err");
  const std::string stats = dir_ / "stats";
  auto env = preloaded(stats);
  env.insert(pymalloc.begin(), pymalloc.end());
  const Exec pre = run({python, script}, env, "", dir_ / "pre.out", dir_ / "pre.err");
  ASSERT_TRUE(pre.exited_ok()) << pre.describe() << read_file(dir_ / "pre.err");
  EXPECT_EQ(read_file(dir_ / "pre.out"), read_file(dir_ / "plain.out"));
  EXPECT_FALSE(read_file(dir_ / "plain.out").empty());
  const Report r = Report::from_file(stats, pre.pid);
  expect_served(r, 1000000, 7);
  EXPECT_GT(r.get("thread-heaps", "remote_frees"), 0u) << "no object crossed threads";
}

// Deterministic input: numbered lines with pseudo-random keys.
std::string make_lines(std::size_t n) {
  std::string text;
  std::uint64_t x = 88172645463325252ULL;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    text += std::to_string(x % 1000003) + " line " + std::to_string(i) + " " +
            std::string(x % 40, static_cast<char>('a' + x % 26)) + "\n";
  }
  return text;
}

TEST_F(Programs, SortWithTwoThreads) {
  const std::string sort = "/usr/bin/sort";
  if (!executable_file(sort)) GTEST_SKIP() << sort << " is not installed (coreutils)";
  const std::string in = dir_ / "in.txt";
  // Enough lines per 16 MiB buffer for sort to split each buffer between two threads.
  write_file(in, make_lines(800000));
  const std::vector<std::string> args = {sort, "--parallel=2", "-S", "16M", "-T", dir_ / "", in};
  const Exec plain = run(args, {}, "", dir_ / "plain.out", dir_ / "plain.err");
  ASSERT_TRUE(plain.exited_ok()) << plain.describe() << read_file(dir_ / "plain.err");
  const std::string stats = dir_ / "stats";
  const Exec pre = run(args, preloaded(stats), "", dir_ / "pre.out", dir_ / "pre.err");
  ASSERT_TRUE(pre.exited_ok()) << pre.describe() << read_file(dir_ / "pre.err");
  EXPECT_EQ(read_file(dir_ / "pre.out"), read_file(dir_ / "plain.out"));
  EXPECT_EQ(read_file(dir_ / "plain.out").size(), read_file(in).size());
  // At least the main thread: sort's second thread sorts in buffers the main thread
  // allocated and calls malloc only now and then (on a loaded machine one run in a few
  // registered no second thread). Threads that allocate and free across each other are
  // the xz and fork_stress tests' job.
  expect_served(Report::from_file(stats, pre.pid), 100, 1);
}

TEST_F(Programs, XzWithTwoThreadsCompressesAndDecompresses) {
  const std::string xz = "/usr/bin/xz";
  if (!executable_file(xz)) GTEST_SKIP() << xz << " is not installed (xz-utils)";
  const std::string in = dir_ / "in.txt";
  write_file(in, make_lines(200000));
  // Blocks of 1 MiB: the input is split and both threads compress.
  const std::vector<std::string> pack = {xz, "-T2", "-1", "--block-size=1MiB", "-c", in};
  const Exec plain = run(pack, {}, "", dir_ / "plain.xz", dir_ / "plain.err");
  ASSERT_TRUE(plain.exited_ok()) << plain.describe() << read_file(dir_ / "plain.err");
  const std::string stats = dir_ / "stats";
  const Exec pre = run(pack, preloaded(stats), "", dir_ / "pre.xz", dir_ / "pre.err");
  ASSERT_TRUE(pre.exited_ok()) << pre.describe() << read_file(dir_ / "pre.err");
  EXPECT_EQ(read_file(dir_ / "pre.xz"), read_file(dir_ / "plain.xz"));
  expect_served(Report::from_file(stats, pre.pid), 20, 3);
  const Exec unpack = run({xz, "-d", "-T2", "-c", dir_ / "pre.xz"}, preloaded(stats), "",
                          dir_ / "back.txt", dir_ / "back.err");
  ASSERT_TRUE(unpack.exited_ok()) << unpack.describe() << read_file(dir_ / "back.err");
  EXPECT_EQ(read_file(dir_ / "back.txt"), read_file(in));
  expect_served(Report::from_file(stats, unpack.pid), 10, 1);
}

// The pids of the reports of children forked by parent (lines with forked_from=parent).
std::vector<pid_t> forked_children(const std::string& text, pid_t parent) {
  std::vector<pid_t> pids;
  const std::regex line("ctxalloc\\[([0-9]+)\\]: process .* forked_from=" + std::to_string(parent) +
                        "\\b");
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    std::smatch m;
    if (std::regex_search(l, m, line)) pids.push_back(std::stoi(m[1]));
  }
  return pids;
}

TEST_F(Programs, ForkWhileOtherThreadsAllocate) {
  const std::string prog = env_or_empty("CTXALLOC_FORK_STRESS");
  ASSERT_TRUE(executable_file(prog)) << "CTXALLOC_FORK_STRESS: " << prog;
  const std::string stats = dir_ / "stats";
  constexpr int kForks = 12;
  const Exec r =
      run({prog, std::to_string(kForks), "3"}, preloaded(stats), "", dir_ / "out", dir_ / "err");
  ASSERT_TRUE(r.exited_ok()) << r.describe() << read_file(dir_ / "err");
  const Report parent = Report::from_file(stats, r.pid);
  expect_served(parent, 100000, 4);
  EXPECT_EQ(parent.get("process", "forks"), static_cast<std::uint64_t>(kForks));
  const std::string text = read_file(stats);
  const std::vector<pid_t> children = forked_children(text, r.pid);
  ASSERT_EQ(children.size(), static_cast<std::size_t>(kForks));
  for (pid_t c : children) {
    const Report child = Report::from_file(stats, c);
    // Each child found the workers' heaps without their threads and abandoned them,
    // freed blocks of them, and ran threads of its own, which exited: at its exit every
    // heap but its main thread's is abandoned.
    EXPECT_GE(child.get("thread-heaps", "abandoned"), 2u) << "child " << c;
    EXPECT_EQ(child.get("thread-heaps", "heaps") - child.get("thread-heaps", "abandoned"), 1u)
        << "child " << c;
    EXPECT_EQ(child.get("total", "misuses"), 0u) << "child " << c;
    EXPECT_EQ(child.get("total", "failures"), 0u) << "child " << c;
  }
}

// memcheck replaces malloc in every object that defines it, ours included, unless told
// not to: with --soname-synonyms=somalloc=nouserintercepts ctxalloc's malloc runs and
// memcheck checks ctxalloc's own memory accesses (see docs/preload.md for what it can
// and cannot see then).
TEST_F(Programs, MemcheckRunsOurMallocCleanWhenToldNotToReplaceIt) {
  const std::string valgrind = "/usr/bin/valgrind";
  if (!executable_file(valgrind)) GTEST_SKIP() << valgrind << " is not installed";
  const std::string prog = env_or_empty("CTXALLOC_FORK_STRESS");
  ASSERT_TRUE(executable_file(prog));
  const std::string stats = dir_ / "stats";
  const Exec checked = run({valgrind, "-q", "--error-exitcode=99",
                            "--soname-synonyms=somalloc=nouserintercepts", prog, "3", "2"},
                           preloaded(stats), "", dir_ / "out", dir_ / "err", 300);
  ASSERT_TRUE(checked.exited_ok()) << checked.describe() << read_file(dir_ / "err");
  expect_served(Report::from_file(stats, checked.pid), 10000, 3);
  // Without the option memcheck serves the allocations itself: the report shows none.
  const Exec replaced = run({valgrind, "-q", prog, "1", "1"}, preloaded(stats), "", dir_ / "out2",
                            dir_ / "err2", 300);
  ASSERT_TRUE(replaced.exited_ok()) << replaced.describe() << read_file(dir_ / "err2");
  const Report r = Report::from_file(stats, replaced.pid);
  ASSERT_TRUE(r.found());
  EXPECT_EQ(r.get("total", "allocations"), 0u);
}

}  // namespace
