#!/usr/bin/env bash
# ctxfwd on real TCP: two network namespaces (a, b), each with a veth whose other end is
# in a third namespace (fw) where ctxfwd bridges the two ends over net_af_packet with
# --no-mac-updating. Checks, for every --flow-alloc: ping, an iperf3 run (3 s, 4 streams),
# HTTP downloads (python3 -m http.server + curl, sha256 of what arrived), and ctxfwd's
# flow counts from --stats-json: one flow per TCP connection (iperf3's control
# connection and its 4 data connections, one per download), each ended once and released
# by the close linger's end, nothing malformed, no flow memory left.
#
# Usage: ctxfwd_real_tcp.sh CTXFWD_BIN. Exit 0 pass, 1 fail, 77 skip (not root, no
# `ip netns`, no veths, or ping/iperf3/curl/ethtool/python3 missing: scripts/setup.sh installs
# them). Everything it creates is named after its pid and removed on any exit.
set -uo pipefail

ctxfwd=${1:?usage: ctxfwd_real_tcp.sh CTXFWD_BIN}
skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, net_af_packet)"
for tool in ip ethtool ping iperf3 curl python3 sha256sum timeout; do
  command -v "$tool" >/dev/null || skip "$tool not installed (scripts/setup.sh installs it)"
done
# The system's python3 when there is one (a version manager's shim on PATH can take
# seconds to start on a loaded machine).
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
[ -x "$ctxfwd" ] || fail "no ctxfwd binary at $ctxfwd"

tag=$$
ns_a=ctxtcp-a-$tag
ns_b=ctxtcp-b-$tag
ns_fw=ctxtcp-fw-$tag
# Interface names: at most 15 characters.
va=va$tag
vb=vb$tag
work=$(mktemp -d "${TMPDIR:-/tmp}/ctxfwd-real-tcp.XXXXXX")
prefix=ctxtcp$tag
fwd_pid=
http_pid=
iperf_pid=

