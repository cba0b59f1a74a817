#!/usr/bin/env bash
# Soak: ctxfwd with --flow-alloc ctxalloc (or FLOW_ALLOC) for DURATION seconds (default
# 600) on a churn-heavy ctxgen capture replayed forever (net_pcap infinite_rx -> net_null):
# new flows all the time, most closed by FIN/RST, the rest expiring idle. The resident set
# of the process is sampled every SAMPLE seconds (default 10); after the warm-up (WARMUP
# seconds, default 60) it must stay flat: the script fails when the last sample exceeds
# the first one after warm-up by more than SLACK_KIB (default 4096). It fails too on any
# allocation failure, or when flow memory is not all back at the end (ctxfwd's own check
# and the per-lcore tear-down's). Results: bench/results/soak.json (or $BENCH_RESULTS).
set -euo pipefail
cd "$(dirname "$0")/.."
results=${BENCH_RESULTS:-bench/results}  # where the JSON goes
build=${BUILD:-build/release}
duration=${DURATION:-600}
sample=${SAMPLE:-10}
warmup=${WARMUP:-60}
slack=${SLACK_KIB:-4096}
alloc=${FLOW_ALLOC:-ctxalloc}
[ -n "${BENCH_NO_BUILD:-}" ] || ninja -C "$build" apps/ctxfwd/ctxfwd apps/ctxgen/ctxgen >/dev/null
work=$(mktemp -d)
rundir=/var/run/dpdk
[ "$(id -u)" -eq 0 ] || rundir=${XDG_RUNTIME_DIR:-/tmp}/dpdk
trap 'rm -rf "$work" "$rundir"/ctxsoak_$$' EXIT
"$build/apps/ctxgen/ctxgen" --profile churn --flows 5000 --packets 50000 --seed 2 \
  --out "$work/churn.pcap" >/dev/null
"$build/apps/ctxfwd/ctxfwd" -l 0,1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry \
  --file-prefix "ctxsoak_$$" --vdev="net_pcap0,rx_pcap=$work/churn.pcap,infinite_rx=1" \
  --vdev=net_null0,no-rx=1 -- --flow-alloc "$alloc" --duration "$duration" --stats-period 10 \
  --idle-timeout-ms 2000 --mbufs 65536 --stats-json "$work/stats.json" >"$work/ctxfwd.log" 2>&1 &
pid=$!
: >"$work/rss"
t=0
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$rss" ] && echo "$t $rss" >>"$work/rss"
  sleep "$sample"
  t=$((t + sample))
done
status=0
wait "$pid" || status=$?
tail -25 "$work/ctxfwd.log"
mkdir -p "$results"
/usr/bin/python3 - "$work" "$results/soak.json" "$status" "$warmup" "$slack" "$alloc" "$duration" <<'PY'
import json, sys
work, out, status, warmup, slack, alloc, duration = sys.argv[1:]
status, warmup, slack = int(status), int(warmup), int(slack)
samples = [tuple(map(int, l.split())) for l in open(work + "/rss") if l.strip()]
stats = json.load(open(work + "/stats.json"))
after = [s for s in samples if s[0] >= warmup]
start = after[0][1] if after else None
end = after[-1][1] if after else None
peak = max((s[1] for s in after), default=None)
log = open(work + "/ctxfwd.log").read()
checks = {
    "exit_status_0": status == 0,
    "rss_flat_after_warmup": start is not None and end - start <= slack,
    "no_allocation_failures": stats.get("alloc_failures") == 0,
    "flows_all_released": "nothing in use" in log or alloc != "ctxalloc",
}
doc = {"flow_alloc": alloc, "duration_s": int(duration), "warmup_s": warmup,
       "rss_kib_after_warmup_start": start, "rss_kib_end": end, "rss_kib_peak_after_warmup": peak,
       "slack_kib": slack, "samples_s_kib": samples, "checks": checks,
       "rx_packets": stats.get("rx_packets"), "flows_created": stats.get("flows_created"),
       "flows_expired": stats.get("flows_expired"), "alloc_failures": stats.get("alloc_failures"),
       "alloc_fallbacks": stats.get("alloc_fallbacks")}
json.dump(doc, open(out, "w"), indent=1)
print("soak: %s s, RSS after warm-up %s KiB -> end %s KiB (peak %s), %s packets, %s flows,"
      " failures %s: %s" % (duration, start, end, peak, doc["rx_packets"], doc["flows_created"],
                           doc["alloc_failures"],
                           "PASS" if all(checks.values()) else "FAIL %s" % checks))
sys.exit(0 if all(checks.values()) else 1)
PY
