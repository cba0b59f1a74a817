#!/usr/bin/env bash
# The README's run command: installs what is missing, builds the release variant and runs
# the main job: ctxfwd on its embedded default (ctxgen traffic replayed from a pcap through
# net_pcap, forwarded to net_null; no NIC, no root needed beyond setup) for 5 seconds,
# printing a stats line per second and the final summary. Then, as a second step, the
# library's own demo (ctxalloc-demo).
#   scripts/run.sh [ctxfwd options]     e.g. --flow-alloc malloc, --pipeline, --duration 10
#   CTXFWD_EAL="-l 0,1"                 EAL arguments (default: main lcore 0, worker 1;
#                                       --pipeline needs a third: "--lcores 0@0,1@0,2@1")
set -euo pipefail
cd "$(dirname "$0")/.."
# The main job wants hugepages for its mbufs, its flow table and the per-lcore heaps
# (about 288 MiB: the default holds 100,000 flows).
CTXALLOC_HUGEPAGES=${CTXALLOC_HUGEPAGES:-160} bash scripts/setup.sh
if [ ! -f build/release/build.ninja ]; then
  meson setup build/release -Dvariant=release -Dbuildtype=release >/dev/null
fi
ninja -C build/release >/dev/null
eal=${CTXFWD_EAL:-"-l 0,1"}
# shellcheck disable=SC2086 # the EAL arguments are words
build/release/apps/ctxfwd/ctxfwd $eal -- --duration 5 --stats-period 1 "$@"
echo
echo "=== second step: the ctxalloc library demo"
exec build/release/apps/demo/ctxalloc-demo
