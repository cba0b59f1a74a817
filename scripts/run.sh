#!/usr/bin/env bash
# The README's run command: installs what is missing, builds the release variant and runs
# the main job. Until the ctxfwd sample app lands, that is the library's demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -f build/release/build.ninja ]; then
  meson setup build/release -Dvariant=release -Dbuildtype=release >/dev/null
fi
ninja -C build/release >/dev/null
exec build/release/apps/demo/ctxalloc-demo "$@"
