// The DPDK plugin on two real NUMA nodes (the guest of scripts/numa_guest.sh), with
// config/two-socket.ini: lcore 0 on node 0 and lcore 8 on node 1, a global heap per
// socket, per-lcore thread heaps and flow contexts on hugepages, and a ctxalloc mempool
// on each socket. Every check asks the kernel where the memory is (move_pages on every
// page of every block) and sysfs how many hugepages each node has free before, during and
// after; DPDK's and ctxalloc's own figures are only compared with that. Then what a wrong
// placement looks like: a socket with no hugepages or too few, refused with the node and
// the numbers under `require`, a logged fallback to normal pages on that node under
// `prefer` -- never memory on the other node.
//
// EAL starts once per process, so each scenario runs in a child process (forked before
// EAL) whose gtest failures are printed into its output and make it exit 1. Skips on a
// machine without two nodes, and outside the guest (it changes the nodes' hugepage
// reservations, which on a real host belong to everyone).
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/switchable/switchable.h"
#include "dpdk/lcore_run.h"
#include "two_node.h"

namespace ctxalloc::dpdk {
namespace {

using ctxalloc::testing::all_on;
using ctxalloc::testing::describe;
using ctxalloc::testing::node_hugepages;
using ctxalloc::testing::NodeHugepages;
using ctxalloc::testing::nodes_of;

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kHuge = 2 * kMiB;
// config/two-socket.ini: lcores 0-7 on socket 0, 8-15 on socket 1.
constexpr unsigned kLcore[2] = {0, 8};
// What the file asks for, per socket, with only lcores 0 and 8: the global heap (256 MiB)
// and the lcore's region (thread_size + 1,024 ready 8 KiB flow blocks: lcore 0 4 + 8 MiB,
// lcore 8 16 + 8 MiB).
constexpr std::size_t kGlobalHeap = 256 * kMiB;
constexpr std::size_t kRegion[2] = {12 * kMiB, 24 * kMiB};
constexpr std::size_t kReadyBytes = 8 * kMiB;
constexpr std::size_t kSegment = 4 * kMiB;

std::string source_root() {
  const char* r = std::getenv("CTXALLOC_SOURCE_ROOT");
  return r != nullptr ? r : ".";
}

// Why this binary must not run here, or empty.
std::string why_skip() {
  std::string why = ctxalloc::testing::why_not_two_nodes();
  if (!why.empty()) return "needs two NUMA nodes with CPUs: " + why;
  if (std::getenv("CTXALLOC_NUMA_GUEST") == nullptr)
    return "changes the nodes' hugepage reservations: runs only in the guest of "
           "scripts/numa_guest.sh (CTXALLOC_NUMA_GUEST=1)";
  if (node_hugepages(0).total < 0 || node_hugepages(1).total < 0)
    return "no 2 MiB hugepage counts per node in sysfs";
  return {};
}

#define SKIP_UNLESS_IN_TWO_NODE_GUEST()      \
  do {                                       \
    const std::string why_ = why_skip();     \
    if (!why_.empty()) GTEST_SKIP() << why_; \
  } while (0)

// ------------------------------------------------------------------ child processes

struct ChildResult {
  int status = -1;  // exit code, or -signal
  std::string output;
};

// body() in a child process with stdout and stderr captured; the child exits 1 when a
// gtest expectation failed in it (the failure is printed into the output).
ChildResult in_child(const std::function<void()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    body();
    std::fflush(nullptr);
    _exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  close(fds[1]);
  ChildResult r;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
    r.output.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
  return r;
}

// Sets node n's 2 MiB hugepage reservation and puts the old one back on destruction.
class NodeReservation {
 public:
  NodeReservation(unsigned node, long pages) : node_(node), saved_(node_hugepages(node).total) {
    write(pages);
  }
  ~NodeReservation() { write(saved_); }
  bool ok(long pages) const { return node_hugepages(node_).total == pages; }

