#!/usr/bin/env bash
# meson test numa_guest: boots the two-node guest of scripts/numa_guest.sh and runs
# tests/numa/guest_tests.sh in it on this build. Skips (exit 77) with the reason when no
# guest can be booted here (QEMU, busybox-static or a kernel with 9p modules missing; not
# root) or when a bare boot takes longer than CTXALLOC_NUMA_GUEST_PROBE seconds (default
# 120: emulation too slow on this machine).
#   run_in_guest.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
src=${1:?usage: run_in_guest.sh SOURCE_ROOT BUILD_DIR}
build=${2:?usage: run_in_guest.sh SOURCE_ROOT BUILD_DIR}
guest=$src/scripts/numa_guest.sh
probe=${CTXALLOC_NUMA_GUEST_PROBE:-120}
limit=${CTXALLOC_NUMA_GUEST_TIMEOUT:-600}

bash "$guest" --check || exit 77
cd "$src" || exit 2
start=$(date +%s)
bash "$guest" --quiet --timeout "$probe" -- true
rc=$?
if [ $rc -eq 124 ]; then
  echo "numa_guest: SKIP: a bare two-node guest did not boot and stop within ${probe}s here (software emulation too slow)"
  exit 77
elif [ $rc -ne 0 ]; then
  echo "numa_guest: a bare guest boot failed (exit $rc):"
  tail -30 "$src/build/numa-guest/console.log"
  exit 1
fi
echo "numa_guest: a bare boot took $(($(date +%s) - start))s"
bash "$guest" --timeout "$limit" -- bash tests/numa/guest_tests.sh "$build"
