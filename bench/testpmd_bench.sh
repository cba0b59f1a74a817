#!/usr/bin/env bash
# dpdk-testpmd io forwarding on two net_null devices, its mbuf pool on the ctxalloc ops
# against ring_mp_mc, with testpmd's default per-lcore mbuf cache and with --mbcache=0
# (where the driver does all the work). Runs alternate (ctxalloc, ring_mp_mc, ... in
# each repetition) so that the load of this shared machine falls on both alike. The
# plugin is loaded (-d) in every run; only --mbuf-pool-ops-name changes.
#
# Packets per second: the sum over both ports of testpmd's per-second Rx-pps, median of
# the seconds after the first two (the first is partial); then the median over
# repetitions. A run lasts SECONDS_PER_RUN from testpmd's first rate line (forwarding has
# started), not from its start: under load EAL's set-up alone (1 GiB of normal pages,
# 32,768 mbufs) can take most of a short run, which then had no steady second left.
#   bench/testpmd_bench.sh            REPS=5 SECONDS_PER_RUN=6 by default
# Results: bench/results/testpmd.json. One forwarding lcore (1); the main lcore (0) only
# prints statistics once a second (not busy-polling).
set -euo pipefail
cd "$(dirname "$0")/.."
results_dir=${BENCH_RESULTS:-bench/results}  # where the JSON goes
build=${BUILD:-build/release}
[ -n "${BENCH_NO_BUILD:-}" ] || ninja -C "$build" >/dev/null
plugin=$build/plugins/dpdk/pmd/librte_mempool_ctxalloc.so
reps=${REPS:-5}
secs=${SECONDS_PER_RUN:-6}
tmp=$(mktemp -d)
# EAL -d refuses a plugin under a world-writable folder (a clone in /tmp): a private copy.
# shellcheck source=tests/dpdk/safe_plugin.sh
. tests/dpdk/safe_plugin.sh
trap 'rm -rf "$tmp" ${SAFE_PLUGIN_DIR:+"$SAFE_PLUGIN_DIR"}' EXIT
safe_plugin "$plugin"
plugin=$SAFE_PLUGIN

one_run() {  # ops mbcache -> Mpps of the run (median of its steady seconds)
  local ops=$1 cache=$2 out=$tmp/run.out
  local cache_arg=()
  [ "$cache" = default ] || cache_arg=(--mbcache="$cache")
  dpdk-testpmd -l 0-1 --no-huge -m 1024 --no-pci \
    --file-prefix "ctxalloc_bench_$$" --vdev=net_null0 --vdev=net_null1 -d "$plugin" \
    --mbuf-pool-ops-name="$ops" -- --stats-period 1 --forward-mode=io \
    --total-num-mbufs=32768 "${cache_arg[@]}" </dev/null >"$out" 2>&1 &
  local pid=$! i
  # Up to 120 s for forwarding to start, then SECONDS_PER_RUN of it.
  for ((i = 0; i < 1200; i++)); do
    grep -q 'Rx-pps' "$out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q 'Rx-pps' "$out"; then sleep "$secs"; fi
  kill -INT "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do  # testpmd stops on SIGINT; 10 s at most
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -q "preferred mempool ops selected: $ops" "$out" || { echo "run with $ops failed" >&2; tail "$out" >&2; exit 1; }
  # Rx-pps lines come in pairs (port 0, port 1) once a second.
  grep -o 'Rx-pps: *[0-9]*' "$out" | awk '{print $2}' | paste - - | awk '{print $1+$2}' |
    tail -n +3 | sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else printf "%.3f\n", a[int((NR+1)/2)]/1e6}'
}

median() { sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'; }

# Each repetition runs the two ops back to back (which goes first alternates), and the
# ratio of the pair is kept too: the load of this shared machine drifts over minutes, and
# a pair sees nearly the same load.
declare -A results
for ((r = 1; r <= reps; r++)); do
  order=(ctxalloc ring_mp_mc)
  ((r % 2 == 0)) && order=(ring_mp_mc ctxalloc)
  for cache in default 0; do
    declare -A pair=()
    for ops in "${order[@]}"; do
      mpps=$(one_run "$ops" "$cache")
      awk -v m="$mpps" 'BEGIN {exit !(m > 0)}' ||
        { echo "no rate from testpmd with $ops (forwarding did not start within 120 s, or runs of $secs s: at least 4 needed)" >&2; tail "$tmp/run.out" >&2; exit 1; }
      pair[$ops]=$mpps
      results[$ops/$cache]+="$mpps "
      echo "rep $r  mbcache=$cache  $ops: $mpps Mpps"
    done
    results[ratio/$cache]+="$(awk -v a="${pair[ctxalloc]}" -v b="${pair[ring_mp_mc]}" 'BEGIN{printf "%.3f", (b > 0 ? a / b : 0)}') "
  done
done

mkdir -p "$results_dir"
json="{\"reps\": $reps, \"seconds_per_run\": $secs"
for cache in default 0; do
  c=$(echo "${results[ctxalloc/$cache]}" | tr ' ' '\n' | awk NF | median)
  g=$(echo "${results[ring_mp_mc/$cache]}" | tr ' ' '\n' | awk NF | median)
  ratio=$(awk -v a="$c" -v b="$g" 'BEGIN{printf "%.3f", a/b}')
  pairs=$(echo "${results[ratio/$cache]}" | tr ' ' '\n' | awk NF | median)
  echo "mbcache=$cache: ctxalloc $c Mpps, ring_mp_mc $g Mpps, ratio of medians $ratio," \
    "median of paired ratios $pairs ($reps repetitions)"
  json+=", \"mbcache_$cache\": {\"ctxalloc_mpps\": $c, \"ring_mp_mc_mpps\": $g, \"ratio\": $ratio,"
  json+=" \"paired_ratio_median\": $pairs, \"paired_ratios\": [$(echo ${results[ratio/$cache]} | tr ' ' ',')],"
  json+=" \"ctxalloc_runs\": [$(echo ${results[ctxalloc/$cache]} | tr ' ' ',')],"
  json+=" \"ring_mp_mc_runs\": [$(echo ${results[ring_mp_mc/$cache]} | tr ' ' ',')]}"
done
echo "$json}" >"$results_dir/testpmd.json"
echo "machine: $(nproc) cores shared with other work: times are indicative"
