#!/usr/bin/env bash
# The two-node tests in one command, from a fresh clone: installs what is missing (the
# project's packages and the guest's: QEMU, busybox-static, a kernel), builds the release
# variant and runs the `numa` suite, whose numa_guest test boots a QEMU guest with two
# NUMA nodes (scripts/numa_guest.sh) and runs tests/numa/guest_tests.sh in it. About a
# minute and a half here (2 vCPU, software emulation); ends with meson's summary.
#   bash scripts/numa_tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/numa_guest.sh --install
dir=build/release
[ -f "$dir/build.ninja" ] || meson setup "$dir" -Dvariant=release -Dbuildtype=release >/dev/null
ninja -C "$dir"
meson test -C "$dir" --suite numa --print-errorlogs
