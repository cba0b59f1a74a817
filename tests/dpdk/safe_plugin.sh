# Sourced by the scripts that load the ctxalloc plugin with EAL -d (tests/dpdk/
# testpmd_test.sh, bench/testpmd_bench.sh). DPDK 22.11 refuses a -d plugin when its folder
# or any parent folder is world-writable (eal_common_options.c checks each path component
# with stat; the error is "directory path ... is world-writable and insecure"), so a clone
# under /tmp cannot load build/.../librte_mempool_ctxalloc.so from where it was built.
# These functions let the scripts load a private copy instead, anywhere the clone is.

# eal_d_accepts DIR: true when EAL -d accepts plugins in DIR (an absolute path): neither
# DIR nor any of its parents is world-writable. Like DPDK, the path is taken as written
# (stat follows symbolic links for each component, the components are not resolved).
eal_d_accepts() {
  local d=$1 mode
  while :; do
    mode=$(stat -L -c %a "$d" 2>/dev/null) || return 1
    (((8#$mode & 2) == 0)) || return 1
    [ "$d" = / ] && return 0
    d=$(dirname "$d")
  done
}

# safe_plugin PLUGIN: prints a path to PLUGIN that EAL -d accepts: PLUGIN itself when its
# folder passes, else a copy in a new private folder (mode 700) under the first of
# $XDG_RUNTIME_DIR, $HOME/.cache that passes. SAFE_PLUGIN_DIR is then that folder, for the
# caller to remove (empty when PLUGIN is used as it is). Fails, with the reason on stderr,
# when there is no such place. Call it in the main shell (not in $(...)) so that
# SAFE_PLUGIN_DIR is kept: the path is left in SAFE_PLUGIN.
SAFE_PLUGIN="" SAFE_PLUGIN_DIR=""
safe_plugin() {
  local plugin dir base
  plugin=$(realpath -s "$1")
  if eal_d_accepts "$(dirname "$plugin")"; then
    SAFE_PLUGIN=$plugin
    return 0
  fi
  for base in "${XDG_RUNTIME_DIR:-}" "${HOME:+$HOME/.cache}"; do
    [ -n "$base" ] || continue
    mkdir -p -m 700 "$base" 2>/dev/null || continue
    eal_d_accepts "$base" || continue
    dir=$(mktemp -d "$base/ctxalloc-plugin.XXXXXX") || continue
    chmod 700 "$dir"
    cp "$plugin" "$dir/" || { rm -rf "$dir"; continue; }
    SAFE_PLUGIN_DIR=$dir
    SAFE_PLUGIN=$dir/$(basename "$plugin")
    return 0
  done
  echo "no folder that EAL -d accepts for a copy of $plugin" \
    "(its own is under a world-writable one; \$XDG_RUNTIME_DIR and \$HOME/.cache are unset or unsafe)" >&2
  return 1
}
