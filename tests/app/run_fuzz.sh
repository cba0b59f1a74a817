#!/usr/bin/env bash
# Runs the packet parser's libFuzzer binary with a fixed seed and run count, reading the
# committed corpus and writing new inputs and crash artifacts only to the build tree.
#   run_fuzz.sh FUZZER CORPUS_DIR OUT_DIR [RUNS]
set -euo pipefail
fuzzer=$1 corpus=$2 out=$3 runs=${4:-${CTXFWD_FUZZ_RUNS:-1000000}}
mkdir -p "$out/new" "$out/artifacts"
exec "$fuzzer" -seed=1 -runs="$runs" -max_len=2048 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" "$out/new" "$corpus"
