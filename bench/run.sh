#!/usr/bin/env bash
# Runs Google Benchmark suites with 5 randomly interleaved repetitions (so peers in one
# suite alternate rather than run back to back) and keeps the JSON under bench/results/.
#   bench/run.sh [SUITE...]        (default: every bench_* binary of build/release)
#   BENCH_REPS=N, BENCH_MIN_TIME=S  override the repetitions and the time per repetition
set -euo pipefail
cd "$(dirname "$0")/.."
results=${BENCH_RESULTS:-bench/results}  # where the JSON goes
build=${BUILD:-build/release}
[ -f "$build/build.ninja" ] || meson setup "$build" -Dvariant=release -Dbuildtype=release >/dev/null
ninja -C "$build" >/dev/null
mkdir -p "$results"
suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
  for b in "$build"/bench/bench_*; do suites+=("$(basename "$b" | sed 's/^bench_//')"); done
fi
for s in "${suites[@]}"; do
  out="$results/$s.json"
  echo "=== $s -> $out"
  "$build/bench/bench_$s" \
    --benchmark_repetitions="${BENCH_REPS:-5}" \
    --benchmark_enable_random_interleaving=true \
    --benchmark_min_time="${BENCH_MIN_TIME:-0.2}" \
    --benchmark_report_aggregates_only=true \
    --benchmark_out="$out" --benchmark_out_format=json |
    grep -E "_median|^Benchmark|^-" || true
done
