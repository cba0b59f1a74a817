#!/usr/bin/env bash
# The one benchmark command: every suite against its peers, raw JSON under bench/results/,
# then docs/BENCHMARKS.md and its plots (docs/bench/*.png) written from that JSON alone.
#   bash bench/all.sh            the full run (about 20 minutes on a 2-core machine)
#   bash bench/all.sh --smoke    seconds-long runs of every benchmark, JSON and report in a
#                                temporary folder (or BENCH_RESULTS): checks that nothing
#                                rotted; CI runs it (tests/bench, suite `bench`)
# Steps: the machine; the Google Benchmark binaries (bench/collect.py gbench: alternating
# rounds, medians); memory per workload (collect.py memory); instruction counts
# (bench/callgrind.sh, bench/ctxfwd_callgrind.sh, bench/preload_peers.sh callgrind); 10^3 to
# 10^6 concurrent flows (bench/flow_scale); the
# applications (bench/ctxfwd_fwd.sh with dpdk-testpmd, bench/testpmd_bench.sh); the two-node
# guest (bench/numa_guest.sh); whole
# processes under LD_PRELOAD (bench/preload_peers.sh time); the mimalloc-bench suite
# (bench/mimalloc_bench.py on MIMALLOC_BENCH, default ../shared/mimalloc-bench next to the
# checkout; skipped, saying so, where there is none); bench/report.py.
# BUILD (default build/release) is the build to use; BENCH_NO_BUILD=1 skips ninja.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
[ "${1:-}" = --smoke ] && smoke=1
export BUILD=${BUILD:-build/release}
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" -Dvariant=release -Dbuildtype=release >/dev/null
  ninja -C "$BUILD" >/dev/null
fi
export BENCH_NO_BUILD=1  # built once, here
py=/usr/bin/python3
if [ $smoke = 1 ]; then
  export BENCH_SMOKE=1
  export BENCH_RESULTS=${BENCH_RESULTS:-$(mktemp -d /tmp/ctxalloc-bench-smoke.XXXXXX)}
  report=$BENCH_RESULTS/BENCHMARKS.md
  export ROUNDS=1 BENCH_MIN_TIME=0.001 N_MEMORY=20000 N=20000
  export REPS=1 SECONDS_PER_RUN=5 PACKETS=2000
  export N_SMALL=200000 N_PC=50000 N_CG=20000
else
  export BENCH_RESULTS=${BENCH_RESULTS:-bench/results}
  export SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}
  report=docs/BENCHMARKS.md
fi
mkdir -p "$BENCH_RESULTS"
step() { echo "=== $* ($(date +%T))"; }
start=$(date +%s)

step machine
$py bench/collect.py machine "$BENCH_RESULTS"
step "Google Benchmark suites"
$py bench/collect.py gbench "$BUILD" "$BENCH_RESULTS"
step "memory per workload"
$py bench/collect.py memory "$BUILD" "$BENCH_RESULTS"
step "instruction counts"
if [ $smoke = 1 ]; then
  # One workload per driver: every driver runs under callgrind, in seconds.
  targets=()
  for d in "$BUILD"/bench/callgrind_*; do
    [ -f "$d" ] || continue
    s=$(basename "$d" | sed 's/^callgrind_//')
    w=$({ "$d" 2>&1 || true; } | sed -n 's/^workloads: \([^ ]*\).*/\1/p')
    targets+=("$s:$w")
  done
  bash bench/callgrind.sh "${targets[@]}"
else
  bash bench/callgrind.sh
fi
bash bench/ctxfwd_callgrind.sh
bash bench/preload_peers.sh callgrind
step "a million flows (bench/flow_scale)"
if [ -x "$BUILD/bench/flow_scale" ]; then
  if [ $smoke = 1 ]; then
    FLOWS=1000,5000 ROUNDS=1 "$BUILD/bench/flow_scale" >"$BENCH_RESULTS/flow_scale.json"
  else
    "$BUILD/bench/flow_scale" >"$BENCH_RESULTS/flow_scale.json"
  fi
else
  echo "bench/all.sh: no $BUILD/bench/flow_scale (a build without DPDK): suite skipped"
fi
step "applications: ctxfwd and dpdk-testpmd"
bash bench/ctxfwd_fwd.sh
# testpmd_bench.sh drops the first two seconds of rates (counted from forwarding's start).
SECONDS_PER_RUN=$((SECONDS_PER_RUN < 7 ? 7 : SECONDS_PER_RUN)) bash bench/testpmd_bench.sh
step "two NUMA nodes (a QEMU guest; skipped where none boots)"
bash bench/numa_guest.sh
step "whole processes under LD_PRELOAD"
bash bench/preload_peers.sh time
step "mimalloc-bench under LD_PRELOAD"
mb=${MIMALLOC_BENCH:-$(pwd)/../shared/mimalloc-bench}
if [ -f "$mb/bench/CMakeLists.txt" ]; then
  $py bench/mimalloc_bench.py $([ $smoke = 1 ] && echo --smoke) --out "$BENCH_RESULTS" "$mb"
else
  echo "bench/all.sh: no mimalloc-bench checkout at $mb (set MIMALLOC_BENCH): suite skipped"
fi
step report
$py bench/report.py "$BENCH_RESULTS" "$report"
echo "bench/all.sh: done in $(($(date +%s) - start)) s; results in $BENCH_RESULTS, report $report"
