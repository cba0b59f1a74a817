#!/usr/bin/env bash
# Boots a QEMU guest with two NUMA nodes (one vCPU and its own memory each, 2 MiB hugepages
# reserved per node) and runs one command inside it, with this machine's files visible at
# the same paths: the host's root read-only and the project tree read-write (9p), so the
# build tree, DPDK's drivers and every shared library are where the binaries expect them.
#
#   bash scripts/numa_guest.sh [options] -- COMMAND [ARG...]
#   bash scripts/numa_guest.sh --check        # can a guest be booted here? (exit 0, or 77 + why)
#   bash scripts/numa_guest.sh --install      # apt-get install what is missing, then --check
#
# Options:
#   --timeout S        kill the guest after S seconds (default 900); exit 124 then
#   --mem MiB          memory per node (default 1536)
#   --hugepages A,B    2 MiB hugepages to reserve on node 0 and node 1 (default 512,512)
#   --kernel FILE      the guest kernel (default: the newest /boot/vmlinuz-* that has its
#                      /lib/modules folder with the 9p and virtio modules)
#   --env NAME=VALUE   set in the command's environment (repeatable)
#   --quiet            do not echo the guest's console (it is still in the log)
#
# The command runs as root in the guest, in the directory this script was started from
# (which must be inside the project tree), with its exit code as this script's. The
# guest's console goes to stdout and to build/numa-guest/console.log. Software emulation
# (TCG): there is no usable hardware virtualization here, so the guest is slow and its
# timings are not hardware figures. Idempotent: the initramfs is rebuilt only when the
# kernel or busybox changes; nothing on the host is changed outside build/numa-guest/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tree=$(cd "$here/.." && pwd)
cache="$tree/build/numa-guest"
timeout_s=900
mem_mib=1536
hugepages="512,512"
kernel=""
quiet=0
mode=run
envs=()

die() {
  echo "numa_guest: $*" >&2
  exit 2
}
skip() {
  echo "numa_guest: cannot boot a two-node guest here: $*" >&2
  exit 77
}

while [ $# -gt 0 ]; do
  case $1 in
    --check) mode=check ;;
    --install) mode=install ;;
    --timeout) timeout_s=${2:?--timeout needs seconds}; shift ;;
    --mem) mem_mib=${2:?--mem needs MiB}; shift ;;
    --hugepages) hugepages=${2:?--hugepages needs A,B}; shift ;;
    --kernel) kernel=${2:?--kernel needs a file}; shift ;;
    --env) envs+=("${2:?--env needs NAME=VALUE}"); shift ;;
    --quiet) quiet=1 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
