#!/usr/bin/env bash
# Fails when a C or C++ file of the project differs from what clang-format makes of it.
cd "$(dirname "$0")/.." || exit 1
mapfile -t files < <(git ls-files '*.c' '*.cc' '*.h' '*.cpp' '*.hpp' 2>/dev/null)
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(find src plugins apps tests bench -name '*.[ch]' -o -name '*.cc' 2>/dev/null)
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run: clang-format -i $f)"
    bad=1
  fi
done
[ $bad -eq 0 ] && echo "all ${#files[@]} files formatted"
exit $bad
