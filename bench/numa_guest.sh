#!/usr/bin/env bash
# The two-node row of docs/BENCHMARKS.md: boots the guest of scripts/numa_guest.sh and runs
# there bench/numa_access (local versus remote memory from node 0's CPU, as the guest
# reports them, with the kernel's numastat counters) and a short ctxfwd run on
# config/two-socket.ini with a worker lcore on each node (its heaps' pages per node, the
# kernel's word). Writes $BENCH_RESULTS/numa_guest.json. Software emulation (TCG): the
# timings are the guest's, not hardware figures; the placement figures are exact.
# Without a bootable guest it says why and writes nothing (the report leaves the row out).
#   BUILD (default build/release), BENCH_RESULTS (default bench/results), BENCH_SMOKE=1
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$(cd "${BUILD:-build/release}" && pwd)
results=${BENCH_RESULTS:-bench/results}
mkdir -p "$results"
if ! why=$(bash scripts/numa_guest.sh --check 2>&1); then
  echo "numa_guest bench: skipped: $why"
  exit 0
fi
if [ "${BENCH_SMOKE:-}" = 1 ]; then
  access=(--mib 16 --rounds 1 --chase 200000)
  seconds=2
else
  access=(--mib 64 --rounds 5 --chase 2000000)
  seconds=4
fi
out=$root/build/numa-guest/bench
rm -rf "$out"
mkdir -p "$out"
cat >"$out/inner.sh" <<INNER
set -u
cpu0=\$(cut -d, -f1 /sys/devices/system/node/node0/cpulist | cut -d- -f1)
cpu1=\$(cut -d, -f1 /sys/devices/system/node/node1/cpulist | cut -d- -f1)
"$build/bench/numa_access" ${access[*]} >"$out/access.json" || exit 1
"$build/apps/ctxgen/ctxgen" --flows 200 --packets 2000 --concurrency 50 --out /tmp/in.pcap >/dev/null || exit 1
"$build/apps/ctxfwd/ctxfwd" --lcores "0@\$cpu0,1@\$cpu0,8@\$cpu1" --no-pci --in-memory \\
  --file-prefix ctxfwd-2n-bench \\
  --vdev net_pcap0,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/o0.pcap,infinite_rx=1 \\
  --vdev net_pcap1,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/o1.pcap,infinite_rx=1 \\
  -- --config "$root/config/two-socket.ini" --duration $seconds --stats-period 0 --mbufs 16384 \\
  --stats-json "$out/ctxfwd.json" >"$out/ctxfwd.log" 2>&1 || { cat "$out/ctxfwd.log"; exit 1; }
uname -r >"$out/kernel"
INNER
start=$(date +%s)
if ! bash scripts/numa_guest.sh --quiet --timeout 600 -- bash "$out/inner.sh"; then
  echo "numa_guest bench: the guest run failed (console: build/numa-guest/console.log)" >&2
  exit 1
fi
/usr/bin/python3 - "$out" "$results/numa_guest.json" "$(($(date +%s) - start))" \
  "$(qemu-system-x86_64 --version | head -1)" <<'EOF2'
import json, sys
out, dest, secs, qemu = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
access = json.load(open(out + "/access.json"))
fwd = json.load(open(out + "/ctxfwd.json"))
lcores = [{k: l.get(k) for k in ("lcore", "socket", "heap_node", "heap_pages", "heap_local_pages",
                                 "heap_remote_pages", "rx_packets", "flows_created")}
          for l in fwd["lcores"]]
json.dump({
    "guest": {"qemu": qemu, "accel": "tcg", "kernel": open(out + "/kernel").read().strip(),
              "nodes": 2, "vcpus_per_node": 1, "emulated": True, "run_seconds": secs},
    "access": access,
    "ctxfwd": {"rx_packets": fwd.get("rx_packets"), "tx_packets": fwd.get("tx_packets"),
               "rx_pps": fwd.get("rx_pps"), "heap_remote_pages": fwd.get("heap_remote_pages"),
               "lcores": lcores},
}, open(dest, "w"), indent=1)
print("numa_guest bench: %s (remote/local chase %.2f, local/remote read %.2f, %d remote heap pages)"
      % (dest, access.get("remote_over_local_chase", 0), access.get("local_over_remote_read", 0),
         fwd.get("heap_remote_pages", -1)))
EOF2
