#!/usr/bin/env bash
# The two-node tests, run inside the guest of scripts/numa_guest.sh (2 nodes x 1 vCPU,
# 2 MiB hugepages on each node). tests/numa/run_in_guest.sh boots the guest and runs this;
# run by hand:   bash scripts/numa_guest.sh -- bash tests/numa/guest_tests.sh build/release
#
#  1. numa_two_node_test: the NUMA policies, hugetlb pools, global and thread heaps on
#     each node (move_pages per page);
#  2. numa_two_node_dpdk_test: the DPDK plugin with config/two-socket.ini, lcores on both
#     nodes, mempool pools per socket, cross-node frees, and the wrong placements
#     (a node without hugepages, an exhausted node, hugepages = prefer);
#  3. ctxfwd with two worker lcores on two nodes (config/two-socket.ini): every heap's
#     pages on its lcore's node (the kernel's word, --stats-json), both workers forwarding
#     with flows, hugepages taken on both nodes while it runs and all back after;
#  4. ctxfwd with node 1's hugepages gone: refused before forwarding, naming the node.
#
# Inside the guest nothing may skip: a skip there means the guest lost what it was built
# for, and counts as a failure. Ends with one line per part and a summary; exit 0 only
# when every part passed.
set -uo pipefail

build=${1:?usage: guest_tests.sh BUILD_DIR}
build=$(cd "$build" && pwd) || exit 2
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/ctxalloc-guest-tests.XXXXXX)
trap 'rm -rf "$out"' EXIT
results=()
failed=0

# The first CPU of each node: lcores 0 and 1 go on node 0's, lcore 8 on node 1's.
first_cpu() { cut -d, -f1 "/sys/devices/system/node/node$1/cpulist" | cut -d- -f1; }
cpu0=$(first_cpu 0)
cpu1=$(first_cpu 1)

node_pages() { cat "/sys/devices/system/node/node$1/hugepages/hugepages-2048kB/$2" 2>/dev/null || echo -1; }

# gtest binary: passes when it exits 0, ran tests and skipped none.
gtest_part() {
  local name=$1 exe=$2 log="$out/$1.log"
  shift 2
  echo "=== $name"
  if [ ! -x "$exe" ]; then
    echo "$name: $exe is not built"
    results+=("FAIL  $name (not built)")
    failed=1
    return
  fi
  env "$@" "$exe" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local skipped
  skipped=$(grep -c '^\[  SKIPPED \]' "$log")
  if [ "$rc" -eq 0 ] && grep -q '^\[  PASSED  \]' "$log" && [ "$skipped" -eq 0 ]; then
    results+=("ok    $name ($(grep -m1 '^\[  PASSED  \]' "$log" | sed 's/.*\] //'))")
  else
    results+=("FAIL  $name (exit $rc, $skipped skipped lines: a skip in the guest is a failure)")
    failed=1
  fi
}