[[ $timeout_s =~ ^[0-9]+$ ]] && [ "$timeout_s" -gt 0 ] || die "--timeout: '$timeout_s' is not a number of seconds"
[[ $mem_mib =~ ^[0-9]+$ ]] && [ "$mem_mib" -ge 512 ] || die "--mem: '$mem_mib' MiB per node (at least 512)"
[[ $hugepages =~ ^[0-9]+,[0-9]+$ ]] || die "--hugepages: '$hugepages' is not A,B (pages on node 0 and node 1)"
for e in ${envs[@]+"${envs[@]}"}; do
  [[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env: '$e' is not NAME=VALUE"
done
if [ $(((${hugepages%,*} > ${hugepages#*,} ? ${hugepages%,*} : ${hugepages#*,}) * 2 + 256)) -gt "$mem_mib" ]; then
  die "--hugepages $hugepages does not fit in --mem $mem_mib MiB per node (256 MiB left for the kernel)"
fi

# ------------------------------------------------------------------ prerequisites

packages=(qemu-system-x86 busybox-static linux-image-amd64)

# The modules the guest loads to mount the 9p shares, in load order.
wanted_modules=(virtio_pci 9pnet_virtio 9p)

# A kernel whose modules include what the guest needs, or empty.
find_kernel() {
  local k v
  for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -rV); do
    v=${k#/boot/vmlinuz-}
    [ -r "$k" ] || continue
    if modinfo -k "$v" -n 9p >/dev/null 2>&1 && modinfo -k "$v" -n 9pnet_virtio >/dev/null 2>&1; then
      echo "$k"
      return
    fi
  done
}

# Why a guest cannot be booted, or nothing.
missing_reason() {
  local why=()
  command -v qemu-system-x86_64 >/dev/null || why+=("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
  if ! command -v busybox >/dev/null; then
    why+=("busybox not installed (Debian package busybox-static)")
  elif ldd "$(command -v busybox)" >/dev/null 2>&1; then
    why+=("$(command -v busybox) is dynamically linked (install busybox-static)")
  fi
  command -v modinfo >/dev/null || why+=("modinfo not installed (Debian package kmod)")
  if [ -n "$kernel" ]; then
    [ -r "$kernel" ] || why+=("--kernel $kernel: no such readable file")
  elif [ -z "$(find_kernel)" ]; then
    why+=("no kernel in /boot with its 9p and virtio modules in /lib/modules (Debian package linux-image-amd64)")
  fi
  [ "$(id -u)" -eq 0 ] || why+=("not root (the 9p shares of the host's files need root)")
  case $tree in *[[:space:]]*) why+=("the project path '$tree' has spaces") ;; esac
  [ ${#why[@]} -eq 0 ] || printf '%s; ' "${why[@]}" | sed 's/; $//'
}

if [ "$mode" = install ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "numa_guest: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  mode=check
fi
why=$(missing_reason)
if [ "$mode" = check ]; then
  [ -z "$why" ] || skip "$why (bash scripts/numa_guest.sh --install)"
  echo "numa_guest: ready (kernel ${kernel:-$(find_kernel)}, $(qemu-system-x86_64 --version | head -1))"
  exit 0
fi
[ -n "$why" ] && skip "$why (bash scripts/numa_guest.sh --install)"
[ $# -gt 0 ] || die "no command given (bash scripts/numa_guest.sh -- COMMAND)"
[ -n "$kernel" ] || kernel=$(find_kernel)
kver=$(basename "$kernel")
kver=${kver#vmlinuz-}
cwd=$(pwd)
case $cwd/ in "$tree"/*) ;; *) die "run it from inside the project tree ($tree), not $cwd" ;; esac

# ------------------------------------------------------------------ the initramfs

# The modules' files in load order: each after what it depends on.
module_files() {
  local seen=" " order=()
  visit() {
    local m=$1 d
    case $seen in *" $m "*) return ;; esac
    seen="$seen$m "
    for d in $(modinfo -k "$kver" -F depends "$m" | tr ',' ' '); do visit "$d"; done
    order+=("$(modinfo -k "$kver" -n "$m")")
  }
  for m in "${wanted_modules[@]}"; do visit "$m"; done
  printf '%s\n' "${order[@]}"
}

mkdir -p "$cache"
stamp="$kver $(md5sum "$(command -v busybox)" | cut -d' ' -f1) $(md5sum "$0" | cut -d' ' -f1)"
initrd="$cache/initramfs-$kver.cpio.gz"
if [ ! -s "$initrd" ] || [ "$(cat "$cache/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
  work=$(mktemp -d "$cache/initramfs.XXXXXX")
  mkdir -p "$work"/{bin,dev,proc,sys,mnt/root,modules}
  cp "$(command -v busybox)" "$work/bin/busybox"
  n=0
  while read -r f; do
    n=$((n + 1))
    case $f in
      *.ko.xz) xz -dc "$f" >"$work/modules/$(printf %02d $n).ko" ;;
      *.ko.zst) zstd -qdc "$f" >"$work/modules/$(printf %02d $n).ko" ;;
      *.ko.gz) gzip -dc "$f" >"$work/modules/$(printf %02d $n).ko" ;;
      *) cp "$f" "$work/modules/$(printf %02d $n).ko" ;;
    esac
  done < <(module_files)
  # /init: mount the shares, reserve hugepages per node, run the command chrooted into
  # the host's files, write its exit code, power off. Parameters come from the kernel
  # command line (ctxalloc.*=), paths without spaces.
  cat >"$work/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /modules/*.ko; do insmod "$m" || echo "numa_guest init: insmod $m failed"; done
arg() { sed -n "s/.* ctxalloc\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
tree=$(arg tree)
run=$(arg run)
huge=$(arg hugepages)
finish() {
  echo "$1" >/mnt/root/"$run"/rc 2>/dev/null
  sync
  poweroff -f
}
r=/mnt/root
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot $r ||
  { echo "numa_guest init: cannot mount the host's files"; poweroff -f; }
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm $r/dev/hugepages
mount -t devpts devpts $r/dev/pts
mount -t tmpfs tmpfs $r/dev/shm
mount -t hugetlbfs -o pagesize=2M hugetlbfs $r/dev/hugepages
mount -t tmpfs -o mode=1777 tmpfs $r/tmp
mount -t tmpfs tmpfs $r/run
mount -t tmpfs tmpfs $r/var/tmp 2>/dev/null
mkdir -p $r/"$tree" $r/"$run"
mount -t 9p -o trans=virtio,version=9p2000.L,cache=mmap,msize=512000 tree $r/"$tree" ||
  { echo "numa_guest init: cannot mount the project tree"; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 run $r/"$run" ||
  { echo "numa_guest init: cannot mount the run folder"; poweroff -f; }
n=0
for pages in $(echo "$huge" | tr ',' ' '); do
  f=/sys/devices/system/node/node$n/hugepages/hugepages-2048kB/nr_hugepages
  echo "$pages" >$f 2>/dev/null
  got=$(cat $f 2>/dev/null)
  [ "$got" = "$pages" ] || echo "numa_guest init: node $n: asked for $pages x 2 MiB hugepages, got ${got:-none}"
  n=$((n + 1))
done
chroot $r /bin/bash "$run/command.sh"
finish $?
EOF
  chmod +x "$work/init"
  (cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  echo "$stamp" >"$cache/initramfs.stamp"
  rm -rf "$work"
fi

# ------------------------------------------------------------------ the run

run=$(mktemp -d "${TMPDIR:-/tmp}/ctxalloc-numa-guest.XXXXXX")
case $run in *[[:space:]]*) die "TMPDIR '$run' has spaces" ;; esac
trap 'rm -rf "$run"' EXIT
{
  echo "cd '$cwd' || exit 2"
  echo "export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "export CTXALLOC_NUMA_GUEST=1 LANG=C.UTF-8"
  for e in ${envs[@]+"${envs[@]}"}; do printf 'export %q\n' "$e"; done
  printf '%q ' "$@"
  echo
} >"$run/command.sh"
log="$cache/console.log"
per_node=$((mem_mib * 1024 * 1024))
qemu=(
  qemu-system-x86_64 -accel tcg,thread=multi -cpu max -machine q35
  -smp 2,sockets=2,cores=1,threads=1 -m "$((mem_mib * 2))M"
  -object "memory-backend-ram,id=m0,size=$per_node" -object "memory-backend-ram,id=m1,size=$per_node"
  -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1
  -numa dist,src=0,dst=1,val=20
  -kernel "$kernel" -initrd "$initrd"
  -append "console=ttyS0 quiet loglevel=3 panic=-1 ctxalloc.tree=$tree ctxalloc.run=$run ctxalloc.hugepages=$hugepages"
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
  -virtfs "local,path=$tree,mount_tag=tree,security_model=none,multidevs=remap"
  -virtfs "local,path=$run,mount_tag=run,security_model=none"
  -display none -monitor none -serial stdio -no-reboot -nodefaults
)
echo "numa_guest: booting 2 nodes x (1 vCPU, $mem_mib MiB, hugepages $hugepages), kernel $kver, limit ${timeout_s}s: $*"
start=$(date +%s)
set +e
if [ $quiet -eq 1 ]; then
  timeout -k 10 "$timeout_s" "${qemu[@]}" </dev/null >"$log" 2>&1
else
  timeout -k 10 "$timeout_s" "${qemu[@]}" </dev/null 2>&1 | tee "$log"
fi
qrc=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - start))
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
  echo "numa_guest: the guest did not finish within ${timeout_s}s (console: $log)" >&2
  exit 124
fi
if [ ! -s "$run/rc" ]; then
  echo "numa_guest: the guest stopped without the command's exit code (qemu exit $qrc, after ${elapsed}s; console: $log)" >&2
  tail -20 "$log" >&2
  exit 2
fi
rc=$(cat "$run/rc")
echo "numa_guest: command exited $rc after ${elapsed}s in the guest"
exit "$rc"
