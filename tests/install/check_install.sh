#!/usr/bin/env bash
# Installs the build into a scratch folder and builds a small program against it with
# nothing but `pkg-config --cflags --libs ctxalloc`, as a user outside the tree would.
# A .c source is built as C11 with cc (the C API), anything else as C++20.
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp" >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
  /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
pc=$(find "$tmp" -name ctxalloc.pc | head -n 1)
[ -n "$pc" ] || { echo "no ctxalloc.pc installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --define-variable=prefix="$tmp$prefix" --cflags --libs ctxalloc)
echo "pkg-config: $flags"
case $src in
  # A C consumer: the C API header from C11, strictly, linked like any C program.
  *.c) cc -std=c11 -pedantic -Wall -Wextra -Werror "$src" $flags -o "$tmp/consumer" ;;
  *) c++ -std=c++20 -Wall -Wextra -Werror "$src" $flags -o "$tmp/consumer" ;;
esac
LD_LIBRARY_PATH=$(dirname "$(dirname "$pc")") "$tmp/consumer"
