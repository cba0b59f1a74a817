// A primary and a secondary process of the same binary on one ctxalloc mempool (issue
// 19, item 8). The primary (hugepages, shared config, a unique --file-prefix) makes the
// pool and runs this binary again as a secondary, which looks the pool up, checks that
// the pool's ops_index names the ctxalloc driver in its own process, gets 100 objects on
// its lcore and puts 40 back; the primary then sees 60 fewer objects and a sound pool.
// What each process's statistics registry sees is checked on both sides: a lane belongs to
// the registry of the process that made it, a pool's totals to its creator's (which walks
// every lane, the secondary's included), and freeing the pool in the primary leaves the
// primary's metadata count where it was. Then a secondary whose drivers register in
// another order (secondary_shifted.cc, argv[1]) finds that the pool's ops_index names
// another driver there, and ctxalloc_dpdk_mempool_check refuses it.
// A --no-huge primary cannot have secondaries in DPDK 22.11 (docs/dpdk.md): without
// enough free 2 MiB hugepages the test is skipped (exit 77) with the reason.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_fbarray.h>
#include <rte_lcore.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ctxalloc/dpdk/registry.h"
#include "ctxalloc_dpdk.h"
#include "dpdk/json_lite.h"

namespace {

constexpr unsigned kObjects = 1024;
constexpr unsigned kGot = 100, kPut = 40;
constexpr const char* kPool = "c19_secondary_pool";
constexpr long kPagesNeeded = 24;

long free_2m_hugepages() {
  std::ifstream f("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  long n = 0;
  return (f >> n) ? n : 0;
}

bool eal(const std::string& prefix, const char* lcores, bool secondary) {
  std::vector<std::string> a = {
      "ctxalloc_secondary_test",    "-l", lcores, "--no-pci", "--file-prefix=" + prefix,
      "--log-level=lib.eal:warning"};
  if (secondary) {
    a.push_back("--proc-type=secondary");
  } else {
    // The secondaries map the primary's memory at the primary's addresses. Where the kernel
    // would put them (just below the libraries, 0x7f...) another process often has
    // something already: an ASan build's shadow and allocator, or a dlopen'd plugin, and EAL
    // then fails with "Cannot get a virtual area at requested address". A fixed base far
    // from every process's mappings (and above ASan's shadow) makes the mapping reproducible.
    a.insert(a.end(), {"-m", "32", "--base-virtaddr=0x200000000000"});
  }
  std::vector<char*> argv;
  for (std::string& s : a)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  return rte_eal_init(static_cast<int>(argv.size() - 1), argv.data()) >= 0;
}

using ctxalloc::testing::Json;

// DPDK's telemetry socket of this --file-prefix, as dpdk-telemetry.py reads it: the
// greeting, then the reply to `cmd` (under the command's name). Throws on a bad reply.
struct TelemetryReply {
  Json greeting, value;
};

TelemetryReply ask_telemetry(const std::string& cmd) {
  const std::string path = std::string(rte_eal_get_runtime_dir()) + "/dpdk_telemetry.v2";
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  std::string buf(64 * 1024, '\0');
  auto receive = [&] {
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) throw std::runtime_error("no reply from " + path);
    return Json::parse(std::string_view(buf.data(), static_cast<std::size_t>(n)));
  };
  TelemetryReply r;
  try {
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("cannot connect to " + path);
    r.greeting = receive();
    if (send(fd, cmd.data(), cmd.size(), 0) != static_cast<ssize_t>(cmd.size()))
      throw std::runtime_error("cannot send " + cmd);
    r.value = receive()[cmd.substr(0, cmd.find(','))];
  } catch (...) {
    if (fd >= 0) close(fd);
    throw;
  }
  close(fd);
  return r;
}

int fail(const char* who, const std::string& what) {
  std::fprintf(stderr, "%s: FAILED: %s\n", who, what.c_str());
  return 1;
}

int secondary(const std::string& prefix) {
  if (!eal(prefix, "1", true))
    return fail("secondary", std::string("EAL: ") + rte_strerror(rte_errno));
  rte_mempool* mp = rte_mempool_lookup(kPool);
  if (mp == nullptr) return fail("secondary", "pool not found");
  const rte_mempool_ops* ops = rte_mempool_get_ops(mp->ops_index);
  if (std::strcmp(ops->name, "ctxalloc") != 0)
    return fail("secondary", std::string("the pool's ops_index names ") + ops->name);
  if (mp->ops_index != ctxalloc_dpdk_ops_index()) return fail("secondary", "ops_index differs");
  void* objs[kGot];
  if (rte_mempool_get_bulk(mp, objs, kGot) != 0) return fail("secondary", "get failed");
  rte_mempool_put_bulk(mp, objs, kPut);
  std::printf("secondary (lcore %u): got %u, put %u back\n", rte_lcore_id(), kGot, kPut);
  // The lane this lcore made is in this process's registry; the pool's totals are in the
  // primary's (it made the pool), not here.
  ctxalloc_dpdk_stats lcore{}, socket{};
  if (ctxalloc_dpdk_lcore_stats(rte_lcore_id(), CTXALLOC_ACCOUNT_MEMPOOL, &lcore) != 0 ||
      lcore.allocations != kGot || lcore.deallocations != kPut)
    return fail("secondary", "lcore stats: " + std::to_string(lcore.allocations) + " gets, " +
                                 std::to_string(lcore.deallocations) + " puts");
  if (ctxalloc_dpdk_socket_stats(0, CTXALLOC_ACCOUNT_MEMPOOL, &socket) != 0 ||
      socket.allocations != 0)
    return fail("secondary", "socket stats see the primary's pool: " +
                                 std::to_string(socket.allocations) + " gets");
  char why[256] = "";
  if (ctxalloc_dpdk_mempool_check(mp, why, sizeof why) != 0)
    return fail("secondary", std::string("mempool check: ") + why);
  // Telemetry: DPDK 22.11 gives a secondary no socket of its own (the primary has
  // dpdk_telemetry.v2); a client of this --file-prefix talks to the primary, whose
  // /ctxalloc/mempool walks the pool's lanes, this process's included.
  try {
    const TelemetryReply t = ask_telemetry(std::string("/ctxalloc/mempool,") + kPool);
    if (t.greeting["pid"].u64() != static_cast<std::uint64_t>(getppid()))
      return fail("secondary", "the telemetry socket is not the primary's: pid " +
                                   std::to_string(t.greeting["pid"].u64()));
    const Json& lane = t.value["lanes"][std::to_string(rte_lcore_id())];
    if (lane["gets"].u64() != kGot || lane["puts"].u64() != kPut)
      return fail("secondary", "the primary's telemetry shows this lane with " +
                                   std::to_string(lane["gets"].u64()) + " gets");
  } catch (const std::exception& e) {
    return fail("secondary", std::string("telemetry: ") + e.what());
  }
  rte_eal_cleanup();
  return 0;
}

bool run(const std::vector<std::string>& cmd, const char* what) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const std::string& s : cmd)
      argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    fail("primary", std::string(what) + " did not exit 0 (status " + std::to_string(status) + ")");
    return false;
  }
  return true;
}

