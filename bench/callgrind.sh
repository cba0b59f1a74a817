#!/usr/bin/env bash
# Instructions per operation of each workload of the callgrind driver, counted by
# valgrind --tool=callgrind inside the workload's function only (stable on a noisy,
# shared machine: it counts instructions, not time).
#   bench/callgrind.sh [WORKLOAD...]   (default: all of them)
#   N=ops (default 1000000); results also go to bench/results/callgrind.json
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/release}
ninja -C "$build" >/dev/null
driver=$build/bench/callgrind_ops
n=${N:-1000000}
workloads=("$@")
if [ ${#workloads[@]} -eq 0 ]; then
  mapfile -t workloads < <("$driver" 2>&1 | sed -n 's/^workloads: //p' | tr ' ' '\n')
fi
mkdir -p bench/results
tmp=$(mktemp -d)
json="{"
sep=""
for w in "${workloads[@]}"; do
  valgrind --tool=callgrind --callgrind-out-file="$tmp/$w.out" \
    --toggle-collect="ctxbench_$w" "$driver" "$w" "$n" >/dev/null 2>&1
  total=$(sed -n 's/^summary: //p' "$tmp/$w.out" | awk '{print $1}')
  per=$(awk -v t="$total" -v n="$n" 'BEGIN{printf "%.2f", t/n}')
  printf '%-28s %14s instructions  %8s per op\n' "$w" "$total" "$per"
  json+="$sep\"$w\": {\"instructions\": $total, \"ops\": $n, \"per_op\": $per}"
  sep=", "
done
echo "$json}" >bench/results/callgrind.json
rm -rf "$tmp"