# ctxfwd on two nodes: lcore 0 (main) and 1 on node 0's CPU, lcore 8 on node 1's; one
# net_pcap port per worker, each replaying a ctxgen capture. No tx_pcap: a net_pcap port
# given only rx_pcap drops what it sends, so nothing grows in the guest's RAM-backed /tmp
# (tx_pcap files there got a 10 s run OOM-killed) and the run can last 10 s (under a
# loaded host the emulated guest's set-up took all of a 4 s run, and a worker forwarded
# nothing).
ctxfwd_part() {
  local name="ctxfwd_two_workers_two_nodes"
  echo "=== $name"
  local fwd="$build/apps/ctxfwd/ctxfwd" gen="$build/apps/ctxgen/ctxgen"
  "$gen" --flows 200 --packets 2000 --concurrency 50 --out "$out/in.pcap" >/dev/null || {
    results+=("FAIL  $name (ctxgen)")
    failed=1
    return
  }
  local before0 before1
  before0=$(node_pages 0 free_hugepages)
  before1=$(node_pages 1 free_hugepages)
  "$fwd" --lcores "0@$cpu0,1@$cpu0,8@$cpu1" --no-pci --in-memory --file-prefix ctxfwd-2n \
    --vdev "net_pcap0,rx_pcap=$out/in.pcap,infinite_rx=1" \
    --vdev "net_pcap1,rx_pcap=$out/in.pcap,infinite_rx=1" \
    -- --config "$src/config/two-socket.ini" --duration 10 --stats-period 0 --mbufs 16384 \
    --stats-json "$out/run.json" >"$out/ctxfwd.log" 2>&1 &
  local pid=$! during0=-1 during1=-1
  for _ in $(seq 1 60); do
    sleep 0.5
    if grep -q '^ctxfwd: forwarding' "$out/ctxfwd.log"; then
      during0=$(node_pages 0 free_hugepages)
      during1=$(node_pages 1 free_hugepages)
      break
    fi
    kill -0 $pid 2>/dev/null || break
  done
  wait $pid
  local rc=$?
  cat "$out/ctxfwd.log"
  local after0 after1
  after0=$(node_pages 0 free_hugepages)
  after1=$(node_pages 1 free_hugepages)
  echo "free 2 MiB hugepages: node 0 $before0 -> $during0 -> $after0, node 1 $before1 -> $during1 -> $after1"
  local why
  why=$(python3 - "$out/run.json" "$rc" "$before0,$during0,$after0" "$before1,$during1,$after1" <<'EOF'
import json, sys
path, rc, n0, n1 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
bad = []
if rc != 0:
    bad.append(f"ctxfwd exited {rc}")
try:
    d = json.load(open(path))
except Exception as e:  # no JSON: ctxfwd failed before the summary
    print(f"ctxfwd exited {rc}, no --stats-json ({e})")
    sys.exit()
want = {1: 0, 8: 1}  # worker lcore -> its node
seen = {l["lcore"]: l for l in d["lcores"]}
for lcore, node in want.items():
    l = seen.get(lcore)
    if l is None:
        bad.append(f"lcore {lcore} did not run")
        continue
    if l.get("socket") != node:
        bad.append(f"lcore {lcore} is on socket {l.get('socket')}, not {node}")
    if l.get("heap_node") != node:
        bad.append(f"lcore {lcore}'s heap belongs to node {l.get('heap_node')}, not {node}")
    if l.get("heap_pages", 0) == 0 or l.get("heap_local_pages") != l.get("heap_pages"):
        bad.append(f"lcore {lcore}: {l.get('heap_local_pages')} of {l.get('heap_pages')} heap pages on node {node}")
    if l.get("heap_remote_pages", 1) != 0:
        bad.append(f"lcore {lcore}: {l.get('heap_remote_pages')} heap pages on the other node")
    if l.get("rx_packets", 0) == 0 or l.get("flows_created", 0) == 0:
        bad.append(f"lcore {lcore} forwarded {l.get('rx_packets')} packets, {l.get('flows_created')} flows")
    if l.get("failures", 1) != 0 or l.get("bytes_in_use", 1) != 0:
        bad.append(f"lcore {lcore}: {l.get('failures')} flow memory failures, {l.get('bytes_in_use')} B left in use")
if d.get("heap_remote_pages", 1) != 0:
    bad.append(f"{d.get('heap_remote_pages')} heap pages on a remote node")
for node, counts in ((0, n0), (1, n1)):
    before, during, after = (int(x) for x in counts.split(","))
    if during < 0 or during >= before:
        bad.append(f"node {node}: no hugepages taken while forwarding ({before} -> {during} free)")
    if after != before:
        bad.append(f"node {node}: {before} free hugepages before, {after} after")
print("; ".join(bad))
EOF
)
  if [ -z "$why" ]; then
    results+=("ok    $name (placement local on both nodes, hugepages taken on both and returned)")
  else
    echo "$name: $why"
    results+=("FAIL  $name ($why)")
    failed=1
  fi
}

# Node 1 without hugepages, config/two-socket.ini requiring them: refused before any
# forwarding, and the refusal names node 1 (never a silent run on node 0's memory).
ctxfwd_refusal_part() {
  local name="ctxfwd_node_without_hugepages_refused"
  echo "=== $name"
  local fwd="$build/apps/ctxfwd/ctxfwd" f=/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages
  local saved
  saved=$(cat $f)
  echo 0 >$f
  "$fwd" --lcores "0@$cpu0,1@$cpu0,8@$cpu1" --no-pci --in-memory --file-prefix ctxfwd-2n-refused \
    -- --config "$src/config/two-socket.ini" --duration 2 --stats-period 0 >"$out/refused.log" 2>&1
  local rc=$?
  echo "$saved" >$f
  cat "$out/refused.log"
  local why=""
  [ "$rc" -ne 0 ] || why="ctxfwd ran (exit 0) with no hugepages on node 1"
  grep -q '^ctxfwd: forwarding' "$out/refused.log" && why="${why:+$why; }it started forwarding"
  local refusal
  refusal=$(grep -m1 -E '^ctxalloc: .*(node|socket) 1.*[0-9]+ of [0-9]+' "$out/refused.log")
  [ -n "$refusal" ] || why="${why:+$why; }no refusal naming node 1 and its numbers"
  [ "$(cat $f)" = "$saved" ] || why="${why:+$why; }node 1's reservation not restored"
  if [ -z "$why" ]; then
    results+=("ok    $name (exit $rc: ${refusal:0:160})")
  else
    echo "$name: $why"
    results+=("FAIL  $name ($why)")
    failed=1
  fi
}

echo "guest: $(nproc) CPUs; $(ls -d /sys/devices/system/node/node* | wc -l) nodes;" \
  "hugepages node 0 $(node_pages 0 nr_hugepages), node 1 $(node_pages 1 nr_hugepages)"
gtest_part numa_two_node "$build/tests/numa/numa_two_node_test"
gtest_part numa_two_node_dpdk "$build/tests/numa/numa_two_node_dpdk_test" \
  CTXALLOC_SOURCE_ROOT="$src" CTXALLOC_CONFIG=
ctxfwd_part
ctxfwd_refusal_part

echo "=== two-node guest tests"
printf '  %s\n' "${results[@]}"
pass=$(printf '%s\n' "${results[@]}" | grep -c '^ok')
echo "$pass of ${#results[@]} parts passed"
exit $failed
