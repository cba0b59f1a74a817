#!/usr/bin/env bash
# The long mode of the public-API property test (tests/unit/api_property_test.cc), by
# hand: OPS operations (default 10^7) in each of SEEDS seeds (default 1, 2, 3), one
# after another, niced, in VARIANT's build (default release; asan and debug work too).
# A failure prints its seed; CTXALLOC_TEST_SEED=<seed> CTXALLOC_PROPERTY_OPS=<ops>
# build/<variant>/tests/unit/api_property_test replays it.
#   scripts/property_long.sh [OPS] [VARIANT] [SEED...]
set -uo pipefail
cd "$(dirname "$0")/.."
ops=${1:-10000000} variant=${2:-release}
shift $(( $# >= 2 ? 2 : $# ))
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(1 2 3)
exe=build/$variant/tests/unit/api_property_test
ninja -C "build/$variant" tests/unit/api_property_test -j2 >/dev/null || exit 1
failed=0
for s in "${seeds[@]}"; do
  if CTXALLOC_TEST_SEED=$s CTXALLOC_PROPERTY_OPS=$ops nice -n 10 "$exe" >"build/$variant/property-long-$s.log" 2>&1; then
    echo "seed $s: $(grep -h 'operations, seed' "build/$variant/property-long-$s.log")"
  else
    echo "seed $s: FAILED (build/$variant/property-long-$s.log)"
    grep -h -A3 'Failure' "build/$variant/property-long-$s.log" | head -8
    failed=1
  fi
done
exit $failed