std::uint64_t metadata_bytes() {
  return ctxalloc::dpdk::Registry::instance().socket(0).metadata_bytes.load();
}

// Pool data on a page that DPDK reserved but has not mapped (dynamic memory reserves far
// more than -m): the check refuses it without reading it (reading it would fault).
int refuses_unmapped_pool_data(rte_mempool* mp) {
  rte_memseg_list* msl = rte_mem_virt2memseg_list(mp->pool_data);
  if (msl == nullptr) return fail("primary", "the pool's data is not in a memseg list");
  const int free_page = rte_fbarray_find_next_free(&msl->memseg_arr, 0);
  if (free_page < 0) {
    std::printf("primary: every page of the memseg list is mapped: unmapped case not run\n");
    return 0;
  }
  void* const data = mp->pool_data;
  mp->pool_data = static_cast<char*>(msl->base_va) + std::size_t{msl->page_sz} * free_page;
  char why[512] = "";
  const int check = ctxalloc_dpdk_mempool_check(mp, why, sizeof why);
  mp->pool_data = data;
  if (check != -ENXIO)
    return fail("primary", "pool data on an unmapped page: check returned " +
                               std::to_string(check) + " " + why);
  return 0;
}

int primary(const char* self, const char* shifted, const char* library) {
  const long free = free_2m_hugepages();
  if (free < kPagesNeeded) {
    std::printf(
        "SKIP: %ld free 2 MiB hugepages, %ld needed (a --no-huge primary cannot "
        "have secondaries in DPDK 22.11; scripts/setup.sh reserves them)\n",
        free, kPagesNeeded);
    return 77;
  }
  const std::string prefix = "ctxalloc_sec_" + std::to_string(getpid());
  if (!eal(prefix, "0", false)) {
    std::printf("SKIP: EAL could not start on hugepages (%s)\n", rte_strerror(rte_errno));
    return 77;
  }
  const std::uint64_t metadata_before = metadata_bytes();
  rte_mempool* mp = rte_mempool_create_empty(kPool, kObjects, 64, 0, 0, SOCKET_ID_ANY, 0);
  if (mp == nullptr) return fail("primary", "rte_mempool_create_empty");
  if (rte_mempool_set_ops_byname(mp, "ctxalloc", nullptr) != 0)
    return fail("primary", "set_ops_byname");
  if (rte_mempool_populate_default(mp) != static_cast<int>(kObjects))
    return fail("primary", "populate");
  int rc = refuses_unmapped_pool_data(mp);
  if (rc != 0) {
    // reported
  } else if (!run({self, "secondary", prefix}, "the secondary")) {
    rc = 1;
  } else if (rte_mempool_avail_count(mp) != kObjects - (kGot - kPut)) {
    rc = fail("primary", "avail " + std::to_string(rte_mempool_avail_count(mp)) + ", expected " +
                             std::to_string(kObjects - (kGot - kPut)));
  } else {
    char why[256] = "";
    ctxalloc_dpdk_stats socket{}, lcore1{};
    if (ctxalloc_dpdk_mempool_check(mp, why, sizeof why) != 0)
      rc = fail("primary", std::string("mempool check: ") + why);
    // The pool's totals walk every lane, the one the secondary made included; that lane is
    // not in this process's lcore 1 figures (it is in the secondary's registry).
    else if (ctxalloc_dpdk_socket_stats(0, CTXALLOC_ACCOUNT_MEMPOOL, &socket) != 0 ||
             socket.allocations != kGot || socket.deallocations != kPut)
      rc = fail("primary", "socket stats: " + std::to_string(socket.allocations) + " gets, " +
                               std::to_string(socket.deallocations) + " puts");
    else if (ctxalloc_dpdk_lcore_stats(1, CTXALLOC_ACCOUNT_MEMPOOL, &lcore1) != 0 ||
             lcore1.allocations != 0)
      rc = fail("primary", "lcore 1 stats here: " + std::to_string(lcore1.allocations));
    else if (!run({shifted, prefix, kPool, library}, "the shifted secondary"))
      rc = 1;
  }
  if (rc == 0)
    std::printf("primary: %u of %u objects available after the secondary: ok\n",
                rte_mempool_avail_count(mp), kObjects);
  rte_mempool_free(mp);
  if (rc == 0 && metadata_bytes() != metadata_before)
    rc = fail("primary", "metadata bytes " + std::to_string(metadata_bytes()) +
                             " after the pool was freed, " + std::to_string(metadata_before) +
                             " before it was made");
  const std::string runtime_dir = rte_eal_get_runtime_dir();  // shared config: ours to remove
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir, ec);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "secondary") == 0) return secondary(argv[2]);
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SHIFTED_SECONDARY LIBCTXALLOC_DPDK\n", argv[0]);
    return 2;
  }
  return primary("/proc/self/exe", argv[1], argv[2]);
}
