// Callgrind workloads of the parser suite (see callgrind_main.h, parser_workloads.h).
#include <cstdio>

#include "callgrind_main.h"
#include "parser_workloads.h"

using namespace ctxalloc::bench;

namespace {
const FrameSet* g_frames = nullptr;
volatile std::uint64_t g_sink = 0;  // keeps the loops' results alive
}  // namespace

extern "C" {

[[gnu::noinline]] void ctxbench_ctxfwd_parse(std::uint64_t n) {
  g_sink = ctxfwd_parse_loop(*g_frames, n);
}

[[gnu::noinline]] void ctxbench_dpdk_ptype(std::uint64_t n) {
  g_sink = dpdk_ptype_loop(*g_frames, n);
}

[[gnu::noinline]] void ctxbench_unchecked(std::uint64_t n) {
  g_sink = unchecked_loop(*g_frames, n);
}

}  // extern "C"

int main(int argc, char** argv) {
  const FrameSet fs = make_parser_frames();  // outside the measured functions
  g_frames = &fs;
  return callgrind_main(argc, argv,
                        {
                            {"ctxfwd_parse", ctxbench_ctxfwd_parse},
                            {"dpdk_ptype", ctxbench_dpdk_ptype},
                            {"unchecked", ctxbench_unchecked},
                        });
}
