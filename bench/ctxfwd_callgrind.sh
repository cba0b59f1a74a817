#!/usr/bin/env bash
# Instructions per packet of ctxfwd's own work (Worker::process_burst: parse, flow table,
# per-flow work, MAC rewrite, tx buffering; the devices' rx not included), counted by
# callgrind over a finite churn-heavy ctxgen capture, once per flow allocator. Stable on
# a loaded machine, unlike time. Results: bench/results/callgrind-ctxfwd.json.
#   bench/ctxfwd_callgrind.sh     ALLOCS="rte_malloc malloc" (default)  PACKETS=50000
set -euo pipefail
cd "$(dirname "$0")/.."
results=${BENCH_RESULTS:-bench/results}  # where the JSON goes
build=${BUILD:-build/release}
allocs=${ALLOCS:-"rte_malloc malloc"}
packets=${PACKETS:-50000}
ninja -C "$build" apps/ctxfwd/ctxfwd apps/ctxgen/ctxgen >/dev/null
work=$(mktemp -d)
# EAL leaves a runtime folder per --file-prefix (/var/run/dpdk as root): ours go too.
rundir=/var/run/dpdk
[ "$(id -u)" -eq 0 ] || rundir=${XDG_RUNTIME_DIR:-/tmp}/dpdk
trap 'rm -rf "$work" "$rundir"/ctx*_$$_*' EXIT
"$build/apps/ctxgen/ctxgen" --profile churn --flows $((packets / 10)) --packets "$packets" \
  --seed 1 --out "$work/churn.pcap" >/dev/null
mkdir -p "$results"
json="{"
sep=""
for a in $allocs; do
  valgrind --tool=callgrind --callgrind-out-file="$work/$a.out" --toggle-collect='*process_burst*' \
    "$build/apps/ctxfwd/ctxfwd" -l 0,1 --no-huge -m 512 --no-pci --no-shconf --no-telemetry \
    --file-prefix "ctxcg_$$_$a" --vdev="net_pcap0,rx_pcap=$work/churn.pcap" \
    --vdev=net_null0,no-rx=1 -- --flow-alloc "$a" --max-packets "$packets" --stats-period 0 \
    >"$work/$a.log" 2>&1 || { echo "ctxfwd $a failed under callgrind:" >&2; tail -5 "$work/$a.log" >&2; exit 1; }
  total=$(sed -n 's/^summary: //p' "$work/$a.out" | awk '{print $1}')
  per=$(awk -v t="$total" -v n="$packets" 'BEGIN{printf "%.1f", t/n}')
  printf 'ctxfwd --flow-alloc %-10s %12s instructions  %8s per packet\n' "$a" "$total" "$per"
  json+="$sep\"$a\": {\"instructions\": $total, \"packets\": $packets, \"per_packet\": $per}"
  sep=", "
done
echo "$json}" >"$results/callgrind-ctxfwd.json"
