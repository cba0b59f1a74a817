// The secondary of dpdk_secondary whose mempool drivers register in another order (issue
// 19, item 8): it does not link ctxalloc; it registers a driver of its own first and then
// dlopen()s libctxalloc_dpdk.so (argv[3]: the shared library, which exports the C API),
// so ctxalloc gets a later index here than in the primary. It loads the library after
// rte_eal_init: a secondary must map the primary's memory at the primary's addresses, and
// a large library (an asan build's) loaded before could take them. The primary's ctxalloc pool then
// has an ops_index that names another driver in this process (DPDK's rule: indices are per
// process). ctxalloc_dpdk_mempool_check must refuse it with -ENXIO and a message naming the pool,
// the index and the driver here, without walking the pool. Run by secondary_test.cc's primary:
// argv[1] is the
// --file-prefix, argv[2] the pool's name, argv[3] the library. Exits 0 when every check holds.
#include <dlfcn.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mempool.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "shifted secondary: FAILED: %s\n", what.c_str());
    ++failures;
  }
}

// A driver of this process only; the pool never calls it (the check refuses first).
int shift_alloc(rte_mempool*) {
  return -ENOTSUP;
}
int shift_enqueue(rte_mempool*, void* const*, unsigned) {
  return -ENOTSUP;
}
int shift_dequeue(rte_mempool*, void**, unsigned) {
  return -ENOTSUP;
}
unsigned shift_count(const rte_mempool*) {
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s FILE_PREFIX POOL LIBCTXALLOC_DPDK\n", argv[0]);
    return 2;
  }
  rte_mempool_ops ops{};
  std::snprintf(ops.name, sizeof ops.name, "c19_shift");
  ops.alloc = shift_alloc;
  ops.enqueue = shift_enqueue;
  ops.dequeue = shift_dequeue;
  ops.get_count = shift_count;
  const int shift = rte_mempool_register_ops(&ops);
  expect(shift >= 0, "registering c19_shift");

  std::string prefix = std::string("--file-prefix=") + argv[1];
  std::vector<std::string> a = {"ctxalloc_secondary_shifted",
                                "-l",
                                "1",
                                "--no-pci",
                                "--no-telemetry",
                                "--proc-type=secondary",
                                prefix,
                                "--log-level=lib.eal:warning"};
  std::vector<char*> args;
  for (std::string& s : a)
    args.push_back(s.data());
  args.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size() - 1), args.data()) < 0) {
    std::fprintf(stderr, "shifted secondary: FAILED: EAL: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  void* h = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    std::fprintf(stderr, "shifted secondary: FAILED: dlopen %s: %s\n", argv[3], dlerror());
    return 1;
  }
  using CheckFn = int (*)(const rte_mempool*, char*, size_t);
  using IndexFn = int (*)();
  auto check = reinterpret_cast<CheckFn>(dlsym(h, "ctxalloc_dpdk_mempool_check"));
  auto index = reinterpret_cast<IndexFn>(dlsym(h, "ctxalloc_dpdk_ops_index"));
  if (check == nullptr || index == nullptr) {
    std::fprintf(stderr, "shifted secondary: FAILED: the plugin lacks the C API\n");
    return 1;
  }

  rte_mempool* mp = rte_mempool_lookup(argv[2]);
  expect(mp != nullptr, std::string("pool ") + argv[2] + " not found");
  if (mp != nullptr) {
    const int here = index();
    const int idx = mp->ops_index;
    const std::string driver = rte_mempool_get_ops(idx)->name;
    std::printf(
        "shifted secondary: c19_shift at %d, ctxalloc at %d; the pool's ops_index %d "
        "names %s here\n",
        shift, here, idx, driver.c_str());
    expect(here >= 0 && here != idx, "ctxalloc did not move: the test shifts nothing");
    expect(driver != "ctxalloc", "the pool's index names ctxalloc here");
    char why[512] = "";
    const int rc = check(mp, why, sizeof why);
    std::printf("shifted secondary: check: %d: %s\n", rc, why);
    expect(rc == -ENXIO, "check returned " + std::to_string(rc) + ", not -ENXIO");
    const std::string msg = why;
    expect(msg.find(std::string("mempool ") + argv[2]) != std::string::npos,
           "the message names the pool");
    expect(msg.find("ops_index " + std::to_string(idx) + " names driver " + driver) !=
               std::string::npos,
           "the message names the index and the driver here");
    expect(msg.find("ctxalloc is at " + std::to_string(here)) != std::string::npos,
           "the message names ctxalloc's index here");
  }
  rte_eal_cleanup();
  // The plugin stays loaded: its destructors and DPDK's may still refer to it.
  return failures == 0 ? 0 : 1;
}
