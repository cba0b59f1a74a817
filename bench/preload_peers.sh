#!/usr/bin/env bash
# The preload suite: bench/preload_driver (plain malloc/free, no allocator linked) as whole
# processes under LD_PRELOAD of each peer, alternating: every round runs every peer once
# per workload, starting with a different peer each round; the median of the rounds per
# peer and workload is reported with its ratio to mimalloc, and each process checks that
# malloc really came from the library it was given (a wrong path would run glibc).
#   bench/preload_peers.sh [time|callgrind|all]   (default: all)
#   ROUNDS=5  N_SMALL=20000000 (pairs, batch)  N_PC=5000000 (pc, pc_lockstep)
#   N_CG=1000000 (callgrind)
# Results: bench/results/preload.json (time), bench/results/callgrind-preload.json.
set -euo pipefail
cd "$(dirname "$0")/.."
results=${BENCH_RESULTS:-bench/results}  # where the JSON goes
build=${BUILD:-build/release}
ninja -C "$build" >/dev/null
mode=${1:-all}
driver=$build/bench/preload_driver
libdir=/usr/lib/x86_64-linux-gnu
declare -A lib=(
  [ctxalloc]=$PWD/$build/src/ctxalloc/replace/libctxalloc_preload.so
  [mimalloc]=$libdir/libmimalloc.so.2
  [jemalloc]=$libdir/libjemalloc.so.2
  [tcmalloc]=$libdir/libtcmalloc_minimal.so.4
  [glibc]=
)
declare -A expect=(
  [ctxalloc]=libctxalloc_preload.so [mimalloc]=libmimalloc.so.2 [jemalloc]=libjemalloc.so.2
  [tcmalloc]=libtcmalloc_minimal.so.4 [glibc]=libc.so.6
)
peers=(ctxalloc mimalloc jemalloc tcmalloc glibc)
for p in "${peers[@]}"; do
  [ -z "${lib[$p]}" ] || [ -f "${lib[$p]}" ] || { echo "missing $p: ${lib[$p]}" >&2; exit 1; }
done
mkdir -p "$results"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One process: prints "wall cpu" ns/op; fails when malloc is not the peer's.
run_one() {  # peer workload n
  local out
  out=$(env ${lib[$1]:+LD_PRELOAD=${lib[$1]}} "$driver" "$2" "$3")
  local got=${out##* }
  [ "$got" = "${expect[$1]}" ] || { echo "$1: malloc came from $got" >&2; exit 1; }
  echo "$out" | awk '{print $2, $3}'
}

median() {  # column file
  awk -v c="$1" '{print $c}' "$2" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

if [ "$mode" = time ] || [ "$mode" = all ]; then
  rounds=${ROUNDS:-5}
  workloads=(pairs batch pc_lockstep pc)
  declare -A n=([pairs]=${N_SMALL:-20000000} [batch]=${N_SMALL:-20000000}
    [pc_lockstep]=${N_PC:-5000000} [pc]=${N_PC:-5000000})
  for ((r = 0; r < rounds; r++)); do
    for w in "${workloads[@]}"; do
      for ((i = 0; i < ${#peers[@]}; i++)); do
        p=${peers[$(((i + r) % ${#peers[@]}))]}
        run_one "$p" "$w" "${n[$w]}" >>"$tmp/$p.$w"
      done
    done
  done
  echo "Median ns per operation (allocate + free) of $rounds alternating rounds, one process"
  echo "each, as process CPU time and as wall time; ratio = peer / mimalloc (lower is faster)."
  echo "A loaded, shared 2-core machine: indicative; pc spins, so its figures swing most."
  json="{"
  sep=""
  for w in "${workloads[@]}"; do
    mi_cpu=$(median 2 "$tmp/mimalloc.$w")
    mi_wall=$(median 1 "$tmp/mimalloc.$w")
    for p in "${peers[@]}"; do
      cpu=$(median 2 "$tmp/$p.$w")
      wall=$(median 1 "$tmp/$p.$w")
      rc=$(awk -v a="$cpu" -v b="$mi_cpu" 'BEGIN {printf "%.3f", a / b}')
      rw=$(awk -v a="$wall" -v b="$mi_wall" 'BEGIN {printf "%.3f", a / b}')
      runs=$(awk '{printf "%s%s/%s", (NR > 1 ? "," : ""), $2, $1}' "$tmp/$p.$w")
      printf '%-11s %-9s cpu %8.3f ns (ratio %s)  wall %8.3f ns (ratio %s)  runs cpu/wall: %s\n' \
        "$w" "$p" "$cpu" "$rc" "$wall" "$rw" "$runs"
      json+="$sep\"${w}_$p\": {\"cpu_ns\": $cpu, \"cpu_ratio_to_mimalloc\": $rc,"
      json+=" \"wall_ns\": $wall, \"wall_ratio_to_mimalloc\": $rw,"
      json+=" \"runs_cpu_wall\": \"$runs\"}"
      sep=", "
    done
  done
  echo "$json}" >"$results/preload.json"
fi

if [ "$mode" = callgrind ] || [ "$mode" = all ]; then
  ncg=${N_CG:-1000000}
  echo "Instructions per operation (callgrind, the workload's functions only, N=$ncg)."
  json="{"
  sep=""
  for w in pairs batch pc_lockstep; do
    for p in "${peers[@]}"; do
      env ${lib[$p]:+LD_PRELOAD=${lib[$p]}} valgrind --tool=callgrind \
        --callgrind-out-file="$tmp/cg.out" --toggle-collect="ctxbench_$w" \
        --toggle-collect="ctxbench_${w}_*" "$driver" "$w" "$ncg" >"$tmp/cg.stdout" 2>"$tmp/cg.err" ||
        { echo "callgrind failed for $p $w" >&2; tail -5 "$tmp/cg.err" >&2; exit 1; }
      got=$(awk '{print $4}' "$tmp/cg.stdout")
      [ "$got" = "${expect[$p]}" ] || { echo "$p: malloc came from $got" >&2; exit 1; }
      total=$(sed -n 's/^summary: //p' "$tmp/cg.out" | awk '{print $1}')
      # The warm-up pc_lockstep run (N/10 + 1) is inside the toggled function too.
      ops=$ncg
      [ "$w" = pc_lockstep ] && ops=$((ncg + ncg / 10 + 1))
      per=$(awk -v t="$total" -v n="$ops" 'BEGIN {printf "%.2f", t / n}')
      eval "cg_$p=$per"
      printf '%-12s %-9s %8s instructions per op\n' "$w" "$p" "$per"
      json+="$sep\"${w}_$p\": {\"instructions\": $total, \"ops\": $ops, \"per_op\": $per}"
      sep=", "
    done
  done
  echo "$json}" >"$results/callgrind-preload.json"
fi
