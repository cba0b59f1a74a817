#!/usr/bin/env bash
# Instructions per operation of each workload of the callgrind drivers, counted by
# valgrind --tool=callgrind inside the workload's function only (stable on a noisy,
# shared machine: it counts instructions, not time).
#   bench/callgrind.sh [SUITE[:WORKLOAD]...]   (default: every workload of every suite)
#   N=ops (default 1000000); results also go to bench/results/callgrind-<suite>.json
set -euo pipefail
cd "$(dirname "$0")/.."
results=${BENCH_RESULTS:-bench/results}  # where the JSON goes
build=${BUILD:-build/release}
[ -n "${BENCH_NO_BUILD:-}" ] || ninja -C "$build" >/dev/null
n=${N:-1000000}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$build"/bench/callgrind_*; do
    [ -f "$d" ] && [ -x "$d" ] || continue  # not the .p object folders
    targets+=("$(basename "$d" | sed 's/^callgrind_//')")
  done
fi
mkdir -p "$results"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in "${targets[@]}"; do
  suite=${t%%:*}
  driver=$build/bench/callgrind_$suite
  [ -f "$driver" ] && [ -x "$driver" ] || { echo "no callgrind driver for suite $suite" >&2; exit 1; }
  if [[ $t == *:* ]]; then
    workloads=("${t#*:}")
  else
    read -r -a workloads < <("$driver" 2>&1 | sed -n 's/^workloads: //p') || true
    [ ${#workloads[@]} -gt 0 ] || { echo "$driver lists no workloads" >&2; exit 1; }
  fi
  json="{"
  sep=""
  for w in "${workloads[@]}"; do
    # ctxbench_<w>_* too: a workload's other threads run functions named after it.
    valgrind --tool=callgrind --callgrind-out-file="$tmp/$w.out" \
      --toggle-collect="ctxbench_$w" --toggle-collect="ctxbench_${w}_*" \
      "$driver" "$w" "$n" >/dev/null 2>"$tmp/$w.err" ||
      { echo "callgrind failed for $suite:$w:" >&2; tail -5 "$tmp/$w.err" >&2; exit 1; }
    total=$(sed -n 's/^summary: //p' "$tmp/$w.out" | awk '{print $1}')
    per=$(awk -v t="$total" -v n="$n" 'BEGIN{printf "%.2f", t/n}')
    printf '%-10s %-28s %14s instructions  %8s per op\n' "$suite" "$w" "$total" "$per"
    json+="$sep\"$w\": {\"instructions\": $total, \"ops\": $n, \"per_op\": $per}"
    sep=", "
  done
  echo "$json}" >"$results/callgrind-$suite.json"
done
