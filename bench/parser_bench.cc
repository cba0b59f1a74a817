// ctxfwd's packet parser against DPDK's software packet-type parser and an unchecked
// fixed-offset read, in one run (bench/run.sh alternates them). See parser_workloads.h.
#include <benchmark/benchmark.h>

#include "parser_workloads.h"

namespace ctxalloc::bench {
namespace {

const FrameSet& frames() {
  static const FrameSet fs = make_parser_frames();
  return fs;
}

void BM_CtxfwdParse(benchmark::State& state) {
  const FrameSet& fs = frames();
  for (auto _ : state)
    benchmark::DoNotOptimize(ctxfwd_parse_loop(fs, kParserFrames));
  state.SetItemsProcessed(state.iterations() * kParserFrames);
}
BENCHMARK(BM_CtxfwdParse);

void BM_DpdkPtype(benchmark::State& state) {
  const FrameSet& fs = frames();
  for (auto _ : state)
    benchmark::DoNotOptimize(dpdk_ptype_loop(fs, kParserFrames));
  state.SetItemsProcessed(state.iterations() * kParserFrames);
}
BENCHMARK(BM_DpdkPtype);

void BM_Unchecked(benchmark::State& state) {
  const FrameSet& fs = frames();
  for (auto _ : state)
    benchmark::DoNotOptimize(unchecked_loop(fs, kParserFrames));
  state.SetItemsProcessed(state.iterations() * kParserFrames);
}
BENCHMARK(BM_Unchecked);

}  // namespace
}  // namespace ctxalloc::bench

BENCHMARK_MAIN();
