#!/usr/bin/env bash
# Every installed header of a package, built by a user outside the tree with nothing but
# `pkg-config --cflags --libs PACKAGE` (issue 19, item 6). Installs the build into a
# scratch prefix, then:
#   - compiles each installed C++ header alone (C++20): each includes what it needs, and
#     everything it includes is installed;
#   - builds and runs a C++ program that includes every one of them;
#   - compiles each C header alone as C (C11), and builds and runs a C program with them;
#   - checks that no header was taken from outside the scratch prefix (an older install
#     in /usr/local would otherwise hide a header that is not installed).
#   check_headers.sh BUILD_DIR PACKAGE       PACKAGE: ctxalloc or ctxalloc_dpdk
set -euo pipefail
build=$1
package=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp" >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
  /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
pc=$(find "$tmp" -name "$package.pc" | head -n 1)
[ -n "$pc" ] || { echo "no $package.pc installed"; exit 1; }
# The .pc files name the configured prefix: point them at the scratch folder (not with
# --define-variable, which would move libdpdk's prefix too).
sed -i "s|^prefix=.*|prefix=$tmp$prefix|" "$(dirname "$pc")"/ctxalloc*.pc
export PKG_CONFIG_PATH=$(dirname "$pc")
inc=$tmp$prefix/include
cflags=$(pkg-config --cflags "$package")
libs=$(pkg-config --libs "$package")
echo "pkg-config --cflags --libs $package: $cflags $libs"
# The package's headers, and which of them are C headers.
case $package in
  ctxalloc)
    cxx_headers=$(cd "$inc" && find ctxalloc -name '*.h' -not -path 'ctxalloc/dpdk/*' | sort)
    c_headers="ctxalloc/adaptors/ctxalloc.h"
    c_flags=(-std=c11 -pedantic)
    ;;
  ctxalloc_dpdk)
    cxx_headers=$(cd "$inc" && { find ctxalloc/dpdk -name '*.h'; echo ctxalloc_dpdk.h; } | sort)
    c_headers="ctxalloc_dpdk.h"
    # DPDK's headers need POSIX types and do not pass -pedantic.
    c_flags=(-std=c11 -D_GNU_SOURCE)
    ;;
  *) echo "unknown package $package"; exit 1 ;;
esac
failed=0
n=0
for h in $cxx_headers; do
  n=$((n + 1))
  printf '#include <%s>\n' "$h" >"$tmp/one.cc"
  if ! c++ -std=c++20 -Wall -Wextra -Werror -fsyntax-only $cflags "$tmp/one.cc" 2>"$tmp/err"; then
    echo "FAILED: <$h> alone, as C++20:"
    head -5 "$tmp/err"
    failed=1
  fi
done
echo "$n C++ headers compiled alone"
{
  for h in $cxx_headers; do printf '#include <%s>\n' "$h"; done
  printf '#include <cstdio>\nint main() { std::puts("every %s header: ok"); return 0; }\n' "$package"
} >"$tmp/all.cc"
c++ -std=c++20 -Wall -Wextra -Werror $cflags "$tmp/all.cc" $libs -o "$tmp/all_cxx" -MD -MF "$tmp/all.d"
LD_LIBRARY_PATH=$tmp$prefix/lib/$(basename "$(dirname "$(dirname "$pc")")") "$tmp/all_cxx" ||
  LD_LIBRARY_PATH=$(dirname "$(dirname "$pc")") "$tmp/all_cxx"
for h in $c_headers; do
  printf '#include <%s>\n' "$h" >"$tmp/one.c"
  if ! cc "${c_flags[@]}" -Wall -Wextra -Werror -fsyntax-only $cflags "$tmp/one.c" 2>"$tmp/err"; then
    echo "FAILED: <$h> as C:"
    head -5 "$tmp/err"
    failed=1
  fi
done
{
  for h in $c_headers; do printf '#include <%s>\n' "$h"; done
  printf '#include <stdio.h>\nint main(void) { puts("the C headers of %s: ok"); return 0; }\n' "$package"
} >"$tmp/all.c"
cc "${c_flags[@]}" -Wall -Wextra -Werror $cflags "$tmp/all.c" $libs -o "$tmp/all_c" -MD -MF "$tmp/all_c.d"
LD_LIBRARY_PATH=$(dirname "$(dirname "$pc")") "$tmp/all_c"
# Every ctxalloc header the programs read came from the scratch install.
outside=$(tr ' \\' '\n\n' <"$tmp/all.d" | cat - <(tr ' \\' '\n\n' <"$tmp/all_c.d") |
  grep -E '/ctxalloc(_dpdk)?(/|\.h)' | grep -v "^$tmp" || true)
# Boost (no .pc on Debian) is declared in ctxalloc.pc's variable boost_headers: the
# declaration must be there while an installed header reads Boost, and go when none does.
boost_read=$(tr ' \\' '\n\n' <"$tmp/all.d" | grep -c '/boost/' || true)
if [ "$package" = ctxalloc ]; then
  boost_declared=$(pkg-config --variable=boost_headers ctxalloc)
  echo "Boost headers read: $boost_read; ctxalloc.pc boost_headers=$boost_declared"
  if [ "$boost_read" -gt 0 ] && [ -z "$boost_declared" ]; then
    echo "FAILED: the installed headers include Boost but ctxalloc.pc does not declare it"
    failed=1
  elif [ "$boost_read" -eq 0 ] && [ -n "$boost_declared" ]; then
    echo "FAILED: ctxalloc.pc declares Boost but no installed header includes it"
    failed=1
  fi
fi
if [ -n "$outside" ]; then
  echo "FAILED: headers read from outside the scratch install:"
  echo "$outside" | head
  failed=1
fi
exit $failed
