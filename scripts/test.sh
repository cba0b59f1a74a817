#!/usr/bin/env bash
# The README's test command: installs what is missing, builds every variant and runs
# its tests, then prints one summary over all of them (scripts/summarize_tests.py).
#   CTXALLOC_VARIANTS="release asan"  limits the variants (default: all four)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/setup.sh || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }

variants=${CTXALLOC_VARIANTS:-"release debug asan tsan"}
mkdir -p build
logs=()
for v in $variants; do
  dir=build/$v
  case $v in
    release) env=(); opts=(-Dbuildtype=release) ;;
    debug) env=(); opts=(-Dbuildtype=debug) ;;
    # One clang build serves ASan+UBSan (and, later, the fuzzers).
    asan) env=(CC=clang CXX=clang++); opts=(-Dbuildtype=debug -Db_lundef=false) ;;
    tsan) env=(); opts=(-Dbuildtype=debugoptimized -Db_lundef=false) ;;
    *) echo "unknown variant $v" >&2; logs+=("$v=/nonexistent"); continue ;;
  esac
  echo "=== $v: configure, build, test"
  rm -f "$dir/meson-logs/testlog.json"
  if [ ! -f "$dir/build.ninja" ]; then
    env "${env[@]}" meson setup "$dir" -Dvariant="$v" "${opts[@]}" >"$root/build/setup-$v.log" 2>&1 ||
      { echo "meson setup failed for $v:"; tail -20 "build/setup-$v.log"; }
  fi
  if [ -f "$dir/build.ninja" ]; then
    if ninja -C "$dir" >"$root/build/ninja-$v.log" 2>&1; then
      meson test -C "$dir" --print-errorlogs 2>&1 | tail -n 40
    else
      echo "build failed for $v:"
      grep -E "error|FAILED" -A3 "build/ninja-$v.log" | head -40
    fi
  fi
  logs+=("$v=$dir/meson-logs/testlog.json")
done

echo "=== summary"
/usr/bin/python3 scripts/summarize_tests.py "${logs[@]}"