 private:
  void write(long pages) const {
    std::ofstream(ctxalloc::testing::node_hugepage_dir(node_) + "nr_hugepages") << pages;
  }
  unsigned node_;
  long saved_;
};

// rte_eal_init with lcore 0 on node 0's CPU and lcore 8 on node 1's, hugepages, in
// memory (nothing left behind), with `config` as the plugin's configuration.
bool start_eal(const std::string& config) {
  setenv("CTXALLOC_CONFIG", config.c_str(), 1);
  const std::string lcores = "0@" + std::to_string(ctxalloc::testing::first_cpu_of(0)) + ",8@" +
                             std::to_string(ctxalloc::testing::first_cpu_of(1));
  std::vector<std::string> args = {"two_node_dpdk_test",
                                   "--lcores",
                                   lcores,
                                   "--in-memory",
                                   "--no-pci",
                                   "--no-telemetry",
                                   "--file-prefix=ctxalloc-2n-" + std::to_string(getpid()),
                                   "--log-level=lib.eal:warning",
                                   "--log-level=ctxalloc:info"};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = rte_eal_init(static_cast<int>(argv.size() - 1), argv.data());
  EXPECT_GE(rc, 0) << "rte_eal_init: " << rte_strerror(rte_errno);
  if (rc < 0) return false;
  EXPECT_EQ(rte_lcore_to_socket_id(kLcore[0]), 0u);
  EXPECT_EQ(rte_lcore_to_socket_id(kLcore[1]), 1u);
  return rte_lcore_to_socket_id(kLcore[1]) == 1;
}

// f() on lcore l: here on the main lcore, else launched on the waiting worker.
template <class F>
auto on(unsigned l, F f) {
  if (l == rte_lcore_id()) return f();
  return ctxalloc::testing::on_lcore(l, std::move(f));
}

// Whether the block's pages are all on `node` (the kernel's word), with DPDK's memseg
// socket agreeing for hugepage memory.
::testing::AssertionResult placed_on(const void* p, std::size_t bytes, unsigned node,
                                     const char* what) {
  const auto m = nodes_of(p, bytes);
  if (m.size() != 1 || m.begin()->first != static_cast<int>(node))
    return ::testing::AssertionFailure()
           << what << " at " << p << " (" << bytes << " B) should be on node " << node
           << ", the kernel has its pages on " << describe(m);
  if (const rte_memseg* ms = rte_mem_virt2memseg(p, nullptr);
      ms != nullptr && ms->socket_id != static_cast<int>(node))
    return ::testing::AssertionFailure() << what << " at " << p << ": DPDK's memseg says socket "
                                         << ms->socket_id << ", expected " << node;
  return ::testing::AssertionSuccess();
}

// The nodes of every hugetlb mapping of this process (/proc/self/numa_maps): a mapping
// whose pages lie on two nodes is reported.
std::vector<std::string> mixed_huge_mappings(std::size_t huge_pages_on[2]) {
  std::vector<std::string> mixed;
  std::ifstream f("/proc/self/numa_maps");
  for (std::string line; std::getline(f, line);) {
    if (line.find(" huge") == std::string::npos) continue;
    std::istringstream words(line);
    std::set<int> nodes;
    for (std::string w; words >> w;) {
      if (w.size() > 2 && w[0] == 'N' && std::isdigit(static_cast<unsigned char>(w[1])) &&
          w.find('=') != std::string::npos) {
        const int n = std::stoi(w.substr(1));
        nodes.insert(n);
        if (n >= 0 && n < 2) huge_pages_on[n] += std::stoul(w.substr(w.find('=') + 1));
      }
    }
    if (nodes.size() > 1) mixed.push_back(line);
  }
  return mixed;
}

// ------------------------------------------------------------------ what each lcore checks

// Blocks an lcore made, to be freed by the other one.
struct Handoff {
  std::vector<void*> blocks;
  void* flow_block = nullptr;
  Context* flow = nullptr;
};

// On lcore l (socket s): its thread heap, run dry, and the global heap it then falls
// back to; all its ready flow contexts and a spill; the socket's global heap in global
// mode. Every page of every block on node s. Returns blocks for the other lcore to free.
Handoff exercise_lcore(unsigned l, unsigned s) {
  Handoff out;
  EXPECT_EQ(bind_lcore(), 0) << "lcore " << l;
  const LcoreFigures start = lcore_figures(l);
  EXPECT_TRUE(start.present && start.bound && start.thread_mode) << "lcore " << l;
  EXPECT_EQ(start.socket, s);

  // The thread heap until it passes requests to the global heap: its whole region.
  std::vector<void*> blocks;
  std::size_t local_bytes = 0;
  for (int i = 0; i < 1024 && lcore_figures(l).thread_to_global == start.thread_to_global; ++i) {
    void* p = ctxalloc::allocate(64 * 1024);
    if (p == nullptr) break;
    std::memset(p, 0x11, 64 * 1024);
    EXPECT_TRUE(placed_on(p, 64 * 1024, s, "a thread-heap block"));
    blocks.push_back(p);
    local_bytes += 64 * 1024;
  }
  const LcoreFigures full = lcore_figures(l);
  EXPECT_GT(full.thread_to_global, start.thread_to_global)
      << "lcore " << l << ": 64 MiB of 64 KiB blocks never reached the global heap";
  // The last block came from the socket's global heap: node s too (checked above). The
  // blocks cover the region but for the ready flow blocks and a segment's metadata.
  EXPECT_GE(local_bytes + kReadyBytes + kSegment, full.region_bytes) << "lcore " << l;
  for (void* p : blocks)
    ctxalloc::deallocate(p);
  blocks.clear();

  // Every ready flow context, a block in each, and one flow that spills.
  std::vector<Context*> flows;
  for (unsigned i = 0; i < 1024; ++i) {
    Context* f = make_flow_context();
    if (f == nullptr) break;
    FlowScope in(*f);
    void* p = ctxalloc::allocate(2048);
    EXPECT_NE(p, nullptr);
    if (p != nullptr) {
      std::memset(p, 0x22, 2048);
      EXPECT_TRUE(placed_on(p, 2048, s, "a flow context's block"));
    }
    flows.push_back(f);
  }
  EXPECT_EQ(flows.size(), 1024u) << "lcore " << l << ": ready flow contexts";
  {
    FlowScope in(*flows.front());
    void* big = ctxalloc::allocate(32 * 1024);  // more than an 8 KiB context holds
    EXPECT_NE(big, nullptr);
    if (big != nullptr) {
      std::memset(big, 0x33, 32 * 1024);
      EXPECT_TRUE(placed_on(big, 32 * 1024, s, "a spilled flow block"));
    }
  }
  EXPECT_GE(lcore_figures(l).spills_to_thread + lcore_figures(l).spills_to_global, 1u);
  for (Context* f : flows)
    EXPECT_EQ(release_flow_context(f), 0);

  // The socket's global heap, in global mode, small and large (own mappings above 1 MiB).
  const SocketFigures before = socket_figures(s);
  {
    ModeScope global(Mode::global);
    for (std::size_t size : {std::size_t{512}, 256 * std::size_t{1024}, 3 * kMiB}) {
      void* p = ctxalloc::allocate(size);
      EXPECT_NE(p, nullptr) << size;
      if (p == nullptr) continue;
      std::memset(p, 0x44, size);
      EXPECT_TRUE(placed_on(p, size, s, "a global-heap block"));
      blocks.push_back(p);
    }
  }
  EXPECT_GT(socket_figures(s).heap.allocations, before.heap.allocations)
      << "global mode on lcore " << l << " used socket " << s << "'s heap";
  for (void* p : blocks)
    ctxalloc::deallocate(p);

  // For the other lcore to free: thread-heap blocks of several sizes, and a flow's block.
  for (int i = 0; i < 512; ++i) {
    const std::size_t size = 16 + (static_cast<std::size_t>(i) * 131) % 12000;
    void* p = ctxalloc::allocate(size);
    EXPECT_NE(p, nullptr);
    if (p == nullptr) continue;
    std::memset(p, 0x55, size);
    out.blocks.push_back(p);
  }
  out.flow = make_flow_context();
  EXPECT_NE(out.flow, nullptr);
  if (out.flow != nullptr) {
    FlowScope in(*out.flow);
    out.flow_block = ctxalloc::allocate(1000);
  }
  return out;
}

// Frees what lcore `owner` handed over, here on the other node's lcore.
void free_handoff(Handoff& h) {
  for (void* p : h.blocks)
    ctxalloc::deallocate(p);
  ctxalloc::deallocate(h.flow_block);
  flush();  // the batched frees go to their owner now
}

// Back on the owner: the frees arrived, its memory is as before, and it reuses it on
// its own node.
void check_returned(unsigned l, unsigned s, Handoff& h, const LcoreFigures& before_handoff) {
  flush();  // applies what the other lcore pushed
  const LcoreFigures f = lcore_figures(l);
  EXPECT_GE(f.remote_received - before_handoff.remote_received, h.blocks.size())
      << "lcore " << l << ": blocks freed on the other node came back";
  EXPECT_EQ(release_flow_context(h.flow), 0);
  EXPECT_EQ(lcore_figures(l).bytes_in_use, before_handoff.bytes_in_use) << "lcore " << l;
  void* again = ctxalloc::allocate(4000);
  EXPECT_TRUE(placed_on(again, 4000, s, "a block after the remote frees"));
  ctxalloc::deallocate(again);
  EXPECT_EQ(unbind_lcore(), 0);
}

// Mbufs of the ctxalloc pool on socket `pool_socket`, got and put on lcore l: objects
// and data buffers on the pool's node.
void exercise_pool(rte_mempool* mp, unsigned pool_socket, unsigned l) {
  rte_mbuf* m[256];
  ASSERT_EQ(rte_pktmbuf_alloc_bulk(mp, m, 256), 0) << "lcore " << l << " from pool " << mp->name;
  for (rte_mbuf* b : m) {
    EXPECT_TRUE(placed_on(b, sizeof *b, pool_socket, "an mbuf"));
    EXPECT_TRUE(placed_on(b->buf_addr, b->buf_len, pool_socket, "an mbuf's data"));
  }
  rte_pktmbuf_free_bulk(m, 256);
}

void placement_child(const NodeHugepages before[2]) {
  if (!start_eal(source_root() + "/config/two-socket.ini")) return;
  ASSERT_EQ(setup(), 0);
  for (unsigned s : {0U, 1U}) {
    const SocketFigures sf = socket_figures(s);
    EXPECT_TRUE(sf.present) << "socket " << s;
    EXPECT_EQ(sf.memory, Memory::hugepages) << "socket " << s;
    EXPECT_EQ(sf.page_size, kHuge);
    EXPECT_EQ(sf.region_bytes, kGlobalHeap);
    const LcoreFigures lf = lcore_figures(kLcore[s]);
    EXPECT_TRUE(lf.present);
    EXPECT_EQ(lf.socket, s);
    EXPECT_EQ(lf.memory, Memory::hugepages);
    EXPECT_EQ(lf.region_bytes, kRegion[s]) << "lcore " << kLcore[s];
    // Each node's own hugepages hold its socket's heaps.
    const long used = before[s].free - node_hugepages(s).free;
    EXPECT_GE(static_cast<std::size_t>(used) * kHuge, kGlobalHeap + kRegion[s])
        << "node " << s << ": " << used << " hugepages taken since EAL started";
  }

  rte_mempool* pool[2];
  for (unsigned s : {0U, 1U}) {
    const std::string name = "two_node_pool_" + std::to_string(s);
    pool[s] = rte_pktmbuf_pool_create_by_ops(name.c_str(), 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                             static_cast<int>(s), "ctxalloc");
    ASSERT_NE(pool[s], nullptr) << name << ": " << rte_strerror(rte_errno);
    EXPECT_EQ(pool[s]->socket_id, static_cast<int>(s));
  }

  Handoff h[2];
  LcoreFigures at_handoff[2];
  for (unsigned s : {0U, 1U}) {
    h[s] = on(kLcore[s], [&] {
      Handoff r = exercise_lcore(kLcore[s], s);
      at_handoff[s] = lcore_figures(kLcore[s]);
      return r;
    });
    // Bytes of the handed blocks, which come back with the remote frees.
    at_handoff[s].bytes_in_use = 0;
  }
  // Cross-node frees: each lcore frees the other's blocks.
  for (unsigned s : {0U, 1U})
    on(kLcore[1 - s], [&] {
      EXPECT_EQ(bind_lcore(), 0);
      free_handoff(h[s]);
      return 0;
    });
  for (unsigned s : {0U, 1U}) {
    // What the lcore held before it made the handed blocks: everything else was freed.
    on(kLcore[s], [&] {
      check_returned(kLcore[s], s, h[s], at_handoff[s]);
      return 0;
    });
  }
  // Both pools from both lcores: a pool's objects stay on its socket whoever takes them.
  for (unsigned s : {0U, 1U})
    for (unsigned l : kLcore)
      on(l, [&] {
        exercise_pool(pool[s], s, l);
        return 0;
      });

  std::size_t huge_on[2] = {0, 0};
  const std::vector<std::string> mixed = mixed_huge_mappings(huge_on);
  EXPECT_TRUE(mixed.empty()) << "hugepage mappings spanning both nodes:\n" << mixed.front();
  for (unsigned s : {0U, 1U})
    EXPECT_GE(huge_on[s] * kHuge, kGlobalHeap + kRegion[s])
        << "numa_maps: this process's hugepages on node " << s;

  for (rte_mempool* mp : pool)
    rte_mempool_free(mp);
  TeardownReport r;
  EXPECT_EQ(teardown(&r), 0);
  EXPECT_EQ(r.lcores, 2u);
  EXPECT_EQ(r.sockets, 2u);
  EXPECT_EQ(r.bytes_returned, 2 * kGlobalHeap + kRegion[0] + kRegion[1]);
  rte_eal_cleanup();
}

TEST(TwoNodeDpdk, EachSocketsHeapsAndPoolsAreOnItsNodeAndFreesGoHome) {
  SKIP_UNLESS_IN_TWO_NODE_GUEST();
  NodeReservation n0(0, 512), n1(1, 512);  // what config/two-socket.ini asks for
  ASSERT_TRUE(n0.ok(512) && n1.ok(512)) << "cannot reserve 512 x 2 MiB on each node";
  const NodeHugepages before[2] = {node_hugepages(0), node_hugepages(1)};
  const ChildResult c = in_child([&] { placement_child(before); });
  EXPECT_EQ(c.status, 0) << c.output;
  for (unsigned s : {0U, 1U})
    EXPECT_EQ(node_hugepages(s).free, before[s].free) << "node " << s << "'s hugepages all back";
  // The plugin's own account of where it put things, as logged.
  EXPECT_NE(c.output.find("lcore 8: thread heap (tree) of 24 MiB on socket 1, hugepages"),
            std::string::npos)
      << c.output;
}

// ------------------------------------------------------------------ wrong placements

// Set-up under `require` with node 1 short of hugepages: refused, nothing made, and the
// log names the socket and the numbers.
void refused_child() {
  if (!start_eal(source_root() + "/config/two-socket.ini")) return;
  EXPECT_EQ(setup(), -ENOMEM);
  EXPECT_FALSE(is_set_up());
  for (unsigned s : {0U, 1U}) {
    EXPECT_FALSE(socket_figures(s).present) << "nothing half made: socket " << s;
    EXPECT_FALSE(lcore_figures(kLcore[s]).present) << "nothing half made: lcore " << kLcore[s];
  }
  rte_eal_cleanup();
}

TEST(TwoNodeDpdk, RequireRefusesANodeWithoutHugepagesNamingItAndTheNumbers) {
  SKIP_UNLESS_IN_TWO_NODE_GUEST();
  NodeReservation n0(0, 512), n1(1, 0);
  ASSERT_TRUE(n1.ok(0));
  const ChildResult c = in_child(refused_child);
  EXPECT_EQ(c.status, 0) << c.output;
  EXPECT_NE(c.output.find("socket 1 global heap: cannot reserve 256 MiB of hugepages on socket 1"),
            std::string::npos)
      << c.output;
  EXPECT_NE(c.output.find("node 1: 0 of 0 x 2 MiB hugepages free"), std::string::npos) << c.output;
}

TEST(TwoNodeDpdk, RequireRefusesAnExhaustedNodeNamingItAndTheNumbers) {
  SKIP_UNLESS_IN_TWO_NODE_GUEST();
  // 64 pages: 128 MiB, where socket 1 needs 256 MiB for its global heap alone.
  NodeReservation n0(0, 512), n1(1, 64);
  ASSERT_TRUE(n1.ok(64));
  const ChildResult c = in_child(refused_child);
  EXPECT_EQ(c.status, 0) << c.output;
  EXPECT_NE(c.output.find("cannot reserve 256 MiB of hugepages on socket 1"), std::string::npos)
      << c.output;
  EXPECT_NE(c.output.find("of 64 x 2 MiB hugepages free"), std::string::npos) << c.output;
}

// Under `prefer`, node 1 without hugepages: set-up goes on with socket 1's heaps on
// normal pages bound to node 1, says so, and lcore 8's memory is still all on node 1.
void fallback_child() {
  if (!start_eal(source_root() + "/tests/numa/configs/two_socket_prefer.ini")) return;
  ASSERT_EQ(setup(), 0);
  EXPECT_EQ(socket_figures(0).memory, Memory::hugepages);
  EXPECT_EQ(lcore_figures(kLcore[0]).memory, Memory::hugepages);
  EXPECT_EQ(socket_figures(1).memory, Memory::normal_pages);
  EXPECT_EQ(lcore_figures(kLcore[1]).memory, Memory::normal_pages);
  for (unsigned s : {0U, 1U}) {
    Handoff h = on(kLcore[s], [&] { return exercise_lcore(kLcore[s], s); });
    on(kLcore[s], [&] {
      free_handoff(h);
      EXPECT_EQ(release_flow_context(h.flow), 0);
      EXPECT_EQ(unbind_lcore(), 0);
      return 0;
    });
  }
  EXPECT_EQ(teardown(nullptr), 0);
  rte_eal_cleanup();
}

TEST(TwoNodeDpdk, PreferFallsBackToNormalPagesOnTheSameNodeAndLogsIt) {
  SKIP_UNLESS_IN_TWO_NODE_GUEST();
  NodeReservation n0(0, 512), n1(1, 0);
  ASSERT_TRUE(n1.ok(0));
  const ChildResult c = in_child(fallback_child);
  EXPECT_EQ(c.status, 0) << c.output;
  for (const char* what : {"socket 1 global heap: 256 MiB", "lcore 8 thread heap: 24 MiB"})
    EXPECT_NE(c.output.find(std::string(what) + " of hugepages on socket 1 not available"),
              std::string::npos)
        << what << "\n"
        << c.output;
}

}  // namespace
}  // namespace ctxalloc::dpdk
