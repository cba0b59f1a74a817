#!/usr/bin/env bash
# The stock dpdk-testpmd with the ctxalloc plugin, on two net_null virtual devices with io
# forwarding: loaded with EAL -d (the file, and its folder) and with LD_PRELOAD, made the
# mbuf pool's ops with --mbuf-pool-ops-name=ctxalloc. EAL -d loads a private copy of the
# plugin when the build folder is under a world-writable one (a clone in /tmp: DPDK refuses
# such paths, which eal_d_world_writable checks; tests/dpdk/safe_plugin.sh). Each run must show, in testpmd's own
# output, that its pool used ops `ctxalloc` and that packets went through; the telemetry
# socket of the running testpmd must list the pool. A bad CTXALLOC_CONFIG must stop the
# pool with file:line in the log.
#   testpmd_test.sh PLUGIN_SO SOURCE_ROOT
# CTXALLOC_ASAN_RUNTIME: the ASan runtime to preload (the plugin of an asan build).
set -uo pipefail
plugin=$1
root=$2
testpmd=$(command -v dpdk-testpmd) || { echo "dpdk-testpmd not installed"; exit 77; }
preload=${CTXALLOC_ASAN_RUNTIME:-}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
tmp=$(mktemp -d)
# shellcheck source=tests/dpdk/safe_plugin.sh
. "$(dirname "$0")/safe_plugin.sh"
trap 'rm -rf "$tmp" ${SAFE_PLUGIN_DIR:+"$SAFE_PLUGIN_DIR"}' EXIT
safe_plugin "$plugin" || exit 77
plugin_d=$SAFE_PLUGIN  # what -d loads
[ -z "$SAFE_PLUGIN_DIR" ] || echo "note: the build folder is under a world-writable one; -d loads $plugin_d"
failed=0

fail() {
  echo "FAILED ($1): $2"
  failed=1
}

# run NAME SECONDS [VAR=VALUE...] -- EAL ARGS...: testpmd's output goes to $tmp/NAME.out.
run() {
  local name=$1 secs=$2
  shift 2
  local envs=() preloads=$preload
  while [ "$1" != "--" ]; do
    if [[ $1 == LD_PRELOAD=* ]]; then preloads+=" ${1#LD_PRELOAD=}"; else envs+=("$1"); fi
    shift
  done
  shift
  [ -z "$preloads" ] || envs+=("LD_PRELOAD=${preloads# }")
  # env after timeout: only testpmd gets the environment (and the preloaded libraries).
  timeout -s INT "$secs" env "${envs[@]}" "$testpmd" -l 0-1 --no-huge -m 512 --no-pci \
    --file-prefix "ctxalloc_testpmd_$$_$name" --vdev=net_null0 --vdev=net_null1 \
    --mbuf-pool-ops-name=ctxalloc "$@" \
    -- --stats-period 1 --forward-mode=io --total-num-mbufs=16384 </dev/null >"$tmp/$name.out" 2>&1
}

# check NAME: the pool used ctxalloc and packets went through both ways.
check() {
  local name=$1 out=$tmp/$1.out
  grep -q "preferred mempool ops selected: ctxalloc" "$out" ||
    fail "$name" "testpmd did not select the ctxalloc ops"
  grep -q "ctxalloc: mempool mb_pool_0: 16384 objects" "$out" ||
    fail "$name" "the ctxalloc driver did not make mb_pool_0"
  # The final "Accumulated forward statistics for all ports" block.
  local rx tx
  rx=$(sed -n '/Accumulated forward statistics for all ports/,$p' "$out" |
    sed -n 's/.*RX-packets: *\([0-9]*\).*/\1/p' | head -1)
  tx=$(sed -n '/Accumulated forward statistics for all ports/,$p' "$out" |
    sed -n 's/.*TX-packets: *\([0-9]*\).*/\1/p' | head -1)
  if [ -z "$rx" ] || [ "$rx" -eq 0 ] || [ -z "$tx" ] || [ "$tx" -eq 0 ]; then
    fail "$name" "no packets forwarded (rx=${rx:-none} tx=${tx:-none})"
    tail -30 "$out"
  else
    echo "ok ($name): ops ctxalloc, $rx packets received and $tx sent"
  fi
}

run eal_d_file 4 -- -d "$plugin_d"
check eal_d_file
run eal_d_folder 4 -- -d "$(dirname "$plugin_d")"
check eal_d_folder
run ld_preload 4 LD_PRELOAD="$plugin" --
check ld_preload

# The rule safe_plugin.sh follows, checked against DPDK itself: a plugin in a
# world-writable folder is refused by EAL -d, and eal_d_accepts says so too.
mkdir "$tmp/ww" && chmod 777 "$tmp/ww" && cp "$plugin" "$tmp/ww/"
run eal_d_world_writable 4 -- -d "$tmp/ww/$(basename "$plugin")"
if grep -q "is world-writable and insecure" "$tmp/eal_d_world_writable.out" &&
  ! grep -q "preferred mempool ops selected: ctxalloc" "$tmp/eal_d_world_writable.out" &&
  ! eal_d_accepts "$tmp/ww"; then
  echo "ok (eal_d_world_writable): DPDK refused the plugin in a world-writable folder"
else
  fail eal_d_world_writable "expected DPDK to refuse -d from $tmp/ww and eal_d_accepts to agree"
  tail -10 "$tmp/eal_d_world_writable.out"
fi

# Telemetry of the running testpmd lists its ctxalloc pool, with objects handed out.
run telemetry 6 -- -d "$plugin_d" &
pid=$!
answer=""
for _ in 1 2 3 4 5 6 7 8; do
  sleep 0.5
  sock=/var/run/dpdk/ctxalloc_testpmd_$$_telemetry/dpdk_telemetry.v2
  [ -S "$sock" ] || continue
  answer=$(/usr/bin/python3 - "$sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
json.loads(s.recv(16384))
s.send(b"/ctxalloc/mempools")
pools = json.loads(s.recv(65536))["/ctxalloc/mempools"]
p = pools.get("mb_pool_0")
print("gets=%d lanes=%d" % (p["gets"], p["lanes"]) if p else "no mb_pool_0 in %s" % pools)
PY
  ) && [[ $answer == gets=* ]] && [[ $answer != gets=0* ]] && break
done
wait $pid
check telemetry
if [[ $answer == gets=* ]] && [[ $answer != gets=0* ]]; then
  echo "ok (telemetry): /ctxalloc/mempools of the running testpmd: mb_pool_0 $answer"
else
  fail telemetry "/ctxalloc/mempools did not show mb_pool_0 in use: ${answer:-no answer}"
fi

# A bad configuration: the pool is refused, and the log names file:line.
bad=$root/tests/dpdk/configs/bad_hugepages_too_few.ini
run bad_config 4 CTXALLOC_CONFIG="$bad" -- -d "$plugin_d"
if grep -q "ctxalloc: config $bad:10: \[socket.0\] hugepages: socket 0 needs" "$tmp/bad_config.out" &&
  ! grep -q "Accumulated forward statistics" "$tmp/bad_config.out"; then
  echo "ok (bad_config): the pool was refused, the log names $bad:10"
else
  fail bad_config "expected the config error and no forwarding"
  tail -20 "$tmp/bad_config.out"
fi
exit $failed
