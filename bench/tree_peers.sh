#!/usr/bin/env bash
# The tree suite against its peers, each malloc in its own process (bench/tree_bench.cc):
# ROUNDS rounds (default 5), every round running each binary once in a shuffled order, so
# that the peers alternate on this shared, noisy machine; then one fragmentation
# measurement per allocator (peak RSS growth / peak live bytes, every byte written).
# Prints the median ns per operation, ratios to the TreeAllocator and the footprints, and
# keeps everything in bench/results/tree_peers.json.
#   bench/tree_peers.sh          ROUNDS=N, BENCH_MIN_TIME=S (default 0.2 s per benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
results=${BENCH_RESULTS:-bench/results}  # where the JSON goes
build=${BUILD:-build/release}
[ -f "$build/build.ninja" ] || meson setup "$build" -Dvariant=release -Dbuildtype=release >/dev/null
ninja -C "$build" >/dev/null
rounds=${ROUNDS:-5}
bins=()
for b in bench_tree bench_tree_mimalloc bench_tree_jemalloc bench_tree_tcmalloc bench_tree_rte; do
  [ -x "$build/bench/$b" ] && bins+=("$b")
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$rounds"); do
  for b in $(printf '%s\n' "${bins[@]}" | shuf); do
    echo "round $r/$rounds: $b" >&2
    "$build/bench/$b" --benchmark_min_time="${BENCH_MIN_TIME:-0.2}" \
      --benchmark_out="$tmp/$b.$r.json" --benchmark_out_format=json >/dev/null 2>"$tmp/$b.$r.err" ||
      { echo "$b failed:" >&2; cat "$tmp/$b.$r.err" >&2; exit 1; }
  done
done
: >"$tmp/fragmentation.jsonl"
for spec in "bench_tree tree" "bench_tree pmr" "bench_tree malloc" "bench_tree_mimalloc malloc" \
  "bench_tree_jemalloc malloc" "bench_tree_tcmalloc malloc"; do
  read -r b api <<<"$spec"
  [ -x "$build/bench/$b" ] || continue
  echo "fragmentation: $b $api" >&2
  "$build/bench/$b" --fragmentation="$api" 2>/dev/null >>"$tmp/fragmentation.jsonl"
done
mkdir -p "$results"
/usr/bin/python3 - "$tmp" "$results/tree_peers.json" <<'PY'
import glob, json, statistics, sys
tmp, out = sys.argv[1], sys.argv[2]
times = {}  # (workload, peer) -> [ns per op]
for f in glob.glob(tmp + "/*.json"):
    for b in json.load(open(f))["benchmarks"]:
        workload, peer = b["name"].split("/")
        times.setdefault((workload, peer), []).append(1e9 / b["items_per_second"])
frag = [json.loads(l) for l in open(tmp + "/fragmentation.jsonl") if l.strip()]
peers = ["tree", "pmr", "glibc", "mimalloc", "jemalloc", "tcmalloc", "rte"]
peers = [p for p in peers if any(k[1] == p for k in times)]
workloads = ["pairs64", "random", "fragmented"]
med = {k: statistics.median(v) for k, v in times.items()}
print("median ns per operation (%d runs each; a shared, loaded machine: indicative)"
      % max(len(v) for v in times.values()))
print("%-11s" % "workload" + "".join("%12s" % p for p in peers))
for w in workloads:
    print("%-11s" % w + "".join("%12.1f" % med[(w, p)] if (w, p) in med else "%12s" % "-"
                                for p in peers))
print("\npeer time / TreeAllocator time (> 1: the tree is faster)")
for w in workloads:
    t = med.get((w, "tree"))
    print("%-11s" % w + "".join("%12.2f" % (med[(w, p)] / t) if (w, p) in med and t else
                                "%12s" % "-" for p in peers))
print("\nfootprint on the random workload: peak RSS growth / peak live requested bytes")
for f in frag:
    print("  %-9s %7.1f MB taken for %7.1f MB live: %.3f" %
          (f["peer"], f["peak_taken"] / 1e6, f["peak_live"] / 1e6, f["ratio"]))
json.dump({"ns_per_op_median": {"%s/%s" % k: v for k, v in med.items()},
           "ns_per_op_runs": {"%s/%s" % k: v for k, v in times.items()},
           "fragmentation": frag}, open(out, "w"), indent=1)
print("\nwritten to", out)
PY
