#!/usr/bin/env bash
# Installs what ctxalloc needs on Debian 12 (only what is missing) and, as root, reserves
# hugepages. Sourced or run by scripts/run.sh and scripts/test.sh; safe to run again.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config clang clang-format libclang-rt-14-dev
  libnuma-dev numactl libfmt-dev libgtest-dev libbenchmark-dev libboost-dev
  libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev python3-matplotlib valgrind
  dpdk dpdk-dev libdpdk-dev libpcap-dev
  libjansson-dev
  # Programs the preload tests run under libctxalloc_preload.so (tests/preload/).
  python3 xz-utils coreutils
  # The two-node guest of scripts/numa_guest.sh (meson test numa_guest; the kernel it boots
  # is the machine's own, linux-image-amd64: without one the test skips and says so).
  qemu-system-x86 busybox-static
  # ctxfwd's real-TCP test (tests/app/ctxfwd_real_tcp.sh): namespaces, veths, offloads off,
  # iperf3 and HTTP downloads across ctxfwd.
  iproute2 ethtool iperf3 curl iputils-ping
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
else
  echo "setup: all ${#packages[@]} Debian packages present"
fi

# Hugepages: tests must pass without them, but as root we reserve some so that the
# hugepage paths are really exercised. CTXALLOC_HUGEPAGES overrides the count.
want=${CTXALLOC_HUGEPAGES:-64}
if [ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
  have=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$have" -lt "$want" ]; then
    echo "$want" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
  fi
  if ! grep -qs '^[^ ]* /dev/hugepages hugetlbfs' /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
  fi
  got=$(cat /proc/sys/vm/nr_hugepages)
  mnt=$(grep -qs ' hugetlbfs ' /proc/mounts && echo "hugetlbfs mounted" || echo "no hugetlbfs mount")
  echo "setup: hugepages: asked for $want x 2 MiB, the kernel reserved $got ($mnt)"
else
  echo "setup: not root: no hugepages reserved (hugepage tests will skip)"
fi