cleanup() {
  for p in $fwd_pid $http_pid $iperf_pid; do
    kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  for ns in "$ns_a" "$ns_b" "$ns_fw"; do
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$work" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$ns_fw" 2>/dev/null || skip "ip netns add fails here (no network namespaces)"
ip netns add "$ns_a" || fail "ip netns add $ns_a"
ip netns add "$ns_b" || fail "ip netns add $ns_b"
in_a() { ip netns exec "$ns_a" "$@"; }
in_b() { ip netns exec "$ns_b" "$@"; }
in_fw() { ip netns exec "$ns_fw" "$@"; }

# veth pairs: $va in a, ${va}h in fw (the same for b); no IPv6 (router solicitations and
# neighbour discovery would be extra traffic), checksum offload off on the senders (see
# docs/ctxfwd.md: af_packet hands frames with partial checksums on as they are).
in_fw ip link add "$va" type veth peer name "${va}h" 2>/dev/null || skip "no veth support"
in_fw ip link add "$vb" type veth peer name "${vb}h" || fail "ip link add $vb"
in_fw ip link set "$va" netns "$ns_a" || fail "move $va"
in_fw ip link set "$vb" netns "$ns_b" || fail "move $vb"
for ns in "$ns_a" "$ns_b" "$ns_fw"; do
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 ||
    fail "disable IPv6 in $ns"
  ip netns exec "$ns" ip link set lo up || fail "lo up in $ns"
done
in_fw ip link set "${va}h" up || fail "up ${va}h"
in_fw ip link set "${vb}h" up || fail "up ${vb}h"
in_a ip addr add 10.77.0.1/24 dev "$va" || fail "address on $va"
in_b ip addr add 10.77.0.2/24 dev "$vb" || fail "address on $vb"
in_a ip link set "$va" up || fail "up $va"
in_b ip link set "$vb" up || fail "up $vb"
in_a ethtool -K "$va" tx off >/dev/null || fail "ethtool -K $va tx off"
in_b ethtool -K "$vb" tx off >/dev/null || fail "ethtool -K $vb tx off"

# The content served: a few files of random bytes, their digests known in advance.
mkdir -p "$work/www" "$work/got"
downloads=4
for i in $(seq 1 $downloads); do
  head -c $((2 * 1024 * 1024 + i * 4099)) /dev/urandom >"$work/www/f$i" || fail "make f$i"
done
(cd "$work/www" && sha256sum f*) >"$work/want.sha256"

# Waits until `ss -ltn` in namespace $1 shows a listener on port $2 (no traffic through
# ctxfwd, so the flow counts stay those of the checked connections).
wait_listen() {
  for _ in $(seq 1 100); do
    ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  return 1
}

# Background servers are started with ip netns exec directly (it execs the program), so
# that $! is the server's pid and not that of a subshell.
ip netns exec "$ns_b" "$py" -m http.server 8080 --bind 10.77.0.2 --directory "$work/www" \
  >"$work/http.log" 2>&1 &
http_pid=$!
wait_listen "$ns_b" 8080 || fail "http.server did not listen: $(cat "$work/http.log")"

# The summary's top-level numbers as shell variables s_<key> (one python run).
load_summary() {
  eval "$("$py" -c 'import json,sys
for k, v in json.load(open(sys.argv[1])).items():
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        print("s_%s=%d" % (k, v))' "$1")" || fail "cannot read the summary $1"
}

run_one() {
  local kind=$1
  local out=$work/$kind.txt json=$work/$kind.json t0=$SECONDS
  ip netns exec "$ns_fw" "$ctxfwd" -l 0,1 --no-huge -m 256 --no-pci --no-shconf --no-telemetry \
    --file-prefix "$prefix-$kind" \
    "--vdev=net_af_packet0,iface=${va}h" "--vdev=net_af_packet1,iface=${vb}h" -- \
    --no-mac-updating --flow-alloc "$kind" --stats-period 0 --stats-json "$json" \
    >"$out" 2>&1 &
  fwd_pid=$!
  local up=0
  for _ in $(seq 1 1200); do
    grep -q "ctxfwd: forwarding with" "$out" && up=1 && break
    kill -0 "$fwd_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ $up -eq 1 ] || fail "$kind: ctxfwd did not start: $(cat "$out")"
  echo "$kind: ctxfwd forwarding after $((SECONDS - t0)) s"

  in_a ping -c 3 -i 0.3 -W 5 10.77.0.2 >"$work/ping.txt" 2>&1 ||
    fail "$kind: ping a -> b: $(cat "$work/ping.txt")"

  ip netns exec "$ns_b" iperf3 -s -1 -p 5201 >"$work/iperf-s.txt" 2>&1 &
  iperf_pid=$!
  wait_listen "$ns_b" 5201 || fail "$kind: iperf3 server did not listen"
  timeout 60 ip netns exec "$ns_a" iperf3 -c 10.77.0.2 -p 5201 -t 3 -P 4 -J \
    >"$work/iperf.json" 2>"$work/iperf.err" ||
    fail "$kind: iperf3: $(cat "$work/iperf.err") $(tail -c 2000 "$work/iperf.json")"
  wait "$iperf_pid"
  iperf_pid=
  local bytes
  bytes=$("$py" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"]))' \
    "$work/iperf.json") || fail "$kind: iperf3 JSON unreadable"
  [ "$bytes" -gt 0 ] || fail "$kind: iperf3 received nothing"
  echo "$kind: ping and iperf3 done after $((SECONDS - t0)) s"

  rm -f "$work/got/"*
  for i in $(seq 1 $downloads); do
    timeout 60 ip netns exec "$ns_a" curl -sS --fail -o "$work/got/f$i" "http://10.77.0.2:8080/f$i" ||
      fail "$kind: download f$i"
  done
  (cd "$work/got" && sha256sum -c --quiet "$work/want.sha256") || fail "$kind: content differs"
  echo "$kind: downloads done after $((SECONDS - t0)) s"
  # Past the default linger (2 s) and a drain tick: every closed flow released by it.
  sleep 3

  kill -TERM "$fwd_pid"
  local rc=0
  wait "$fwd_pid" || rc=$?
  fwd_pid=
  echo "$kind: ctxfwd stopped after $((SECONDS - t0)) s"
  [ $rc -eq 0 ] || fail "$kind: ctxfwd exit $rc: $(tail -40 "$out")"

  # One flow per connection: iperf3's control + 4 data connections, one per download.
  local want=$((1 + 4 + downloads))
  load_summary "$json"
  echo "$kind: iperf3 $bytes B received, $downloads downloads intact; flows created" \
    "$s_flows_created ended $s_flows_ended (FIN $s_flows_ended_fin, RST $s_flows_ended_rst)" \
    "late segments $s_late_segments linger over $s_linger_expired reopened $s_flows_reopened" \
    "expired $s_flows_expired live $s_flows_live; rx $s_rx_packets tx $s_tx_packets" \
    "passthrough $s_passthrough dropped $s_dropped"
  [ "$s_flows_created" -eq "$want" ] || fail "$kind: flows_created $s_flows_created, want $want"
  [ "$s_flows_ended" -eq "$want" ] || fail "$kind: flows_ended $s_flows_ended, want $want (once each)"
  [ "$s_linger_expired" -eq "$want" ] || fail "$kind: linger_expired $s_linger_expired, want $want"
  [ "$s_flows_reopened" -eq 0 ] || fail "$kind: flows_reopened $s_flows_reopened"
  [ "$s_flows_expired" -eq 0 ] || fail "$kind: flows_expired $s_flows_expired"
  [ "$s_flows_live" -eq 0 ] || fail "$kind: flows_live $s_flows_live at stop"
  [ "$s_flows_closing" -eq 0 ] || fail "$kind: $s_flows_closing closed flows left at stop"
  [ "$s_malformed" -eq 0 ] || fail "$kind: malformed $s_malformed"
  [ "$s_bytes_in_use" -eq "$s_bytes_in_use_start" ] || fail "$kind: flow memory left in use"
  [ "$s_passthrough" -gt 0 ] || fail "$kind: no ARP/ICMP passthrough counted"
}

for kind in ctxalloc malloc rte_malloc; do
  run_one "$kind"
done
echo "PASS"
