#!/usr/bin/env bash
# The long fuzz runs of docs/hardening.md, by hand: every fuzz target of the asan
# variant for SECONDS each (default 600), JOBS at a time (default 2: the machine is
# shared), niced. New inputs go to build/asan/fuzz-long/<target>/ (seeded from
# fuzz/corpus/<target>/), logs and crash artifacts next to them; the last lines of
# each log carry the figures (executions, coverage, crashes).
#   scripts/fuzz_long.sh [SECONDS] [JOBS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600} jobs=${2:-2}
shift $(( $# >= 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(bump_allocator bitset_allocator tree_allocator size_class_allocator context_allocator global_heap switchable config)
out=build/asan/fuzz-long
mkdir -p "$out"
run_one() {
  local t=$1 dir=$out/$1
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -n fuzz/corpus/"$t"/* "$dir/corpus/" 2>/dev/null
  nice -n 10 build/asan/fuzz/"$t"_fuzz -max_total_time="$secs" -print_final_stats=1 \
    -max_len=4096 -timeout=30 -rss_limit_mb=2048 -artifact_prefix="$dir/artifacts/" \
    "$dir/corpus" >"$out/$t.log" 2>&1
  echo "$t exit $?" >>"$out/summary.txt"
}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
  run_one "$t" &
done
wait
