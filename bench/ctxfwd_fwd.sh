#!/usr/bin/env bash
# ctxfwd packets per second with each flow allocator, against dpdk-testpmd io forwarding,
# on the same virtual devices: a churn-heavy ctxgen capture replayed forever (net_pcap
# infinite_rx) -> net_null. Runs alternate (A B C, A B C, ...), REPS of each; a run's value
# is the median of its per-second rx rates of port 0 (the first second is warm-up and
# skipped), the result the median over the runs. Results: bench/results/ctxfwd.json.
#   bench/ctxfwd_fwd.sh                 (REPS=5 SECONDS_PER_RUN=6 by default)
#   ALLOCS="rte_malloc malloc ctxalloc"   the --flow-alloc columns (default: those available)
# Times on a shared machine are indicative: compare columns of one run of this script.
set -euo pipefail
cd "$(dirname "$0")/.."
results=${BENCH_RESULTS:-bench/results}  # where the JSON goes
build=${BUILD:-build/release}
reps=${REPS:-5}
secs=${SECONDS_PER_RUN:-6}
allocs=${ALLOCS:-"rte_malloc malloc"}
[ -f "$build/build.ninja" ] || meson setup "$build" -Dvariant=release -Dbuildtype=release >/dev/null
ninja -C "$build" apps/ctxfwd/ctxfwd apps/ctxgen/ctxgen >/dev/null
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd not found (package dpdk)" >&2; exit 1; }

work=$(mktemp -d)
# EAL leaves a runtime folder per --file-prefix (/var/run/dpdk as root): ours go too.
rundir=/var/run/dpdk
[ "$(id -u)" -eq 0 ] || rundir=${XDG_RUNTIME_DIR:-/tmp}/dpdk
trap 'rm -rf "$work" "$rundir"/ctx*_$$_*' EXIT
# Churn-heavy: 5,000 short TCP/UDP flows in 50,000 packets (a new flow every 10 packets,
# 95 % of TCP flows closed by FIN/RST), the churn profile scaled to fit in mbufs: an
# infinite_rx pcap keeps every packet of its file in an mbuf.
"$build/apps/ctxgen/ctxgen" --profile churn --flows 5000 --packets 50000 --seed 1 \
  --out "$work/churn.pcap" >/dev/null
mbufs=65536
devs=(--vdev="net_pcap0,rx_pcap=$work/churn.pcap,infinite_rx=1" --vdev=net_null0,no-rx=1)
eal=(-l 0,1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry)

# Median of the numbers on stdin.
median() { sort -n | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else printf "%.0f\n", (v[NR/2]+v[NR/2+1])/2}'; }

run_ctxfwd() {  # $1: flow allocator; prints the run's median rx pps of port 0
  timeout -s INT $((secs + 30)) "$build/apps/ctxfwd/ctxfwd" "${eal[@]}" "${devs[@]}" \
    --file-prefix "ctxbench_$$_$1" -- --flow-alloc "$1" --duration "$secs" --stats-period 1 \
    --mbufs "$mbufs" >"$work/ctxfwd-$1.log" 2>&1 ||
    { echo "ctxfwd $1 failed:" >&2; tail -5 "$work/ctxfwd-$1.log" >&2; exit 1; }
  sed -n 's/.* port 0 rx-pps \([0-9]*\) .*/\1/p' "$work/ctxfwd-$1.log" | tail -n +2 | median
}

run_testpmd() {
  # Non-interactive testpmd forwards until SIGINT when --stats-period is given.
  timeout -s INT "$secs" dpdk-testpmd "${eal[@]}" "${devs[@]}" --file-prefix "ctxbench_$$_tp" \
    -- --forward-mode=io --stats-period 1 --no-flush-rx --total-num-mbufs "$mbufs" \
    </dev/null >"$work/testpmd.log" 2>&1 || true
  awk '/NIC statistics for port/ {port=$6} /Rx-pps:/ && port==0 {print $2}' "$work/testpmd.log" |
    tail -n +2 | median
}

declare -A runs
columns=($allocs testpmd)
for ((r = 1; r <= reps; r++)); do
  for c in "${columns[@]}"; do
    if [ "$c" = testpmd ]; then v=$(run_testpmd); else v=$(run_ctxfwd "$c"); fi
    [ "$v" -gt 0 ] || { echo "no rate from $c:" >&2; tail -20 "$work"/*"$c"*.log >&2; exit 1; }
    runs[$c]="${runs[$c]:-} $v"
    printf 'rep %d  %-11s %12s pps\n' "$r" "$c" "$v"
  done
done

declare -A med
for c in "${columns[@]}"; do med[$c]=$(echo "${runs[$c]}" | tr ' ' '\n' | grep . | median); done
echo "=== median of $reps interleaved runs, packets per second (rx of port 0)"
for c in "${columns[@]}"; do
  printf '%-11s %12s pps   %.2fx testpmd io\n' "$c" "${med[$c]}" \
    "$(awk -v a="${med[$c]}" -v b="${med[testpmd]}" 'BEGIN{print a/b}')"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
# The load of a shared machine drifts during the script: the ratio within each repetition
# (runs a minute apart at most) is steadier than a ratio of medians taken over all of them.
echo "median over the repetitions of each one's ratio to testpmd:"
declare -A paired
for c in $allocs; do
  read -r -a a <<<"${runs[$c]}"
  read -r -a t <<<"${runs[testpmd]}"
  paired[$c]=$(for ((i = 0; i < ${#a[@]}; i++)); do ratio "${a[i]}" "${t[i]}"; echo; done |
    sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}')
  printf '  %-11s %sx\n' "$c" "${paired[$c]}"
done
[[ " $allocs " == *" malloc "* && " $allocs " == *" rte_malloc "* ]] &&
  echo "rte_malloc / malloc: $(ratio "${med[rte_malloc]}" "${med[malloc]}")"
[[ " $allocs " == *" ctxalloc "* ]] &&
  echo "ctxalloc / rte_malloc: $(ratio "${med[ctxalloc]}" "${med[rte_malloc]}")  ctxalloc / malloc: $(ratio "${med[ctxalloc]}" "${med[malloc]}")"

mkdir -p "$results"
{
  echo "{"
  echo "  \"workload\": \"ctxgen churn --flows 5000 --packets 50000 --seed 1, net_pcap infinite_rx -> net_null, -l 0,1 --no-huge\","
  echo "  \"seconds_per_run\": $secs, \"reps\": $reps,"
  sep=""
  for c in "${columns[@]}"; do
    extra=""
    [ "$c" = testpmd ] || extra=", \"median_paired_ratio_to_testpmd\": ${paired[$c]}"
    printf '%s  "%s": {"median_pps": %s, "runs": [%s]%s}' "$sep" "$c" "${med[$c]}" \
      "$(echo "${runs[$c]}" | xargs | tr ' ' ',')" "$extra"
    sep=$',\n'
  done
  printf '\n}\n'
} >"$results/ctxfwd.json"
echo "-> $results/ctxfwd.json"
