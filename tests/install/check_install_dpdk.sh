#!/usr/bin/env bash
# Installs the build into a scratch folder and builds a small DPDK program against it
# with nothing but `pkg-config --cflags --libs ctxalloc_dpdk` (its Requires brings
# libdpdk), as a DPDK user outside the tree would, then runs it.
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp" >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
  /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
pc=$(find "$tmp" -name ctxalloc_dpdk.pc | head -n 1)
[ -n "$pc" ] || { echo "no ctxalloc_dpdk.pc installed"; exit 1; }
# The scratch install's .pc files name the configured prefix: point them at the scratch
# folder (--define-variable would move libdpdk's prefix too, and its headers with it).
sed -i "s|^prefix=.*|prefix=$tmp$prefix|" "$(dirname "$pc")"/ctxalloc*.pc
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs ctxalloc_dpdk)
echo "pkg-config: $flags"
# DPDK's headers need POSIX types (ssize_t): C programs build with _GNU_SOURCE, as DPDK's
# own do; not -pedantic, which DPDK's headers do not pass.
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror "$src" $flags -o "$tmp/consumer"
CTXALLOC_CONFIG= LD_LIBRARY_PATH=$(dirname "$(dirname "$pc")") "$tmp/consumer"
