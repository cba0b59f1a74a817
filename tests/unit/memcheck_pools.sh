#!/usr/bin/env bash
# Runs memcheck_pools under valgrind's memcheck: every use-after-free case must be
# reported as an invalid write (exit 42, "Invalid write" in the log), the clean run must
# report nothing (exit 0).
#   memcheck_pools.sh VALGRIND PROGRAM
set -uo pipefail
valgrind=$1 prog=$2
failed=0
run() {
  "$valgrind" --tool=memcheck --error-exitcode=42 --quiet "$prog" "$1" 2>&1
}
out=$(run clean); rc=$?
if [ $rc -ne 0 ]; then
  echo "FAIL clean: exit $rc"; echo "$out" | head -30; failed=1
else
  echo "ok   clean: no error reported"
fi
for c in bump bitset size_class tree context; do
  out=$(run $c); rc=$?
  if [ $rc -eq 42 ] && grep -q "Invalid write of size 1" <<<"$out"; then
    echo "ok   $c: use after free reported"
  else
    echo "FAIL $c: exit $rc, no invalid write reported"; echo "$out" | head -30; failed=1
  fi
done
exit $failed
