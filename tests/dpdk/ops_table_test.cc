// A full mempool ops table (16 slots; Debian's DPDK fills 14) is reported, not silent:
// registering the ctxalloc ops then fails with -ENOSPC and a logged error, both through
// the library and when the EAL plugin is loaded into a process whose table is full.
// A binary of its own: it fills the process's table for good.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <rte_log.h>
#include <rte_mempool.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "ctxalloc/dpdk/plugin.h"
#include "ctxalloc_dpdk.h"
#include "detail/pool.h"
#include "dpdk/eal_env.h"

namespace ctxalloc::dpdk {
namespace {

using testing::EalEnvironment;

[[maybe_unused]] ::testing::Environment* const g_eal =
    ::testing::AddGlobalTestEnvironment(new EalEnvironment(EalEnvironment::default_args("0")));

// Collects what rte_log writes while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(rte_log_get_stream()), f_(std::tmpfile()) { rte_openlog_stream(f_); }
  ~LogCapture() {
    rte_openlog_stream(previous_);
    std::fclose(f_);
  }
  std::string text() {
    std::fflush(f_);
    std::rewind(f_);
    std::string s;
    char buf[512];
    while (std::fgets(buf, sizeof buf, f_) != nullptr)
      s += buf;
    return s;
  }

 private:
  FILE* previous_;
  FILE* f_;
};

// Fills the table with copies of the ctxalloc ops under other names; returns how many
// were added before -ENOSPC.
unsigned fill_table() {
  rte_mempool_ops ops = *rte_mempool_get_ops(ops_index());
  unsigned added = 0;
  for (unsigned i = 0; i < RTE_MEMPOOL_MAX_OPS_IDX; ++i) {
    std::snprintf(ops.name, sizeof ops.name, "filler_%u", i);
    if (rte_mempool_register_ops(&ops) < 0) break;
    ++added;
  }
  return added;
}

TEST(OpsTable, AFullTableIsReportedNotSilent) {
  ASSERT_GE(ops_index(), 0) << "the library registered its ops at load";
  const unsigned before = rte_mempool_ops_table.num_ops;
  EXPECT_EQ(fill_table(), RTE_MEMPOOL_MAX_OPS_IDX - before);
  ASSERT_EQ(rte_mempool_ops_table.num_ops, static_cast<std::uint32_t>(RTE_MEMPOOL_MAX_OPS_IDX));

  // Through the library's own registration.
  {
    LogCapture log;
    EXPECT_EQ(detail::register_ops("ctxalloc_late"), -ENOSPC);
    EXPECT_NE(log.text().find("ctxalloc: cannot register mempool ops ctxalloc_late: the ops table "
                              "is full (the table has 16 of 16 slots used)"),
              std::string::npos)
        << log.text();
  }

  // The EAL plugin loaded into this process: a copy of ctxalloc whose "ctxalloc" ops are
  // here already finds them (no duplicate entry); under another name it would fail as
  // above. Its log says which happened.
  const char* plugin = std::getenv("CTXALLOC_PLUGIN");
  ASSERT_NE(plugin, nullptr);
  LogCapture log;
  void* h = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  EXPECT_NE(log.text().find("mempool ops ctxalloc registered already"), std::string::npos)
      << log.text();
  EXPECT_EQ(rte_mempool_ops_table.num_ops, static_cast<std::uint32_t>(RTE_MEMPOOL_MAX_OPS_IDX));
  dlclose(h);
}

}  // namespace
}  // namespace ctxalloc::dpdk
